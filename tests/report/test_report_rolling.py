"""The report's evaluation section for a rolling-origin evaluation: pooled table, the interval of the candidate minus
each baseline, and MAP per fold — with hostile model names shown as text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from fashion_reco.config import BlendConfig
from fashion_reco.recommend.baselines import OwnHistoryPopularRecommender, PopularityRecommender
from fashion_reco.recommend.evaluation import evaluate_time_split
from fashion_reco.report.html import write_report

from .conftest import EVIL_MODEL

CONFIG = BlendConfig(k=4, tune=False)


@pytest.fixture(scope="module")
def rolling(reco):
    return evaluate_time_split(
        reco.interactions,
        None,
        None,
        CONFIG,
        folds=3,
        candidate=lambda: OwnHistoryPopularRecommender(CONFIG),
        baselines={
            "popularity": lambda: PopularityRecommender(CONFIG),
            EVIL_MODEL: PopularityRecommender(CONFIG),
        },
    )


def test_rolling_evaluation_shows_intervals_and_folds(tmp_path: Path, reco, rolling, parse_html) -> None:
    text = write_report(reco, tmp_path / "r.html", evaluation=rolling, n_items=1, n_customers=1).read_text()
    doc, errors = parse_html(text)
    assert not errors
    (part,) = [s for s in doc.find_all("section") if s.attrs.get("data-section") == "evaluation"]
    assert "pooled over 3 rolling time windows" in part.text()
    (table,) = part.find_all("table", cls="evaluation-table")
    assert (
        next(r.attrs["data-model"] for r in table.find_all("tr") if "data-model" in r.attrs)
        == rolling.candidate
    )
    (intervals,) = part.find_all("table", cls="interval-table")
    rows = [r for r in intervals.find_all("tr") if "data-baseline" in r.attrs]
    assert len(rows) == len(rolling.intervals) == 2 * 3  # two baselines × MAP, NDCG, recall
    assert {r.attrs["data-baseline"] for r in rows} == {"popularity", EVIL_MODEL}
    verdicts = {r.find_all("td", cls="verdict")[0].text() for r in rows}
    assert verdicts <= {"better", "worse", "no clear difference"}
    (folds,) = part.find_all("table", cls="fold-table")
    assert [r.attrs["data-fold"] for r in folds.find_all("tr") if "data-fold" in r.attrs] == ["1", "2", "3"]
    assert "<b>evil&model</b>" not in text.replace("&lt;b&gt;evil&amp;model&lt;/b&gt;", "")


def test_a_plain_metrics_frame_has_no_fold_or_interval_tables(
    tmp_path: Path, reco, rolling, parse_html
) -> None:
    doc, _ = parse_html(
        write_report(reco, tmp_path / "p.html", evaluation=rolling.table, n_items=1).read_text()
    )
    assert doc.find_all("table", cls="evaluation-table")
    assert not doc.find_all("table", cls="interval-table") and not doc.find_all("table", cls="fold-table")


def test_candidate_recall_per_source_is_shown_when_present(tmp_path: Path, reco, rolling, parse_html) -> None:
    recall = pd.DataFrame(
        {
            "fold": [1, 1, 0, 0],
            "source": ["history", "union", "history", "union"],
            "recall": [0.4, 0.7, 0.45, 0.72],
            "candidates_per_customer": [12.0, 40.0, 12.0, 41.0],
        }
    )
    with_recall = replace(rolling, candidate_recall=recall)
    doc, _ = parse_html(
        write_report(reco, tmp_path / "c.html", evaluation=with_recall, n_items=1).read_text()
    )
    (table,) = doc.find_all("table", cls="recall-table")
    rows = {r.attrs["data-source"]: r for r in table.find_all("tr") if "data-source" in r.attrs}
    assert set(rows) == {"history", "union"}  # the pooled rows (fold 0) only
    assert "0.720" in rows["union"].text() and "41.0" in rows["union"].text()
    plain, _ = parse_html(write_report(reco, tmp_path / "n.html", evaluation=rolling, n_items=1).read_text())
    assert not plain.find_all("table", cls="recall-table")
