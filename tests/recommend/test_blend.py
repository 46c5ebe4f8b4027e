"""The personalised blend's contract: k rows per customer, cold start, reasons, filters, tuning, save / load."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig
from fashion_reco.errors import ArtefactError, NotFittedError, RecommendError, UnknownIdError
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.evaluation import time_split
from fashion_reco.recommend.tuning import TuningSpace, simplex_grid, tune_blend

SMALL_SPACE = TuningSpace(weight_steps=2, half_life_days=(7.0,), trend_half_life_days=(3.0,), n_folds=1)
REASON = re.compile(
    r"^(similar to \S+ you (viewed|added to cart|bought)|often (bought|viewed) with \S+|trending now|"
    r"popular in .+|popular with customers|matches your preferred .+|you often choose .+|"
    r"popular with customers like you in .+|you viewed this recently|you added this to your cart|"
    r"you bought this before|matches your style|customers like you chose this|recommended for you)$"
)


@pytest.fixture(scope="module")
def fitted(small_world):
    customers, clicks, ctx = small_world
    train, test = time_split(clicks, 5)
    config = BlendConfig(k=5, validation_days=5)
    model = BlendRecommender(config, tuning_space=SMALL_SPACE).fit(train, ctx)
    return model, train, test, ctx, customers


def test_every_customer_gets_exactly_k_rows_with_a_reason(fitted) -> None:
    model, _train, _, _, customers = fitted
    ids = [*list(customers.customer_ids[:40]), "never-seen-1", "never-seen-2"]
    recs = model.recommend(ids, k=7)
    assert list(recs.columns) == [
        Columns.CUSTOMER_ID,
        Columns.ITEM_ID,
        Columns.SCORE,
        Columns.RANK,
        Columns.REASON,
    ]
    counts = recs.groupby(Columns.CUSTOMER_ID).size()
    assert set(counts.index) == set(ids) and (counts == 7).all()
    ranks = recs.groupby(Columns.CUSTOMER_ID)[Columns.RANK].apply(list)
    assert ranks.map(lambda r: r == list(range(1, 8))).all()
    scores = recs.groupby(Columns.CUSTOMER_ID)[Columns.SCORE].apply(
        lambda s: bool(np.all(np.diff(s) <= 1e-6))
    )
    assert scores.all()
    assert recs[Columns.REASON].map(lambda r: bool(REASON.match(r))).all(), recs[Columns.REASON].unique()
    assert recs[Columns.REASON].str.startswith(("similar to", "often", "you ")).any()


def test_reason_names_a_history_item_of_that_customer(fitted) -> None:
    model, train, _, _, customers = fitted
    recs = model.recommend(customers.customer_ids[:60], k=10)
    linked = recs[recs[Columns.REASON].str.startswith(("similar to", "often"))]
    assert len(linked)
    linked_item = linked[Columns.REASON].str.extract(r"(?:similar to|with) (\S+)")[0]
    history = set(zip(train.frame[Columns.CUSTOMER_ID], train.frame[Columns.ITEM_ID], strict=True))
    assert all((c, i) in history for c, i in zip(linked[Columns.CUSTOMER_ID], linked_item, strict=True))


def test_cold_customers_get_profile_based_lists(fitted) -> None:
    model, *_ = fitted
    attrs = pd.DataFrame({"customer_id": ["new-a", "new-b"], "preferred_labels": ["dress", "shoes"]})
    recs = model.recommend(["new-a", "new-b", "new-c"], k=5, customers=attrs)
    assert recs.groupby(Columns.CUSTOMER_ID).size().to_dict() == {"new-a": 5, "new-b": 5, "new-c": 5}
    labels = dict(zip(model.item_ids_, model.labels_, strict=True))
    got_a = recs[recs[Columns.CUSTOMER_ID] == "new-a"][Columns.ITEM_ID].map(labels)
    got_b = recs[recs[Columns.CUSTOMER_ID] == "new-b"][Columns.ITEM_ID].map(labels)
    if model.cold_weights_.get("profile", 0) > 0:
        assert (got_a == "dress").mean() > (got_b == "dress").mean()


def test_concurrent_calls_with_different_customer_tables_do_not_see_each_other(fitted) -> None:
    """The per-call ``customers`` table lives in the call, not on the model: threads answering cold customers with
    different stated preferences get exactly what each would get alone."""
    from concurrent.futures import ThreadPoolExecutor

    model, *_ = fitted
    tables = [
        pd.DataFrame({"customer_id": ["new-a"], "preferred_labels": [label]})
        for label in sorted(set(model.labels_) - {None})[:4]
    ]
    alone = [model.recommend(["new-a"], k=5, customers=t) for t in tables]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            together = list(pool.map(lambda t: model.recommend(["new-a"], k=5, customers=t), tables * 3))
            for got, expected in zip(together, alone * 3, strict=True):
                pd.testing.assert_frame_equal(got, expected)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_filters_never_leak(fitted, data: st.DataObject) -> None:
    model, train, *_ = fitted
    items = list(model.item_ids_)
    customers = data.draw(
        st.lists(st.sampled_from(list(model.data_.customer_ids[:80])), min_size=1, max_size=6)
    )
    blocked = data.draw(st.lists(st.sampled_from(items), max_size=60))
    allowed = data.draw(st.none() | st.lists(st.sampled_from(items), min_size=1, max_size=80))
    k = data.draw(st.integers(1, 15))
    recs = model.recommend([*customers, "cold"], k=k, filter_items=blocked, allowed_items=allowed)
    assert not recs[Columns.ITEM_ID].isin(blocked).any()
    if allowed is not None:
        assert recs[Columns.ITEM_ID].isin(allowed).all()
    frame = train.frame
    bought = frame[frame[Columns.EVENT_TYPE] == "purchase"]
    merged = recs.merge(bought, on=[Columns.CUSTOMER_ID, Columns.ITEM_ID])
    assert merged.empty
    pool = set(allowed if allowed is not None else items) - set(blocked)
    per = recs.groupby(Columns.CUSTOMER_ID).size()
    for cid in set(customers) | {"cold"}:
        purchased = set(bought[bought[Columns.CUSTOMER_ID] == cid][Columns.ITEM_ID])
        assert per.get(cid, 0) == min(k, len(pool - purchased))


def test_filter_already_purchased_can_be_turned_off(fitted) -> None:
    model, train, *_ = fitted
    frame = train.frame
    buyer = frame[frame[Columns.EVENT_TYPE] == "purchase"][Columns.CUSTOMER_ID].iloc[0]
    bought = set(
        frame[(frame[Columns.CUSTOMER_ID] == buyer) & (frame[Columns.EVENT_TYPE] == "purchase")].item_id
    )
    recs = model.recommend([buyer], k=len(model.item_ids_), filter_already_purchased=False)
    assert bought <= set(recs[Columns.ITEM_ID])


def test_scoring_is_chunk_invariant(fitted) -> None:
    model, *_ = fitted
    ids = model.data_.customer_ids[:50]
    full = model.score(ids)
    old = model.config.similarity_chunk_size
    try:
        model.config.similarity_chunk_size = 7
        np.testing.assert_allclose(model.score(ids), full, atol=1e-6)
        recs_small = model.recommend(ids, k=5)
    finally:
        model.config.similarity_chunk_size = old
    pd.testing.assert_frame_equal(recs_small, model.recommend(ids, k=5))


def test_tuned_values_are_stored(fitted) -> None:
    model, *_ = fitted
    assert model.tuning_ is not None and model.tuning_.tuned
    assert set(model.weights_) == set(model.signals_)
    assert sum(model.weights_.values()) == pytest.approx(1.0)
    assert model.half_life_days_ == 7.0 and model.trend_half_life_days_ == 3.0
    assert set(model.cold_weights_) <= {"popularity", "trend", "profile"}
    trials = model.tuning_.trials
    assert len(trials) >= len(simplex_grid(model.signals_, 2))
    assert {"score", "half_life_days", "trend_half_life_days", "eligible"} <= set(trials.columns)


def test_optuna_tuning(small_world) -> None:
    pytest.importorskip("optuna")
    _, clicks, ctx = small_world
    train, _ = time_split(clicks, 5)
    config = BlendConfig(k=5, validation_days=5, tune_method="optuna", tune_trials=6)
    result = tune_blend(train, ctx, config, space=TuningSpace(n_folds=1))
    assert result.tuned and result.method == "optuna" and len(result.trials) == 6
    assert sum(result.weights.values()) == pytest.approx(1.0)


def test_short_log_is_not_tuned(small_world) -> None:
    _, clicks, ctx = small_world
    result = tune_blend(clicks, ctx, BlendConfig(validation_days=365))
    assert not result.tuned and "validation" in result.reason


def test_similar_items(fitted) -> None:
    model, *_ = fitted
    items = list(model.item_ids_[:3])
    sim = model.similar_items(items, k=4, filter_items=[model.item_ids_[5]])
    assert list(sim.columns) == [Columns.ITEM_ID, Columns.SIMILAR_ITEM_ID, Columns.SCORE, Columns.RANK]
    assert (sim.groupby(Columns.ITEM_ID).size() == 4).all()
    assert not (sim[Columns.ITEM_ID] == sim[Columns.SIMILAR_ITEM_ID]).any()
    assert not (sim[Columns.SIMILAR_ITEM_ID] == model.item_ids_[5]).any()
    with pytest.raises(UnknownIdError, match="no-such-item"):
        model.similar_items(["no-such-item"])


def test_save_load_roundtrip_and_atomic_layout(fitted, tmp_path) -> None:
    model, _, test, *_ = fitted
    ids = [*list(test.customers[:20]), "cold-x"]
    before = model.recommend(ids, k=6)
    path = model.save(tmp_path / "reco")
    names = sorted(p.name for p in path.iterdir())
    assert "recommender.json" in names
    assert all(re.fullmatch(r"[a-z_\-]+-[0-9a-f]{12}\.npy", n) for n in names if n != "recommender.json")
    loaded = BlendRecommender.load(path)
    pd.testing.assert_frame_equal(loaded.recommend(ids, k=6), before)
    assert loaded.weights_ == model.weights_ and loaded.cold_weights_ == model.cold_weights_
    assert loaded.half_life_days_ == model.half_life_days_
    manifest = json.loads((path / "recommender.json").read_text())
    assert manifest["weights"] == pytest.approx(model.weights_)
    assert manifest["tuning"]["tuned"] is True
    pd.testing.assert_frame_equal(
        loaded.similar_items(ids[:0] or list(model.item_ids_[:2]), k=3),
        model.similar_items(list(model.item_ids_[:2]), k=3),
    )
    # saving again over it keeps exactly one payload set
    model.save(path)
    assert sorted(p.name for p in path.iterdir()) == names


def test_load_names_the_bad_file(fitted, tmp_path) -> None:
    model, *_ = fitted
    path = model.save(tmp_path / "reco")
    manifest = json.loads((path / "recommender.json").read_text())
    victim = path / manifest["files"]["similarity_data"]["file"]

    broken = tmp_path / "missing"
    shutil.copytree(path, broken)
    (broken / victim.name).unlink()
    with pytest.raises(ArtefactError, match=re.escape(victim.name)):
        BlendRecommender.load(broken)

    truncated = tmp_path / "truncated"
    shutil.copytree(path, truncated)
    data = (truncated / victim.name).read_bytes()
    (truncated / victim.name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match=re.escape(victim.name)):
        BlendRecommender.load(truncated)

    reshaped = tmp_path / "reshaped"
    shutil.copytree(path, reshaped)
    m = json.loads((reshaped / "recommender.json").read_text())
    m["files"]["event_item"]["shape"] = [1]
    (reshaped / "recommender.json").write_text(json.dumps(m))
    with pytest.raises(ArtefactError, match="shape"):
        BlendRecommender.load(reshaped)

    with pytest.raises(ArtefactError, match="folder not found"):
        BlendRecommender.load(tmp_path / "nowhere")


def test_unfitted_and_bad_arguments(small_world) -> None:
    with pytest.raises(NotFittedError):
        BlendRecommender().recommend(["a"])
    with pytest.raises(RecommendError, match="normalisation"):
        BlendRecommender(normalisation="nope")
    _, clicks, ctx = small_world
    model = BlendRecommender(BlendConfig(tune=False)).fit(clicks, ctx)
    with pytest.raises(RecommendError, match="k must be"):
        model.recommend(["a"], k=0)


def test_fit_without_interactions_serves_similar_items_and_cold_lists(small_world) -> None:
    _, _, ctx = small_world
    model = BlendRecommender(BlendConfig(tune=False)).fit(None, ctx)
    assert model.signals_ == ("profile",)
    assert len(model.similar_items([ctx.item_ids[0]], k=3)) == 3
    assert len(model.recommend(["anyone"], k=4)) == 4
