"""The two-stage ranker as a user meets it: fit, k rows per customer, filters, reasons, fallback on small logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_reco.config import RankerConfig
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.evaluation import time_split
from fashion_reco.recommend.ranker import RankerRecommender


@pytest.fixture(scope="module")
def fitted(small_world):
    customers, clicks, ctx = small_world
    # the small world comes from the old generator, which draws clicks from the blend's own signals, so the
    # validation gate rightly keeps the blend there; these tests exercise the trained ranker itself
    config = RankerConfig(n_windows=2, max_rounds=60, validate_against_blend=False)
    model = RankerRecommender(config).fit(clicks, ctx)
    return model, customers, clicks, ctx


def test_fit_summary_states_the_model_windows_and_recall(fitted) -> None:
    model, *_ = fitted
    s = model.fit_summary_
    assert s["model"] == "ranker" and s["fallback"] is None
    assert len(s["train_windows"]) >= 1 and s["best_iteration"] >= 1
    sources = {r["source"]: r["recall"] for r in s["candidate_recall"]}
    assert sources["union"] >= max(v for k, v in sources.items() if k != "union")
    assert "candidate recall union" in model.summary()
    # window cuts are shown to the second (they sit one nanosecond after the event they follow)
    assert "train window from" in model.summary() and ".000000001" not in model.summary()


def test_every_customer_gets_k_rows_with_a_reason(fitted) -> None:
    model, customers, _, _ = fitted
    ids = [*list(customers.frame["customer_id"][:30]), "never-seen-1", "never-seen-2"]
    recs = model.recommend(ids, k=12)
    assert list(recs.columns) == ["customer_id", "item_id", "score", "rank", "reason"]
    counts = recs.groupby("customer_id").size()
    assert set(counts.index) == set(ids) and (counts == 12).all()
    assert recs.groupby("customer_id")["item_id"].nunique().eq(12).all()
    ranks = recs.groupby("customer_id")["rank"].apply(list)
    assert all(r == list(range(1, 13)) for r in ranks)
    diffs = recs.groupby("customer_id")["score"].diff().dropna()
    assert (diffs <= 1e-6).all()  # scores never increase down a list
    assert recs["reason"].str.len().gt(0).all()
    assert not recs["reason"].str.fullmatch(r"i\d+").any()


def test_filters_never_leak(fitted) -> None:
    model, customers, clicks, _ = fitted
    frame = clicks.frame
    ids = customers.frame["customer_id"][:40].tolist()
    banned = frame["item_id"].value_counts().index[:10].tolist()
    recs = model.recommend(ids, k=12, filter_already_purchased=True, filter_items=banned)
    bought = frame[frame["event_type"] == "purchase"][["customer_id", "item_id"]]
    merged = recs.merge(bought, on=["customer_id", "item_id"])
    assert merged.empty
    assert not recs["item_id"].isin(banned).any()
    allowed = model.item_ids_[:15]
    recs = model.recommend(ids[:5], k=12, allowed_items=allowed)
    assert recs["item_id"].isin(allowed).all() and recs.groupby("customer_id").size().eq(12).all()


def test_repurchase_is_kept_by_default(fitted) -> None:
    model, _customers, clicks, _ = fitted
    frame = clicks.frame
    buyers = frame[frame["event_type"] == "purchase"]["customer_id"].unique()[:60]
    recs = model.recommend(buyers, k=12)
    bought = frame[frame["event_type"] == "purchase"][["customer_id", "item_id"]].drop_duplicates()
    assert len(recs.merge(bought, on=["customer_id", "item_id"])) > 0


def test_reasons_name_items_by_label_and_events(fitted) -> None:
    model, customers, _, _ = fitted
    recs = model.recommend(customers.frame["customer_id"], k=12)
    text = " | ".join(recs["reason"].unique())
    assert any(
        p in text for p in ("you bought this", "you viewed this", "you added this", "you often choose")
    )
    labels = {"dress", "hat", "pants", "shirt", "shoes", "skirt"}
    linked = recs["reason"][recs["reason"].str.startswith(("often bought with", "looks like"))]
    assert all(any(f"the {lab}" in r for lab in labels) for r in linked)


def test_too_small_a_log_falls_back_to_the_blend_and_says_so(small_world) -> None:
    _customers, clicks, ctx = small_world
    frame = clicks.frame
    tiny = frame[frame["customer_id"].isin(frame["customer_id"].unique()[:5])]
    model = RankerRecommender(RankerConfig(min_train_customers=50)).fit(tiny, ctx)
    assert model.fit_summary_["model"] == "blend"
    assert "min_train_customers=50" in model.fit_summary_["fallback"]
    recs = model.recommend(tiny["customer_id"].unique(), k=5)
    assert recs.groupby("customer_id").size().eq(5).all()


def test_works_without_embeddings_labels_or_customers(small_world) -> None:
    _, clicks, ctx = small_world
    bare = FitContext(item_ids=ctx.item_ids)
    # the trained ranker itself (the gate may rightly keep the blend on this blend-generated world: `fitted`)
    config = RankerConfig(n_windows=2, max_rounds=30, validate_against_blend=False)
    model = RankerRecommender(config).fit(clicks, bare)
    assert model.fit_summary_["model"] == "ranker"
    assert not any(n.startswith("vis_") for n in model.state_.feature_names)
    recs = model.recommend(clicks.frame["customer_id"].unique()[:10], k=8)
    assert recs.groupby("customer_id").size().eq(8).all()
    sim = model.similar_items(ctx.item_ids[:3], k=4)
    assert set(sim.columns) == {"item_id", "similar_item_id", "score", "rank"}


def test_evaluation_and_time_split_accept_the_ranker(small_world) -> None:
    from fashion_reco.recommend.evaluation import evaluate_models

    _, clicks, ctx = small_world
    train, test = time_split(clicks, 5)
    table = evaluate_models(
        {"ranker": RankerRecommender(RankerConfig(n_windows=2, max_rounds=30))}, train, test, ctx, k=12
    )
    assert table.loc[0, "model"] == "ranker" and np.isfinite(table.loc[0, "map"])


def test_config_round_trip() -> None:
    cfg = RankerConfig(candidates={"history": 5, "popular": 3}, n_windows=2)
    model = RankerRecommender.from_config(cfg.model_dump())
    assert model.get_config() == cfg
    assert model.get_config().candidates["cooccurrence"] == 0
    with pytest.raises(Exception, match="unknown candidate source"):
        RankerConfig(candidates={"nope": 3})
    assert isinstance(pd.Timestamp, type)


def test_save_load_gives_identical_scores_and_verifies_checksums(fitted, tmp_path) -> None:
    from fashion_reco.errors import ArtefactError

    model, customers, _, _ = fitted
    ids = [*list(customers.frame["customer_id"][:50]), "never-seen"]
    before = model.recommend(ids, k=12)
    path = model.save(tmp_path / "ranker")
    manifest = (path / "ranker.json").read_text()
    assert '"schema_version": 1' in manifest and "pickle" not in manifest
    assert any(p.suffix == ".txt" and p.name.startswith("model-") for p in path.iterdir())
    loaded = RankerRecommender.load(path)
    after = loaded.recommend(ids, k=12)
    pd.testing.assert_frame_equal(before, after)
    np.testing.assert_array_equal(model.score(ids[:5]), loaded.score(ids[:5]))
    model_file = next(p for p in path.iterdir() if p.name.startswith("model-"))
    model_file.write_text(model_file.read_text().replace("num_leaves", "num_leafs", 1))
    with pytest.raises(ArtefactError, match="model-"):
        RankerRecommender.load(path)


def test_fallback_model_round_trips(small_world, tmp_path) -> None:
    _, clicks, ctx = small_world
    frame = clicks.frame
    tiny = frame[frame["customer_id"].isin(frame["customer_id"].unique()[:5])]
    model = RankerRecommender(RankerConfig(min_train_customers=50)).fit(tiny, ctx)
    loaded = RankerRecommender.load(model.save(tmp_path / "r"))
    assert loaded.fit_summary_["model"] == "blend"
    ids = tiny["customer_id"].unique()
    pd.testing.assert_frame_equal(model.recommend(ids, k=5), loaded.recommend(ids, k=5))


def test_path_attribution_sums_to_the_score_and_reasons_agree_in_kind(fitted) -> None:
    """Saabas path contributions (the bulk explanation) plus the trees' root values add up to the raw score."""
    from fashion_reco.recommend.ranker_reasons import group_contributions, path_tables

    model, *_ = fitted
    st = model.state_
    rows = np.arange(40)
    cand = st.generator.generate(rows)
    X = st.features.transform(rows, cand).X
    n_features = len(st.feature_names)
    tables = path_tables(st.booster, np.eye(n_features))
    leaves = st.booster.predict(X, pred_leaf=True).reshape(len(X), -1)
    contrib = sum(tables[t, leaves[:, t]] for t in range(leaves.shape[1]))
    roots = sum(
        float(t["tree_structure"].get("internal_value", t["tree_structure"].get("leaf_value", 0.0)))
        for t in st.booster.dump_model()["tree_info"]
    )
    np.testing.assert_allclose(contrib.sum(axis=1) + roots, st.booster.predict(X, raw_score=True), atol=1e-6)
    shap = group_contributions(st, X, "shap", 1)
    path = group_contributions(st, X, "path", 1)
    assert shap.shape == path.shape == (len(X), len(st.groups))
    small = model.recommend(["C00001"], k=5)  # a small call is explained with exact TreeSHAP
    assert len(small) == 5 and small["reason"].str.len().gt(0).all()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(1, 30),
    n_banned=st.integers(0, 110),
    n_customers=st.integers(1, 20),
    filter_purchased=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_k_rows_whenever_the_catalogue_allows_and_filters_never_leak(
    fitted, k: int, n_banned: int, n_customers: int, filter_purchased: bool, seed: int
) -> None:
    model, customers, clicks, _ = fitted
    rng = np.random.default_rng(seed)
    ids = [*rng.choice(customers.frame["customer_id"], n_customers, replace=False), "cold-visitor"]
    banned = rng.choice(model.item_ids_, n_banned, replace=False)
    recs = model.recommend(ids, k=k, filter_items=banned, filter_already_purchased=filter_purchased)
    assert not recs["item_id"].isin(banned).any()
    frame = clicks.frame
    bought = frame[frame["event_type"] == "purchase"].groupby("customer_id")["item_id"].agg(set)
    got = dict(tuple(recs.groupby("customer_id")))
    for cid in ids:
        purchased = bought.get(cid, set()) if filter_purchased else set()
        available = len(set(model.item_ids_) - set(banned) - purchased)
        group = got.get(cid, recs.iloc[:0])
        assert not (set(group["item_id"]) & purchased)
        assert len(group) == min(k, available) and group["item_id"].is_unique


def test_optuna_search_saves_the_tuned_values(small_world, tmp_path) -> None:
    pytest.importorskip("optuna")
    _, clicks, ctx = small_world
    cfg = RankerConfig(
        n_windows=2,
        max_rounds=20,
        early_stopping_rounds=5,
        tune=True,
        tune_trials=2,
        validate_against_blend=False,
    )
    model = RankerRecommender(cfg).fit(clicks, ctx)
    tuned = model.fit_summary_["tuned"]
    assert tuned["trials"] == 2 and {"learning_rate", "num_leaves"} <= set(tuned)
    assert model.fit_summary_["params"]["num_leaves"] == tuned["num_leaves"]
    loaded = RankerRecommender.load(model.save(tmp_path / "tuned"))
    assert loaded.fit_summary_["tuned"] == tuned and loaded.state_.params["num_leaves"] == tuned["num_leaves"]


def test_candidate_recall_on_a_later_window_per_source_and_union(small_world) -> None:
    _, clicks, ctx = small_world
    train, test = time_split(clicks, 5)
    config = RankerConfig(n_windows=2, max_rounds=20, validate_against_blend=False)
    model = RankerRecommender(config).fit(train, ctx)
    table = model.candidate_recall(test)
    assert list(table.columns) == ["source", "recall", "candidates_per_customer"]
    recall = table.set_index("source")["recall"]
    assert 0 < recall["union"] <= 1 and (recall.drop("union") <= recall["union"] + 1e-12).all()
    assert set(recall.index) >= {"history", "popular", "union"}


@pytest.fixture(scope="module")
def small_world_sim(small_catalogue):
    from fashion_reco.data.simulation import simulate_retail

    sim = simulate_retail(small_catalogue, n_customers=600, days=42, seed=11)
    ctx = FitContext(
        item_ids=small_catalogue["item_id"].to_numpy(),
        item_labels=small_catalogue["label"].to_numpy(),
        customers=sim.customers.frame,
    )
    return sim.interactions, ctx


@pytest.fixture(scope="module")
def simulated_fit(small_world_sim):
    interactions, ctx = small_world_sim
    return RankerRecommender(RankerConfig(n_windows=2, max_rounds=60)).fit(interactions, ctx)


def test_validation_gate_pools_several_windows_and_serves_the_ranker_only_on_a_positive_gain(
    simulated_fit,
) -> None:
    model = simulated_fit
    gate = model.fit_summary_["validation_gate"]
    windows = gate["windows"]
    # n_windows=2 training windows + the early-stopping window: the default two latest windows are pooled, each
    # scored by a ranker trained only on the windows before it
    assert len(windows) == 2
    assert [w["train_windows"] for w in windows] == [1, 2]
    assert windows[0]["cut"] < windows[1]["cut"] and gate["cut"] == windows[0]["cut"]
    assert gate["customers"] == sum(w["customers"] for w in windows) > 0
    pooled = sum(w["ranker"] * w["customers"] for w in windows) / gate["customers"]
    assert gate["ranker"] == pytest.approx(pooled)
    assert 0.0 <= gate["ranker"] <= 1.0 and 0.0 <= gate["blend"] <= 1.0
    assert gate["gain"] == pytest.approx(gate["ranker"] - gate["blend"])
    low, high = gate["interval"]
    assert low <= gate["gain"] <= high
    assert gate["decision"] == ("ranker" if gate["gain"] > 0 else "blend")
    assert model.fit_summary_["model"] == gate["decision"]
    assert "validation gate (2 windows" in model.summary()


def test_the_gate_pools_as_many_windows_as_configured(small_world_sim) -> None:
    interactions, ctx = small_world_sim
    config = RankerConfig(n_windows=3, max_rounds=20, validation_windows=1)
    gate = RankerRecommender(config).fit(interactions, ctx).fit_summary_["validation_gate"]
    assert [w["train_windows"] for w in gate["windows"]] == [3]
    config = RankerConfig(
        n_windows=3, max_rounds=20, validation_windows=9
    )  # at most every window with a past
    gate = RankerRecommender(config).fit(interactions, ctx).fit_summary_["validation_gate"]
    assert [w["train_windows"] for w in gate["windows"]] == [1, 2, 3]


def test_the_blend_is_served_when_it_wins_the_validation_gate(small_world, monkeypatch) -> None:
    _customers, clicks, ctx = small_world

    def blend_wins(self, *args, **kwargs):
        return {
            "windows": [{"cut": "c", "train_windows": 1, "customers": 7, "ranker": 0.01, "blend": 0.02}],
            "cut": "c",
            "customers": 7,
            "ranker": 0.01,
            "blend": 0.02,
            "gain": -0.01,
            "interval": [-0.02, 0.0],
            "decision": "blend",
        }

    monkeypatch.setattr(RankerRecommender, "_validation_gate", blend_wins)
    model = RankerRecommender(RankerConfig(n_windows=2, max_rounds=20)).fit(clicks, ctx)
    assert model.fit_summary_["model"] == "blend" and model.fallback_ is not None
    assert "did not beat the blend" in model.fit_summary_["fallback"]
    assert len(model.recommend(["never-seen"], k=5)) == 5


def test_validation_gate_can_be_turned_off(small_world) -> None:
    _customers, clicks, ctx = small_world
    model = RankerRecommender(RankerConfig(n_windows=2, max_rounds=20, validate_against_blend=False))
    model.fit(clicks, ctx)
    assert "validation_gate" not in model.fit_summary_ and model.fit_summary_["model"] == "ranker"


def test_similar_items_only_read_the_fitted_state_from_many_threads_and_survive_save_load(
    fitted, tmp_path
) -> None:
    """The "more like this" index is built by fit (part of the frozen state), not on first call: concurrent calls
    assign nothing on the model, agree with brute-force cosine, and a loaded model answers identically."""
    from concurrent.futures import ThreadPoolExecutor

    model, _, _, ctx = fitted
    assert model.state_.similar_index is not None
    attributes = dict(vars(model))
    ids = list(ctx.item_ids[:8])
    banned = [ctx.item_ids[20]]
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda i: model.similar_items([i], k=5, filter_items=banned), ids))
    assert vars(model).keys() == attributes.keys()
    assert all(vars(model)[name] is value for name, value in attributes.items())

    emb = ctx.item_embeddings / np.linalg.norm(ctx.item_embeddings, axis=1, keepdims=True)
    for item, part in zip(ids, parts, strict=True):
        q = list(ctx.item_ids).index(item)
        cos = emb @ emb[q]
        cos[q] = -np.inf
        cos[list(ctx.item_ids).index(banned[0])] = -np.inf
        assert list(part["rank"]) == [1, 2, 3, 4, 5]
        np.testing.assert_allclose(part["score"], np.sort(cos)[::-1][:5], rtol=1e-5, atol=1e-6)
        assert item not in set(part["similar_item_id"]) and banned[0] not in set(part["similar_item_id"])

    loaded = RankerRecommender.load(model.save(tmp_path / "similar"))
    pd.testing.assert_frame_equal(loaded.similar_items(ids, k=5), model.similar_items(ids, k=5))


def test_items_in_reasons_are_named_by_catalogue_name_then_label(fitted) -> None:
    import copy

    from fashion_reco.recommend.ranker_reasons import _names

    model, _, _, ctx = fitted
    named = copy.copy(model)
    named.item_names = {str(ctx.item_ids[0]): "striped shirt"}
    names = _names(named, np.array([0, 1, 0]))
    assert names[0] == names[2] == "the striped shirt"
    assert names[1] == f"the {ctx.item_labels[1]}"


@pytest.mark.parametrize(
    ("ranker_ap", "blend_ap", "served"),
    [
        ([0.5, 0.0, 0.25], [0.5, 0.0, 0.25], "blend"),  # a tie keeps the blend
        ([0.5, 0.1, 0.25], [0.5, 0.0, 0.25], "ranker"),  # any positive pooled gain serves the ranker
        ([0.0, 1.0, 0.0], [0.2, 0.0, 0.2], "ranker"),  # pooled over customer-windows, not window by window
        ([0.0, 0.0, 0.0], [0.0, 0.5, 0.0], "blend"),
    ],
)
def test_the_gate_serves_the_ranker_only_on_a_positive_pooled_gain(
    small_world_sim, monkeypatch, ranker_ap, blend_ap, served
) -> None:
    interactions, ctx = small_world_sim
    calls = []

    def per_window(self, data, context, log, window, *args):
        calls.append(window.cut)
        i = len(calls) - 1  # each gate window contributes its own customers
        return np.array(ranker_ap[i::2], dtype=float), np.array(blend_ap[i::2], dtype=float)

    monkeypatch.setattr(RankerRecommender, "_gate_window", per_window)
    model = RankerRecommender(RankerConfig(n_windows=2, max_rounds=10)).fit(interactions, ctx)
    gate = model.fit_summary_["validation_gate"]
    assert len(calls) == 2 and gate["customers"] == 3
    assert gate["gain"] == pytest.approx(np.mean(ranker_ap) - np.mean(blend_ap))
    assert gate["decision"] == served and model.fit_summary_["model"] == served
    assert (model.fallback_ is None) == (served == "ranker")
