"""The HTML report: structure, self-containment, escaping, charts, tables and graceful degradation."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashion_reco.errors import NotFittedError
from fashion_reco.recommend.evaluation import METRIC_COLUMNS
from fashion_reco.report.collect import evaluation_view, sample_customers, sample_items
from fashion_reco.report.html import write_report
from fashion_reco.report.svg import bar_chart, nice_max
from fashion_reco.report.thumbs import ThumbnailCache

from .conftest import COLD_CUSTOMER, EVIL_CUSTOMER, EVIL_ITEM, EVIL_MODEL, KS

SECTIONS = ("gallery", "customers", "evaluation", "classifier")
METRICS = list(METRIC_COLUMNS)


def models_of(evaluation: pd.DataFrame) -> list[str]:
    return evaluation["model"].drop_duplicates().tolist()


@pytest.fixture(scope="module")
def report_text(report_path: Path) -> str:
    return report_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def doc(report_text: str, parse_html):
    root, errors = parse_html(report_text)
    assert errors == []
    return root


def section(doc, key: str):
    (found,) = doc.find_all("section", data_section=key)
    return found


def test_report_parses_and_has_the_four_sections_in_order(doc) -> None:
    found = [s.attrs["data-section"] for s in doc.find_all("section")]
    assert found == list(SECTIONS)
    nav_targets = [a.attrs["href"] for a in doc.find_all("nav")[0].find_all("a")]
    assert nav_targets == [f"#{s.attrs['id']}" for s in doc.find_all("section")]
    assert doc.find_all("html")[0].attrs["lang"] == "en"


def test_every_image_is_an_embedded_small_jpeg(doc) -> None:
    images = doc.find_all("img")
    assert len(images) > 50
    for img in images:
        src = img.attrs["src"] or ""
        assert src.startswith("data:image/jpeg;base64,"), src[:60]
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as thumb:
            assert thumb.format == "JPEG"
            assert max(thumb.size) <= 112
            assert (thumb.width, thumb.height) == (int(img.attrs["width"]), int(img.attrs["height"]))


def test_report_is_self_contained(report_text: str, doc) -> None:
    assert not doc.find_all("link")
    assert not [s for s in doc.find_all("script") if "src" in s.attrs]
    for node in doc.iter():
        for name in ("src", "href", "xlink:href", "action", "poster", "data"):
            value = node.attrs.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), (node.tag, name, value[:80])
    assert not re.search(r"https?://|url\(|@import", report_text)


def test_content_security_policy_allows_only_the_reports_own_script(doc) -> None:
    (meta,) = doc.find_all("meta", http_equiv="Content-Security-Policy")
    policy = meta.attrs["content"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    (script,) = doc.find_all("script")
    digest = base64.b64encode(hashlib.sha256(script.text().encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


def test_user_strings_are_escaped(report_text: str, doc) -> None:
    for raw in (EVIL_ITEM, EVIL_CUSTOMER, EVIL_MODEL):
        assert raw not in report_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report_text
    assert "&lt;b&gt;evil&amp;model&lt;/b&gt;" in report_text
    assert len(doc.find_all("script")) == 1
    assert not [img for img in doc.find_all("img") if "onerror" in img.attrs]
    # the hostile ids survive as data, intact after unescaping
    assert EVIL_CUSTOMER in {a.attrs.get("data-customer-id") for a in doc.find_all("article")}
    assert EVIL_ITEM in {f.attrs.get("data-item-id") for f in doc.find_all("figure")}
    assert EVIL_MODEL in {tr.attrs.get("data-model") for tr in doc.find_all("tr")}


def test_gallery_shows_k_neighbours_per_sampled_query(doc, reco) -> None:
    rows = section(doc, "gallery").find_all("div", cls="gallery-row")
    assert len(rows) == 8
    labels = set()
    for row in rows:
        query = row.find_all("figure", cls="query")
        assert len(query) == 1
        labels.add(query[0].find_all("span", cls="label")[0].text())
        neighbours = row.find_all("div", cls="tiles")[0].find_all("figure")
        assert len(neighbours) == 8
        ranks = [int(f.find_all("span", cls="rank")[0].text().lstrip("#")) for f in neighbours]
        assert ranks == list(range(1, 9))
        scores = [float(f.find_all("span", cls="score")[0].text()) for f in neighbours]
        assert scores == sorted(scores, reverse=True)
        assert query[0].attrs["data-item-id"] not in {f.attrs["data-item-id"] for f in neighbours}
    assert len(labels) == 8  # sampled across the classes


def test_customer_sections_show_history_badges_and_reasons(doc, reco) -> None:
    cards = section(doc, "customers").find_all("article", cls="customer")
    assert len(cards) == 6
    events = reco.interactions.frame
    cold = [c for c in cards if "customer-cold" in c.classes]
    assert [c.attrs["data-customer-id"] for c in cold] == [COLD_CUSTOMER] and cold[0].find_all(
        "p", cls="note"
    )
    for card in cards:
        customer = card.attrs["data-customer-id"]
        recs = card.find_all("div", cls="recs")[0].find_all("figure")
        assert len(recs) == 8
        assert all(f.find_all("span", cls="reason") for f in recs)
        if card in cold:
            continue
        history = card.find_all("div", cls="history")[0].find_all("figure")
        mine = (
            events[events["customer_id"] == customer]
            .sort_values("timestamp", kind="stable")
            .iloc[::-1]
            .head(8)
        )
        assert [f.attrs["data-item-id"] for f in history] == mine["item_id"].tolist()
        badges = [f.find_all("span", cls="badge")[0] for f in history]
        assert [next(iter(b.classes - {"badge"})) for b in badges] == [
            f"badge-{e}" for e in mine["event_type"]
        ]


def test_evaluation_table_highlights_the_ranker_and_bolds_best(doc, evaluation: pd.DataFrame) -> None:
    (table,) = section(doc, "evaluation").find_all("table", cls="evaluation-table")
    rows = table.find_all("tbody")[0].find_all("tr")
    models = models_of(evaluation)
    assert models[0] == "ranker" and EVIL_MODEL in models and len(models) >= 5
    assert [r.attrs["data-model"] for r in rows] == models
    assert [r.attrs["data-model"] for r in rows if "highlight" in r.classes] == ["ranker"]
    at_k = evaluation[evaluation["k"] == max(KS)].set_index("model")
    for column, metric in enumerate(METRICS):
        cells = [r.find_all("td")[column] for r in rows]
        assert [c.text() for c in cells] == [f"{v:.4f}" for v in at_k.loc[models, metric]]
        bold = {r.attrs["data-model"] for r, c in zip(rows, cells, strict=True) if c.find_all("b")}
        assert bold == set(at_k.index[np.isclose(at_k[metric], at_k[metric].max(), rtol=1e-12, atol=0)]), (
            metric
        )
    header = [th.text() for th in table.find_all("thead")[0].find_all("th")]
    assert header[-1] == "Customers"  # n_customers: shown, never ranked
    for row, n in zip(rows, at_k.loc[models, "n_customers"], strict=True):
        assert row.find_all("td")[-1].text() == str(n) and not row.find_all("td")[-1].find_all("b")


def test_svg_charts_have_one_bar_per_model_and_lines_at_k(doc, evaluation: pd.DataFrame) -> None:
    models = models_of(evaluation)
    at_k = evaluation[evaluation["k"] == max(KS)].set_index("model")
    evaluation_section = section(doc, "evaluation")
    bars = evaluation_section.find_all("svg", cls="bar-chart")
    assert [svg.attrs["data-metric"] for svg in bars] == METRICS
    for svg, metric in zip(bars, METRICS, strict=True):
        rects = svg.find_all("rect", cls="bar")
        assert [r.attrs["data-model"] for r in rects] == models
        heights = {r.attrs["data-model"]: float(r.attrs["height"]) for r in rects}
        assert all(h >= 0 for h in heights.values())
        tallest = max(heights.values())
        assert {m for m, h in heights.items() if h == tallest} >= {at_k[metric].idxmax()}
    lines = evaluation_section.find_all("svg", cls="line-chart")
    assert [svg.attrs["data-metric"] for svg in lines] == METRICS
    for svg in lines:
        polylines = svg.find_all("polyline")
        assert sorted(p.attrs["data-model"] for p in polylines) == sorted(models)
        assert all(len(p.attrs["points"].split()) == len(KS) for p in polylines)


def test_classifier_section_has_confusion_heatmap_and_per_class_table(doc, reco) -> None:
    metrics = reco.image_model.metrics["test"]
    classifier = section(doc, "classifier")
    stats = {
        s.find_all("span", cls="stat-name")[0].text(): s.find_all("span", cls="stat-value")[0].text()
        for s in classifier.find_all("div", cls="stat")
    }
    assert stats["accuracy"] == f"{metrics.accuracy:.3f}" and stats["macro-F1"] == f"{metrics.macro_f1:.3f}"
    (confusion,) = classifier.find_all("table", cls="confusion-table")
    body = confusion.find_all("tbody")[0].find_all("tr")
    assert [r.find_all("th")[0].text() for r in body] == metrics.classes
    for row, expected in zip(body, metrics.confusion, strict=True):
        cells = row.find_all("td")[:-1]
        assert [int(c.text() or 0) for c in cells] == expected
        assert all("background:rgba(" in c.attrs["style"] for c in cells)
    (per_class,) = classifier.find_all("table", cls="per-class-table")
    rows = per_class.find_all("tbody")[0].find_all("tr")
    for row, name in zip(rows, metrics.classes, strict=True):
        cells = [td.text() for td in row.find_all("td")]
        stats = metrics.per_class[name]
        assert cells == [
            f"{stats.precision:.3f}",
            f"{stats.recall:.3f}",
            f"{stats.f1:.3f}",
            str(stats.support),
        ]


def test_sections_degrade_to_notes(tmp_path: Path, reco_without_interactions, parse_html) -> None:
    path = write_report(reco_without_interactions, tmp_path / "bare.html", n_items=3, k=4)
    doc, errors = parse_html(path.read_text(encoding="utf-8"))
    assert errors == []
    assert [s.attrs["data-section"] for s in doc.find_all("section")] == list(SECTIONS)
    assert len(section(doc, "gallery").find_all("div", cls="gallery-row")) == 3
    for key, words in (
        ("customers", "No interactions"),
        ("evaluation", "No evaluation"),
        ("classifier", "no held-out metrics"),
    ):
        part = section(doc, key)
        (note,) = part.find_all("p", cls="note")
        assert words in note.text()
        assert not part.find_all("table") and not part.find_all("svg") and not part.find_all("article")


def test_single_k_evaluation_draws_bars_but_no_lines(tmp_path: Path, reco, evaluation, parse_html) -> None:
    single = evaluation[evaluation["k"] == KS[0]].drop(columns="k")
    doc, _ = parse_html(write_report(reco, tmp_path / "r.html", evaluation=single, n_items=1).read_text())
    assert len(doc.find_all("svg", cls="bar-chart")) == len(METRICS)
    assert not doc.find_all("svg", cls="line-chart")


def test_report_is_deterministic_small_and_written_atomically(
    tmp_path: Path, reco, evaluation, report_path
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    write_report(reco, target, evaluation=evaluation)
    assert target.read_bytes() == report_path.read_bytes()  # same seed, same report
    assert os.listdir(tmp_path) == ["report.html"]  # no temporary file left behind
    assert report_path.stat().st_size < 1_500_000
    other = write_report(reco, tmp_path / "seed1.html", evaluation=evaluation, seed=1)
    assert other.read_bytes() != report_path.read_bytes()


def test_unfitted_recommender_is_refused(tmp_path: Path) -> None:
    class Empty:
        catalogue = None

    with pytest.raises(NotFittedError):
        write_report(Empty(), tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# -- building blocks -----------------------------------------------------------------------------------------------------
def test_thumbnails_are_cached_and_unreadable_photos_become_placeholders(tmp_path: Path, few_photos) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    cache = ThumbnailCache()
    first = cache.get(few_photos[0])
    assert cache.get(few_photos[0]) is first and max(first.width, first.height) == 112
    bad = cache.get(broken)
    assert bad.placeholder and str(broken) in cache.failures
    assert cache.get(None).placeholder and cache.get(tmp_path / "missing.jpg").placeholder


def test_nice_max_and_bar_heights() -> None:
    assert [nice_max(v) for v in (0.0, 0.07, 0.1, 0.13, 0.3, 0.9, 7.2, float("nan"))] == [
        1.0,
        0.1,
        0.1,
        0.2,
        0.5,
        1.0,
        10.0,
        1.0,
    ]
    svg = bar_chart("m", {"a": 0.5, "b": 0.25, "c": float("nan")}, colours={}, highlight="a")
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', svg)]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[2] == 0


def test_sampling_is_seeded_and_spread_over_labels(reco) -> None:
    items = reco.catalogue.items
    picked = sample_items(items, 10, seed=3)
    assert picked == sample_items(items, 10, seed=3) != sample_items(items, 10, seed=4)
    assert items.set_index("item_id").loc[picked, "label"].nunique() == 10
    assert len(sample_items(items, 500, seed=0)) == len(items)
    events = reco.interactions.frame
    customers = sample_customers(events, reco.customers.frame, 4, seed=0)
    assert len(customers) == 4 and customers[-1] == COLD_CUSTOMER
    assert COLD_CUSTOMER not in sample_customers(events, None, 4, seed=0)


def test_evaluation_view_picks_the_largest_k_and_finds_the_ranker(evaluation) -> None:
    view = evaluation_view(evaluation)
    assert view.k == max(KS) and view.highlight == "ranker" and view.by_k is not None
    assert view.table["model"].tolist() == models_of(evaluation)
    assert view.metrics == METRICS and view.info == ["n_customers"]
    single = evaluation[evaluation["k"] == KS[0]].drop(columns="k").set_index("model")
    indexed = evaluation_view(single)
    assert indexed.k is None and indexed.by_k is None and indexed.table["model"].tolist()[0] == "ranker"
