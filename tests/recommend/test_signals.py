"""The blend's building blocks: recency decay, normalisation, co-occurrence, taste, profile, monotone blending."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fashion_reco.config import BlendConfig
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.cooccurrence import item_item_cosine, item_item_random_walk, strongest_links
from fashion_reco.recommend.history import TrainData, decay
from fashion_reco.recommend.normalise import normalise_rows
from fashion_reco.recommend.popularity import popularity_counts, trend_scores
from fashion_reco.recommend.profile import ProfileModel, parse_preferred
from fashion_reco.recommend.taste import closest_history_items, label_visual_affinity, taste_vectors

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e4), min_size=2, max_size=20), st.floats(0.01, 1e3))
def test_decay_is_monotone_in_age(ages: list[float], half_life: float) -> None:
    a = np.sort(np.asarray(ages))
    w = decay(a, half_life)
    assert np.all(np.diff(w) <= 1e-15)
    assert np.all((w > 0) | (a / half_life > 1000)) and np.all(w <= 1.0)
    assert decay(np.array([half_life]), half_life)[0] == pytest.approx(0.5)
    assert np.all(decay(a, None) == 1.0)


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(2, 30)), elements=finite),
    st.sampled_from(["zscore", "max", "rank"]),
)
def test_normalisation_preserves_order_within_rows(x: np.ndarray, method: str) -> None:
    z = normalise_rows(x, method)
    assert z.shape == x.shape and np.isfinite(z).all()
    for row in range(x.shape[0]):
        order = np.argsort(x[row], kind="stable")
        assert np.all(np.diff(z[row][order]) >= -1e-5)
    if method == "max":
        assert np.all(np.abs(z) <= 1 + 1e-6)
        np.testing.assert_array_equal(z[x == 0], 0)


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["visual", "behaviour", "popularity", "trend", "profile"]),
        st.floats(0, 5),
        min_size=1,
    ),
    st.sampled_from(["visual", "behaviour", "popularity", "trend", "profile"]),
    st.floats(0, 5),
    st.integers(0, 1000),
)
def test_blend_score_non_decreasing_in_each_weight(
    weights: dict[str, float], raised: str, delta: float, seed: int
) -> None:
    """Raising w_s never lowers the blended score of an item whose normalised signal s is >= 0."""
    rng = np.random.default_rng(seed)
    model = BlendRecommender.__new__(BlendRecommender)
    model.data_ = TrainData.build(None, item_ids=[f"i{j}" for j in range(9)])
    sig = {s: rng.standard_normal((3, 9)).astype(np.float32) for s in ("visual", "behaviour", "profile")}
    sig.update({s: rng.standard_normal((1, 9)).astype(np.float32) for s in ("popularity", "trend")})
    before = BlendRecommender.combine(model, sig, weights)
    higher = dict(weights)
    higher[raised] = higher.get(raised, 0.0) + delta
    after = BlendRecommender.combine(model, sig, higher)
    nonneg = np.broadcast_to(sig[raised] >= 0, before.shape)
    assert np.all(after[nonneg] >= before[nonneg] - 1e-4)
    assert np.all(after[~nonneg] <= before[~nonneg] + 1e-4)


def _toy_matrix() -> sp.csr_matrix:
    # 4 customers × 5 items; items 0 and 1 are always bought together, item 4 never
    return sp.csr_matrix(
        np.array([[5, 5, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 3, 3, 0], [5, 5, 0, 1, 0]], dtype=np.float32)
    )


def test_random_walk_rows_are_probabilities_and_rank_copurchases_first() -> None:
    w = item_item_random_walk(_toy_matrix(), n_neighbours=5).toarray()
    np.testing.assert_allclose(w.sum(axis=1)[:4], 1.0, atol=1e-5)
    assert w[4].sum() == 0
    assert np.argmax(w[0, 1:]) + 1 == 1
    pruned = item_item_random_walk(_toy_matrix(), n_neighbours=2)
    assert np.diff(pruned.indptr).max() <= 2


def test_cosine_dense_and_sparse_paths_agree_and_are_symmetric() -> None:
    x = sp.random(60, 40, density=0.1, random_state=3, format="csr") * 4
    dense = item_item_cosine(x, n_neighbours=40).toarray()
    sparse = item_item_cosine(x, n_neighbours=40, dense_max_items=1).toarray()
    np.testing.assert_allclose(dense, sparse, atol=1e-6)
    np.testing.assert_allclose(dense, dense.T, atol=1e-6)
    assert np.all(dense <= 1 + 1e-6) and np.all(dense >= 0)


def test_strongest_link_and_closest_history_item() -> None:
    sim = sp.csr_matrix(np.array([[1, 0.9, 0.1], [0.9, 1, 0.2], [0.1, 0.2, 1]], dtype=np.float32))
    history = sp.csr_matrix(np.array([[1.0, 0, 2.0]], dtype=np.float32))
    links, strength = strongest_links(history, sim, np.array([[1]]))
    assert links[0, 0] == 0 and strength[0, 0] == pytest.approx(0.9)  # 1.0 * 0.9 beats 2.0 * 0.2
    emb = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    best, cos = closest_history_items(history, emb, np.array([[1]]))
    assert best[0, 0] == 0 and cos[0, 0] == pytest.approx(0.8)


def test_taste_vectors_and_label_conditional_affinity() -> None:
    emb = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.8, 0]], dtype=np.float32)
    history = sp.csr_matrix(np.array([[2.0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    t = taste_vectors(history, emb)
    np.testing.assert_allclose(t, [[1, 0, 0], [0, 0, 0]])
    labels = np.array([0, 1, 1, 0])
    aff = label_visual_affinity(history, emb, labels)
    assert aff.shape == (2, 4)
    assert aff[0, 0] > aff[0, 3] > aff[0, 2]
    np.testing.assert_array_equal(aff[1], 0)


def test_popularity_and_trend_count_distinct_customers() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c"],
            "item_id": ["x", "x", "x", "y"],
            "event_type": ["view", "purchase", "view", "view"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-10", "2024-01-02"]),
        }
    )
    data = TrainData.build(frame)
    np.testing.assert_array_equal(popularity_counts(data), [2, 1])
    trend = trend_scores(data, half_life_days=1.0)
    assert trend[0] == pytest.approx(1.0 + 0.5)
    assert trend[1] == pytest.approx(0.5**8)


def test_profile_learns_label_affinity_from_similar_customers() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["y1", "y2", "o1", "o2"],
            "item_id": ["dress1", "dress2", "hat1", "hat2"],
            "event_type": ["purchase"] * 4,
            "timestamp": pd.Timestamp("2024-01-01"),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["y1", "y2", "o1", "o2", "new_young", "new_pref"],
            "age_band": ["18-24", "18-24", "55+", "55+", "18-24", None],
            "preferred_labels": [None, None, None, None, None, "hat"],
        }
    )
    items = ["dress1", "dress2", "hat1", "hat2"]
    data = TrainData.build(frame, item_ids=items, extra_customer_ids=customers["customer_id"])
    model = ProfileModel.fit(
        data, np.array(["dress", "dress", "hat", "hat"], dtype=object), customers, data.history_matrix()
    )
    rows = data.customer_rows(["new_young", "new_pref"])
    aff = model.affinity(rows, sp.csr_matrix((2, 4)))
    dress, hat = list(model.classes).index("dress"), list(model.classes).index("hat")
    assert aff[0, dress] > aff[0, hat]
    assert aff[1, hat] > aff[1, dress]
    assert model.preferred_rows(rows)[1, hat]
    assert parse_preferred("a; b,c") == ["a", "b", "c"] and parse_preferred(float("nan")) == []


def test_blend_config_weights_used_when_not_tuning(small_world) -> None:
    _, clicks, ctx = small_world
    model = BlendRecommender(BlendConfig(tune=False, visual_weight=0.0, trend_weight=0.5)).fit(clicks, ctx)
    assert model.weights_["visual"] == 0.0 and model.weights_["trend"] == 0.5
    assert model.tuning_ is None
    assert set(model.signals_) == {"visual", "behaviour", "popularity", "trend", "profile"}
