"""``evaluate_time_split``: split one log by time, fit a fresh blend and the baselines on the earlier part, score
them on the test window; the reported split is the data layer's ``split_by_time``."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig
from fashion_reco.errors import RecommendError
from fashion_reco.recommend.baselines import PopularityRecommender
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.evaluation import evaluate_recommenders, evaluate_time_split, warm_cold_customers

CONFIG = BlendConfig(k=6, tune=False)


def quiet(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # implicit's advisory notes
        return fn(*args, **kwargs)


def test_split_counts_are_the_data_layers_split(small_world) -> None:
    _, clicks, ctx = small_world
    result = quiet(evaluate_time_split, clicks, 5.5, ctx, CONFIG)
    train, test = clicks.split_by_time(5.5)
    assert (result.train_events, result.test_events) == (len(train), len(test))
    assert result.train_events + result.test_events == len(clicks)
    assert result.train_customers == train.frame[Columns.CUSTOMER_ID].nunique()
    assert result.test_customers == test.frame[Columns.CUSTOMER_ID].nunique()
    assert result.end == clicks.frame[Columns.TIMESTAMP].max()
    assert result.end - result.cutoff == pd.Timedelta(days=5.5)
    assert test.frame[Columns.TIMESTAMP].min() >= result.cutoff > train.frame[Columns.TIMESTAMP].max()
    warm, _ = warm_cold_customers(train, test)
    assert result.k == 6 and result.table["model"].iloc[0] == "ranker"  # the default candidate comes first
    assert (result.table["n_customers"] == len(warm)).all()
    assert f"train: {len(train)} events" in result.summary()


def test_the_blend_is_fitted_on_the_training_side_only(small_world) -> None:
    """Same numbers as fitting a blend on ``split_by_time``'s train part by hand and scoring it on the test part."""
    _, clicks, ctx = small_world
    result = evaluate_time_split(
        clicks,
        5.0,
        ctx,
        CONFIG,
        candidate=lambda: BlendRecommender(CONFIG),
        baselines=[PopularityRecommender(CONFIG)],
    )
    train, test = clicks.split_by_time(5.0)
    blend = BlendRecommender(CONFIG).fit(train, ctx)
    assert blend.data_ is not None and blend.data_.as_of < result.cutoff
    by_hand = evaluate_recommenders(
        blend, test, 6, train=train, baselines=[PopularityRecommender(CONFIG)], filter_already_purchased=False
    )
    pd.testing.assert_frame_equal(result.table, by_hand)


def test_plain_frames_split_the_same_way(small_world) -> None:
    _, clicks, ctx = small_world
    blend = lambda: BlendRecommender(CONFIG)  # noqa: E731
    from_frame = evaluate_time_split(clicks.frame, 5.0, ctx, CONFIG, candidate=blend, baselines=[])
    from_log = evaluate_time_split(clicks, 5.0, ctx, CONFIG, candidate=blend, baselines=[])
    assert (from_frame.train_events, from_frame.test_events) == (from_log.train_events, from_log.test_events)
    pd.testing.assert_frame_equal(from_frame.table, from_log.table)


def test_a_window_longer_than_the_log_is_refused(small_world) -> None:
    _, clicks, ctx = small_world
    with pytest.raises(RecommendError, match="leaves no training events"):
        evaluate_time_split(clicks, 365, ctx, CONFIG)
