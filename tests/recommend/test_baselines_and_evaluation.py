"""Baselines in the shared API, the implicit wrappers against implicit's own recommend, and the evaluation protocol."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig
from fashion_reco.errors import NotFittedError, RecommendError
from fashion_reco.recommend.baselines import (
    BehaviourOnlyRecommender,
    ImplicitALSRecommender,
    ImplicitItemKNNRecommender,
    PopularityRecommender,
    RecentPopularityRecommender,
    VisualOnlyRecommender,
    implicit_available,
    standard_baselines,
)
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.evaluation import (
    METRIC_COLUMNS,
    evaluate_models,
    evaluate_recommenders,
    time_split,
    warm_cold_customers,
)

needs_implicit = pytest.mark.skipif(not implicit_available(), reason="implicit not installed")


def test_baselines_share_the_api(small_world) -> None:
    _, clicks, ctx = small_world
    ids = [*list(small_world[0].customer_ids[:10]), "cold"]
    for model in standard_baselines(BlendConfig(k=4)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(clicks, ctx)
        recs = model.recommend(ids)
        assert (recs.groupby(Columns.CUSTOMER_ID).size() == 4).all(), model.name
        assert set(recs[Columns.CUSTOMER_ID]) == set(ids)
        assert model.score(ids[:3]).shape == (3, len(ctx.item_ids))


def test_popularity_ranks_by_distinct_customers(small_world) -> None:
    _, clicks, ctx = small_world
    model = PopularityRecommender().fit(clicks, ctx)
    frame = clicks.frame
    counts = frame.drop_duplicates([Columns.CUSTOMER_ID, Columns.ITEM_ID])[Columns.ITEM_ID].value_counts()
    top = model.recommend(["cold"], k=3, filter_already_purchased=False)[Columns.ITEM_ID].tolist()
    assert [counts[i] for i in top] == sorted(counts.to_numpy(), reverse=True)[:3]
    recent = RecentPopularityRecommender(half_life_days=1.0).fit(clicks, ctx)
    assert recent.recommend(["cold"], k=1)[Columns.REASON].iloc[0] == "trending now"


def test_visual_only_needs_embeddings(retail_log) -> None:
    with pytest.raises(RecommendError, match="embeddings"):
        VisualOnlyRecommender().fit(retail_log)


@needs_implicit
def test_implicit_wrappers_match_implicits_own_recommend(retail_log) -> None:
    """On a purchase-only log our filtering equals implicit's filter_already_liked_items, so the lists agree."""
    train, _ = time_split(retail_log, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cls in (ImplicitItemKNNRecommender, ImplicitALSRecommender):
            model = cls(BlendConfig()).fit(train)
            ids = model.data_.customer_ids[:25]
            ours = model.recommend(ids, k=10)
            _, native_scores = model.recommend_native(ids, k=10)
            for row, cid in enumerate(ids):
                got = ours[ours[Columns.CUSTOMER_ID] == cid]
                valid = np.isfinite(native_scores[row]) & (native_scores[row] > -1e30)
                np.testing.assert_allclose(
                    got[Columns.SCORE].to_numpy()[: valid.sum()],
                    native_scores[row][valid],
                    rtol=1e-4,
                    atol=1e-5,
                )


def test_behaviour_only_variants(small_world) -> None:
    _, clicks, ctx = small_world
    for kind in ("random_walk", "cosine"):
        model = BehaviourOnlyRecommender(item_similarity=kind).fit(clicks, ctx)
        assert len(model.recommend(small_world[0].customer_ids[:3], k=5)) == 15
    with pytest.raises(RecommendError):
        BehaviourOnlyRecommender(item_similarity="nope")


def test_time_split_and_test_customers(small_world) -> None:
    _, clicks, _ = small_world
    train, test = time_split(clicks, 5)
    assert train.frame[Columns.TIMESTAMP].max() < test.frame[Columns.TIMESTAMP].min()
    assert len(train) + len(test) == len(clicks)
    frame_train, frame_test = time_split(clicks.frame, 5)
    assert len(frame_train) == len(train) and len(frame_test) == len(test)
    warm, cold = warm_cold_customers(train, test)
    seen = set(train.frame[Columns.CUSTOMER_ID])
    assert all(c in seen for c in warm) and not any(c in seen for c in cold)
    assert set(warm) | set(cold) == set(test.frame[Columns.CUSTOMER_ID])
    with pytest.raises(RecommendError):
        time_split(clicks, 0)


def test_evaluate_models_table(small_world) -> None:
    _, clicks, ctx = small_world
    train, test = time_split(clicks, 5)
    models = {"pop": PopularityRecommender(), "blend": BlendRecommender(BlendConfig(tune=False))}
    table = evaluate_models(models, train, test, ctx, k=5)
    assert list(table.columns) == ["model", *METRIC_COLUMNS, "n_customers"]
    assert list(table["model"]) == ["pop", "blend"]
    assert (
        table[["precision", "recall", "map", "ndcg", "hit_rate", "coverage"]]
        .apply(lambda c: c.between(0, 1).all())
        .all()
    )
    warm, _ = warm_cold_customers(train, test)
    assert table["n_customers"].iloc[0] == len(warm)
    bought = evaluate_models(models, train, test, ctx, k=5, fit=False, relevance="purchase")
    assert (bought["n_customers"] <= table["n_customers"]).all()
    everyone = evaluate_models(models, train, test, ctx, k=5, fit=False, segment="all")
    assert (everyone["n_customers"] >= table["n_customers"]).all()
    with pytest.raises(NotFittedError):
        evaluate_models([PopularityRecommender()], train, test, ctx, k=5, fit=False)
    with pytest.raises(RecommendError):
        evaluate_models(models, train, test, ctx, k=5, fit=False, segment="nobody")


def test_evaluate_recommenders_uses_the_blends_training_data(small_world) -> None:
    _, clicks, ctx = small_world
    train, test = time_split(clicks, 5)
    blend = BlendRecommender(BlendConfig(tune=False, k=5)).fit(train, ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = evaluate_recommenders(blend, test, k=5)
    assert table["model"].iloc[0] == "blend"
    assert {"popularity", "visual_only", "behaviour_only"} <= set(table["model"])
    direct = evaluate_models({"blend": blend}, train, test, ctx, k=5, fit=False)
    pd.testing.assert_series_equal(
        table.iloc[0][list(METRIC_COLUMNS)], direct.iloc[0][list(METRIC_COLUMNS)], check_names=False
    )
