"""``fashion-reco evaluate --events LOG --holdout-days N``: a time-split evaluation from the command line, checked
against the split recomputed here from the CSV (event and customer counts) and against the library's own numbers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fashion_reco import Columns, FashionRecommender, RecommenderConfig
from fashion_reco.cli import app
from fashion_reco.data.datasets import sample_catalogue
from fashion_reco.data.interactions import Interactions
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.model.image_model import ImageModel
from fashion_reco.recommend.evaluation import METRIC_COLUMNS

runner = CliRunner()
BOUNDED = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage")


def run(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A bundle over the 240 shipped sample photos (untrained 32 px network: real embeddings, no training time)
    fitted on a whole 30-day synthetic clickstream, and that clickstream as a CSV."""
    catalogue = sample_catalogue()
    cfg = RecommenderConfig(data={"num_workers": 0}, model={"image_size": 32})
    reco = FashionRecommender(cfg, image_model=ImageModel.untrained(catalogue.classes, cfg.model))
    embeddings = reco.embed(catalogue, progress=False)
    customers = generate_customers(catalogue, n=80, seed=5)
    clicks = generate_clickstream(catalogue, customers, item_embeddings=embeddings, days=30, seed=5)
    reco.fit(catalogue, clicks, customers, item_embeddings=embeddings, progress=False)
    folder = tmp_path_factory.mktemp("time_split")
    reco.save(folder / "bundle")
    clicks.frame.to_csv(folder / "events.csv", index=False)
    return {"bundle": folder / "bundle", "events": folder / "events.csv", "reco": reco, "clicks": clicks}


def split_here(events: Path, days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split recomputed from the CSV alone: test = events at or after (last event − days)."""
    frame = pd.read_csv(events, parse_dates=[Columns.TIMESTAMP], dtype={Columns.CUSTOMER_ID: str})
    cut = frame[Columns.TIMESTAMP].max() - pd.Timedelta(days=days)
    late = frame[Columns.TIMESTAMP] >= cut
    return frame[~late], frame[late]


def printed_table(stdout: str) -> pd.DataFrame:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["model"])
    return pd.read_csv(io.StringIO("\n".join(lines[start:])), sep=r"\s+")


def test_holdout_prints_the_split_and_metrics_measured_on_it(saved: dict) -> None:
    code, stdout, stderr = run(
        "evaluate", "--model", saved["bundle"], "--events", saved["events"], "--holdout-days", "5"
    )
    assert code == 0, stderr
    train, test = split_here(saved["events"], 5)
    assert len(train) and len(test)
    warm = set(test[Columns.CUSTOMER_ID]) & set(train[Columns.CUSTOMER_ID])
    assert "the last 5 days are the test window" in stdout
    assert f"train: {len(train)} events from {train[Columns.CUSTOMER_ID].nunique()} customers" in stdout
    assert f"test: {len(test)} events from {test[Columns.CUSTOMER_ID].nunique()} customers" in stdout
    assert f"scored: {len(warm)} warm test customers at k=12" in stdout

    table = printed_table(stdout)
    assert table["model"].iloc[0] == "ranker"  # the default model under test, then every baseline
    assert {
        "blend",
        "own_history_popular",
        "popularity",
        "recent_popularity",
        "visual_only",
        "behaviour_only",
    } <= set(table["model"])
    assert (table["n_customers"] == len(warm)).all()
    assert table[list(BOUNDED)].apply(np.isfinite).all().all()
    assert table[list(BOUNDED)].ge(0).all().all() and table[list(BOUNDED)].le(1).all().all()
    assert table.loc[table["model"] == "ranker", "hit_rate"].iloc[0] > 0

    # the same numbers as the library's own time-split evaluation on the same log and bundle
    reco = FashionRecommender.load(saved["bundle"])
    expected = reco.evaluate_time_split(Interactions.from_csv(saved["events"]), 5).table.set_index("model")
    for name in ("ranker", "blend", "popularity", "behaviour_only", "visual_only"):
        got = table.set_index("model").loc[name, list(METRIC_COLUMNS)].astype(float)
        np.testing.assert_allclose(
            got,
            expected.loc[name, list(METRIC_COLUMNS)].astype(float),
            rtol=1e-4,
            atol=5e-7,  # the printed table has six decimals: a small metric can differ by half a unit there
            err_msg=name,
        )


def test_holdout_defaults_to_the_configured_test_days_and_writes_a_file(saved: dict, tmp_path: Path) -> None:
    toml = tmp_path / "cfg.toml"
    toml.write_text("[blend]\ntest_days = 3\ntune = false\n")
    out = tmp_path / "eval.csv"
    code, stdout, stderr = run(
        "evaluate",
        "--model",
        saved["bundle"],
        "--events",
        saved["events"],
        "--config",
        toml,
        "-k",
        "5",
        "--relevance",
        "purchase",
        "--segment",
        "all",
        "--out",
        out,
    )
    assert code == 0, stderr
    _, test = split_here(saved["events"], 3)
    bought = test.loc[test[Columns.EVENT_TYPE] == "purchase", Columns.CUSTOMER_ID].nunique()
    assert "the last 3 days are the test window" in stdout
    assert f"test: {len(test)} events" in stdout
    assert f"scored: {bought} all test customers at k=5 (relevant: purchase events)" in stdout
    table = pd.read_csv(out)
    assert table["model"].iloc[0] == "ranker"
    assert (table["n_customers"] == bought).all()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--test", "{events}"], "--events"),  # --test and --events together
        ([], "--events"),  # neither
        (["--holdout-days", "3"], "--holdout-days"),  # a holdout without a log to split
    ],
)
def test_contradictory_options_exit_2_with_one_line(saved: dict, extra: list[str], needle: str) -> None:
    args = [a.format(events=saved["events"]) for a in extra]
    if "--test" in args:
        args += ["--events", str(saved["events"])]
    code, _, stderr = run("evaluate", "--model", saved["bundle"], *args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stderr


def test_a_holdout_longer_than_the_log_says_so(saved: dict) -> None:
    code, _, stderr = run(
        "evaluate", "--model", saved["bundle"], "--events", saved["events"], "--holdout-days", "400"
    )
    assert code == 2 and "leaves no training events" in stderr and "400" in stderr


@pytest.mark.slow  # every default model is fitted in each fold (about 40 s on a loaded 2-core machine)
def test_folds_print_each_window_the_pooled_table_and_the_intervals(saved: dict, tmp_path: Path) -> None:
    out = tmp_path / "pooled.csv"
    code, stdout, stderr = run(
        "evaluate", "--model", saved["bundle"], "--events", saved["events"], "--folds", 3, "--holdout-days", 4,
        "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert "rolling-origin evaluation: 3 folds of 4 days" in stdout
    assert all(f"fold {i}:" in stdout for i in (1, 2, 3))
    assert "ranker − baseline, MAP@" in stdout and "vs own_history_popular" in stdout and "vs blend" in stdout
    pooled = pd.read_csv(out)
    folds = pd.read_csv(tmp_path / "pooled.folds.csv")
    intervals = pd.read_csv(tmp_path / "pooled.intervals.csv")
    assert pooled["model"].iloc[0] == "ranker"
    assert set(folds["fold"]) == {1, 2, 3}
    assert pooled.set_index("model")["n_customers"].eq(folds.groupby("model")["n_customers"].sum()).all()
    assert set(intervals["baseline"]) == set(pooled["model"]) - {"ranker"}
    assert (intervals["low"] <= intervals["high"]).all()


def test_folds_need_an_event_log(saved: dict) -> None:
    code, _, stderr = run("evaluate", "--model", saved["bundle"], "--test", saved["events"], "--folds", 2)
    assert code != 0 and "--folds" in stderr
