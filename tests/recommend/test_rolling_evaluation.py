"""Rolling-origin evaluation: consecutive windows, fresh models fitted strictly before each cut, pooled metrics over
customer-windows and paired bootstrap intervals; plus the repurchase-aware baselines it compares against."""

from __future__ import annotations

import itertools
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.config import BlendConfig
from fashion_reco.data.simulation import SimulationConfig, simulate_retail
from fashion_reco.errors import RecommendError
from fashion_reco.recommend import metrics as M
from fashion_reco.recommend.base import Recommender
from fashion_reco.recommend.baselines import (
    ImplicitBPRRecommender,
    LastWeekPopularityRecommender,
    OwnHistoryPopularRecommender,
    PopularityRecommender,
    implicit_available,
)
from fashion_reco.recommend.evaluation import (
    baseline_factories,
    default_window_days,
    evaluate_time_split,
    rolling_windows,
    time_split,
)

CONFIG = BlendConfig(k=6, tune=False)


@pytest.fixture(scope="module")
def sim_log(small_catalogue: pd.DataFrame):
    """A purchase-and-view log from the fashion simulator: 400 customers, 28 days over the 120-item catalogue."""
    return simulate_retail(small_catalogue, n_customers=400, days=28, seed=4, config=SimulationConfig())


def log_of(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=[Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP]
    )


# ------------------------------------------------------------------------------------------------------- windows
def test_windows_are_consecutive_and_end_at_the_last_event() -> None:
    end = pd.Timestamp("2024-05-31 18:00")
    windows = rolling_windows(end, 4, 7)
    assert windows[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert all(u - c == pd.Timedelta(days=7) for c, u in windows)


@settings(max_examples=50, deadline=None)
@given(span=st.floats(0.5, 800), folds=st.integers(1, 12))
def test_default_window_leaves_history_before_the_first_fold(span: float, folds: int) -> None:
    w = default_window_days(span, folds)
    assert 0 < w <= 28
    assert (folds + 1) * w <= span * (1 + 1e-9)


def test_default_window_follows_the_logs_grain() -> None:
    assert default_window_days(730, 6) == 28  # two years: monthly folds
    assert default_window_days(90, 6) == 7  # a quarter: weekly
    assert default_window_days(14, 6) == 1  # a fortnight: daily
    assert default_window_days(4.5, 4) == pytest.approx(0.9)


def test_one_fold_is_the_plain_time_split(sim_log) -> None:
    result = evaluate_time_split(
        sim_log.interactions, 7, None, CONFIG, candidate=PopularityRecommender(CONFIG), baselines=[]
    )
    train, test = time_split(sim_log.interactions, 7)
    assert (result.train_events, result.test_events) == (len(train), len(test))


# -------------------------------------------------------------------------------------------------------- leakage
class _Spy(PopularityRecommender):
    """Popularity that records the latest training event it was fitted on (class-level log, one entry per fit)."""

    name = "spy"
    seen: ClassVar[list[pd.Timestamp]] = []

    def fit(self, train, context=None, **kw):  # type: ignore[no-untyped-def, override]
        frame = train.frame if hasattr(train, "frame") else train
        _Spy.seen.append(frame[Columns.TIMESTAMP].max())
        assert context is None or context.as_of is None
        return super().fit(train, context, **kw)


def test_every_fold_fits_fresh_models_on_events_strictly_before_its_cut(sim_log) -> None:
    _Spy.seen = []
    result = evaluate_time_split(
        sim_log.interactions, 3, None, CONFIG, folds=4, candidate=lambda: _Spy(CONFIG), baselines=[]
    )
    fitted = result.fold_table[result.fold_table["n_customers"] > 0]
    assert len(_Spy.seen) == len(fitted) == result.scored_folds
    for latest, cut in zip(_Spy.seen, fitted["cutoff"], strict=True):
        assert latest < cut
    # and a fold's numbers do not move when events after its window change
    frame = sim_log.interactions.frame
    cut_last = result.fold_table["cutoff"].iloc[-1]
    changed = frame.copy()
    late = changed[Columns.TIMESTAMP] >= cut_last
    changed.loc[late, Columns.ITEM_ID] = (
        changed.loc[late, Columns.ITEM_ID].sample(frac=1, random_state=0).to_numpy()
    )
    again = evaluate_time_split(
        changed, 3, None, CONFIG, folds=4, candidate=lambda: _Spy(CONFIG), baselines=[]
    )
    keep = result.fold_table["fold"] < 4
    pd.testing.assert_frame_equal(
        result.fold_table[keep].reset_index(drop=True), again.fold_table[keep].reset_index(drop=True)
    )


# -------------------------------------------------------------------------------------------- pooling and intervals
def test_pooled_metrics_are_means_over_customer_windows(sim_log) -> None:
    result = evaluate_time_split(
        sim_log.interactions,
        4,
        None,
        CONFIG,
        folds=3,
        relevance="purchase",
        candidate=lambda: OwnHistoryPopularRecommender(CONFIG),
        baselines={"popularity": lambda: PopularityRecommender(CONFIG)},
    )
    pc = result.per_customer
    assert list(result.table["model"]) == ["own_history_popular", "popularity"]
    for row in result.table.itertuples(index=False):
        mine = pc[pc["model"] == row.model]
        assert (
            row.n_customers
            == len(mine)
            == result.fold_table.query("model == @row.model")["n_customers"].sum()
        )
        assert row.map == pytest.approx(mine["map"].mean())
        assert row.ndcg == pytest.approx(mine["ndcg"].mean())
    per_fold = result.fold_table.query("model == 'popularity' and n_customers > 0")
    assert np.average(per_fold["recall"], weights=per_fold["n_customers"]) == pytest.approx(
        result.table.set_index("model").loc["popularity", "recall"]
    )
    iv = result.intervals.set_index(["baseline", "metric"])
    assert set(iv.index) == {("popularity", m) for m in ("map", "ndcg", "recall")}
    row = iv.loc[("popularity", "map")]
    assert row["low"] <= row["diff"] <= row["high"]
    assert row["diff"] == pytest.approx(row["candidate_value"] - row["baseline_value"])
    assert "fold 3:" in result.summary() and "vs popularity" in result.summary()


def test_a_model_against_itself_has_a_zero_interval(sim_log) -> None:
    result = evaluate_time_split(
        sim_log.interactions,
        4,
        None,
        CONFIG,
        folds=2,
        candidate=lambda: PopularityRecommender(CONFIG),
        baselines={"same": lambda: PopularityRecommender(CONFIG)},
    )
    row = result.intervals.iloc[0]
    assert (row["diff"], row["low"], row["high"]) == (0.0, 0.0, 0.0)
    assert row["verdict"] == "no clear difference"


def test_repurchase_log_own_history_beats_popularity_with_an_interval_above_zero() -> None:
    """Customers who only ever re-buy their own two items: own history must win, clearly."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=28, freq="D")
    rows = []
    for c in range(60):
        mine = [f"own{c}a", f"own{c}b"]
        for d in days[rng.random(len(days)) < 0.5]:
            rows.append(
                (f"c{c}", mine[rng.integers(2)], EventTypes.PURCHASE, str(d + pd.Timedelta(hours=10)))
            )
            rows.append((f"c{c}", f"pop{rng.integers(5)}", EventTypes.VIEW, str(d + pd.Timedelta(hours=11))))
    result = evaluate_time_split(
        log_of(rows),
        7,
        None,
        CONFIG,
        folds=3,
        relevance="purchase",
        candidate=lambda: OwnHistoryPopularRecommender(CONFIG),
        baselines=[PopularityRecommender(CONFIG), LastWeekPopularityRecommender(CONFIG)],
    )
    maps = result.intervals[result.intervals["metric"] == "map"]
    assert (maps["verdict"] == "better").all() and (maps["low"] > 0).all()
    # with the business rule on, the same baseline loses its signal
    filtered = evaluate_time_split(
        log_of(rows),
        7,
        None,
        CONFIG,
        folds=3,
        relevance="purchase",
        filter_already_purchased=True,
        candidate=lambda: OwnHistoryPopularRecommender(CONFIG),
        baselines=[PopularityRecommender(CONFIG)],
    )
    assert filtered.table["map"].iloc[0] < result.table["map"].iloc[0]


def test_empty_windows_are_reported_and_left_out_of_the_pool() -> None:
    """A shop closed for a week: that fold scores nobody, fits nothing and does not dilute the pooled numbers."""
    rows = []
    for day in [*range(0, 13), *range(21, 28)]:
        for c in range(20):
            ts = str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=day, hours=12))
            rows.append((f"c{c}", f"i{(c + day) % 7}", EventTypes.PURCHASE, ts))
    result = evaluate_time_split(
        log_of(rows), 7, None, CONFIG, folds=2, candidate=lambda: PopularityRecommender(CONFIG), baselines=[]
    )
    counts = result.fold_table.set_index("fold")["n_customers"]
    assert counts.loc[1] == 0 and counts.loc[2] > 0
    assert result.scored_folds == 1
    assert result.table["n_customers"].iloc[0] == counts.loc[2]


def test_too_many_folds_is_a_clear_error(sim_log) -> None:
    with pytest.raises(RecommendError, match="use fewer folds"):
        evaluate_time_split(sim_log.interactions, 7, None, CONFIG, folds=10, baselines=[])
    with pytest.raises(RecommendError, match="folds must be >= 1"):
        evaluate_time_split(sim_log.interactions, 7, None, CONFIG, folds=0)
    with pytest.raises(RecommendError, match="relevance must be"):
        evaluate_time_split(sim_log.interactions, 7, None, CONFIG, folds=2, relevance="click")
    with pytest.raises(RecommendError, match="segment must be"):
        evaluate_time_split(sim_log.interactions, 7, None, CONFIG, folds=2, segment="vip")
    with pytest.raises(RecommendError, match="confidence"):
        evaluate_time_split(sim_log.interactions, 7, None, CONFIG, folds=2, confidence=1.5)
    with pytest.raises(RecommendError, match="unique"):
        evaluate_time_split(
            sim_log.interactions,
            7,
            None,
            CONFIG,
            candidate=PopularityRecommender(CONFIG),
            baselines={"popularity": PopularityRecommender(CONFIG)},
        )


def test_default_baselines_include_the_fashion_baselines() -> None:
    names = list(baseline_factories(CONFIG))
    assert names[:2] == ["own_history_popular", "last_week_popularity"]
    assert "blend" in names
    if implicit_available():
        assert {"implicit_item_knn", "implicit_als", "implicit_bpr"} <= set(names)
    assert all(isinstance(f(), Recommender) for f in baseline_factories(CONFIG).values())


# ------------------------------------------------------------------------------------------------------ bootstrap
@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=60),
    shift=st.floats(-0.5, 0.5, allow_nan=False),
)
def test_paired_bootstrap_brackets_the_mean_and_ignores_the_common_part(
    values: list[float], shift: float
) -> None:
    b = np.array(values)
    a = b + shift
    diff, low, high = M.paired_bootstrap(a, b, n_boot=200)
    assert low - 1e-9 <= diff <= high + 1e-9
    assert diff == pytest.approx(shift, abs=1e-9) and high - low == pytest.approx(0.0, abs=1e-9)


def test_paired_bootstrap_interval_shrinks_with_more_units_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    small = rng.normal(0.1, 1, 50), np.zeros(50)
    large = rng.normal(0.1, 1, 5000), np.zeros(5000)
    _, lo_s, hi_s = M.paired_bootstrap(*small, n_boot=500)
    _, lo_l, hi_l = M.paired_bootstrap(*large, n_boot=500)
    assert hi_l - lo_l < (hi_s - lo_s) / 5
    assert M.paired_bootstrap(*small, seed=3) == M.paired_bootstrap(*small, seed=3)
    assert np.isnan(M.paired_bootstrap([np.nan], [1.0])[0])
    with pytest.raises(ValueError, match="differ in length"):
        M.paired_bootstrap([1.0], [1.0, 2.0])


# ------------------------------------------------------------------------------------------------------ baselines
def test_own_history_puts_own_items_first_most_recent_first_then_last_weeks_bestsellers() -> None:
    rows = [
        ("a", "old", EventTypes.PURCHASE, "2024-01-01"),
        ("a", "new", EventTypes.VIEW, "2024-01-20"),
        ("b", "hot", EventTypes.PURCHASE, "2024-01-19"),
        ("c", "hot", EventTypes.PURCHASE, "2024-01-19"),
        ("b", "stale", EventTypes.PURCHASE, "2024-01-02"),
        ("c", "stale", EventTypes.PURCHASE, "2024-01-02"),
        ("d", "stale", EventTypes.PURCHASE, "2024-01-02"),
    ]
    model = OwnHistoryPopularRecommender(CONFIG).fit(log_of(rows))
    recs = model.recommend(["a", "cold"], k=4, filter_already_purchased=False)
    a = recs[recs[Columns.CUSTOMER_ID] == "a"]
    assert list(a[Columns.ITEM_ID])[:3] == ["new", "old", "hot"]
    assert a[Columns.REASON].iloc[0] == "you chose this before"
    cold = recs[recs[Columns.CUSTOMER_ID] == "cold"]
    assert cold[Columns.ITEM_ID].iloc[0] == "hot"  # last week's bestseller beats the all-time one
    only_bought = OwnHistoryPopularRecommender(CONFIG, event_types=(EventTypes.PURCHASE,)).fit(log_of(rows))
    assert only_bought.recommend(["a"], k=1, filter_already_purchased=False)[Columns.ITEM_ID].iloc[0] == "old"
    with pytest.raises(RecommendError, match="unknown event types"):
        OwnHistoryPopularRecommender(CONFIG, event_types=("like",))


def test_last_week_popularity_counts_only_the_last_week() -> None:
    rows = [(f"c{i}", "stale", EventTypes.PURCHASE, "2024-01-01") for i in range(5)]
    rows += [("x", "hot", EventTypes.PURCHASE, "2024-01-30"), ("y", "hot", EventTypes.VIEW, "2024-01-30")]
    recs = LastWeekPopularityRecommender(CONFIG).fit(log_of(rows)).recommend(["z"], k=2)
    assert list(recs[Columns.ITEM_ID]) == ["hot", "stale"]


@pytest.mark.skipif(not implicit_available(), reason="implicit is not installed")
def test_bpr_gives_every_customer_k_rows(sim_log) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ImplicitBPRRecommender(CONFIG, iterations=5).fit(sim_log.interactions)
    ids = [*sim_log.customers.customer_ids[:20], "nobody"]
    recs = model.recommend(ids, k=5)
    assert recs.groupby(Columns.CUSTOMER_ID).size().eq(5).all() and recs[Columns.CUSTOMER_ID].nunique() == 21
