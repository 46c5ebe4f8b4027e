"""Sparse candidate scoring returns exactly what dense scoring returns: the top-k helpers and the blend end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.cooccurrence import prune_rows, strongest_links
from fashion_reco.recommend.topk import csr_topk, segment_topk, topk_rows, topk_sparse_plus_rows

EVENTS = ["view", "add_to_cart", "purchase"]


def _quantised(rng: np.random.Generator, shape: tuple[int, ...], levels: int) -> np.ndarray:
    """Values on a coarse grid, so that exact ties are common."""
    return (rng.integers(0, levels, size=shape) / levels).astype(np.float32)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 7),
    m=st.integers(1, 25),
    groups=st.integers(1, 3),
    k=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    levels=st.sampled_from([2, 3, 8, 1000]),
    seed=st.integers(0, 10_000),
    with_exclude=st.booleans(),
    with_denied=st.booleans(),
)
def test_sparse_plus_rows_equals_dense_topk(
    n: int,
    m: int,
    groups: int,
    k: int,
    density: float,
    levels: int,
    seed: int,
    with_exclude: bool,
    with_denied: bool,
) -> None:
    rng = np.random.default_rng(seed)
    values = _quantised(rng, (n, m), levels) * (rng.random((n, m)) < density)
    sparse = sp.csr_matrix(values)
    scale = _quantised(rng, (n,), 4) * 2
    rows = _quantised(rng, (groups, m), levels)
    if with_denied:
        rows[:, rng.random(m) < 0.3] = -np.inf
    group = rng.integers(0, groups, n)
    exclude = sp.csr_matrix(rng.random((n, m)) < 0.2) if with_exclude else None
    order = rng.permutation(m)
    position = np.empty(m, dtype=np.int64)
    position[order] = np.arange(m)

    dense = rows[group] + values * scale[:, None]
    if exclude is not None:
        dense[exclude.toarray()] = -np.inf
    want_idx, want_vals = topk_rows(dense, k, order=order)
    idx, vals, parts = topk_sparse_plus_rows(sparse, scale, rows, group, k, position, exclude=exclude)
    valid = np.isfinite(want_vals)
    np.testing.assert_array_equal(np.isfinite(vals), valid)
    np.testing.assert_array_equal(idx[valid], want_idx[valid])
    np.testing.assert_array_equal(vals[valid], want_vals[valid])
    picked = np.take_along_axis(values * scale[:, None], np.maximum(idx, 0), 1)
    np.testing.assert_array_equal(parts[valid], picked[valid])


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(1, 6),
    m=st.integers(1, 300),
    k=st.integers(0, 40),
    density=st.floats(0.0, 1.0),
    levels=st.sampled_from([2, 5, 1000]),
    signed=st.booleans(),
    spread=st.sampled_from([1.0, 1e-30, 1e30]),
    seed=st.integers(0, 10_000),
    double=st.booleans(),
)
def test_csr_topk_equals_full_sort(
    n: int, m: int, k: int, density: float, levels: int, signed: bool, spread: float, seed: int, double: bool
) -> None:
    """Bucketed pre-selection keeps every row's exact top-k: ties, signs, -0.0, huge and tiny magnitudes."""
    rng = np.random.default_rng(seed)
    dtype = np.float64 if double else np.float32
    values = _quantised(rng, (n, m), levels).astype(dtype) * dtype(spread)
    if signed:
        values -= dtype(0.5 * spread)
    values[rng.random((n, m)) < 0.05] = -0.0
    values[:, : min(m, 2)] *= dtype(1e6)  # outliers in the first columns
    mask = rng.random((n, m)) < density
    rows, cols = np.nonzero(mask)
    matrix = sp.csr_matrix((values[mask], (rows, cols)), shape=(n, m))  # explicit (-)zeros kept
    got = csr_topk(matrix, k)
    assert got.has_sorted_indices
    for r in range(n):
        stored = np.flatnonzero(mask[r])
        best = stored[np.lexsort((stored, -values[r, stored]))][:k]
        np.testing.assert_array_equal(got.indices[got.indptr[r] : got.indptr[r + 1]], np.sort(best))
    if k > 0:
        np.testing.assert_array_equal(prune_rows(matrix, k).toarray(), got.toarray())


def test_sparse_plus_rows_refuses_negative_parts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        topk_sparse_plus_rows(
            sp.csr_matrix(np.array([[0.0, -1.0]], dtype=np.float32)),
            np.ones(1, dtype=np.float32),
            np.zeros((1, 2), dtype=np.float32),
            np.zeros(1, dtype=np.int64),
            1,
            np.arange(2),
        )


def test_segment_topk_orders_by_value_then_position() -> None:
    row = np.array([0, 0, 0, 2, 2])
    col = np.array([3, 1, 2, 0, 1])
    val = np.array([0.5, 0.5, 0.9, 0.1, 0.2], dtype=np.float32)
    position = np.array([3, 2, 1, 0])  # column 3 wins ties over column 1
    idx, vals, src = segment_topk(row, col, val, 3, 2, position)
    np.testing.assert_array_equal(idx[0], [2, 3])
    np.testing.assert_array_equal(src[0], [2, 0])
    assert np.isneginf(vals[1]).all() and (src[1] == -1).all()
    np.testing.assert_array_equal(idx[2], [1, 0])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), m=st.integers(1, 12), k=st.integers(1, 5))
def test_strongest_links_equals_brute_force(seed: int, n: int, m: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    h = _quantised(rng, (n, m), 3) * (rng.random((n, m)) < 0.5)
    s = _quantised(rng, (m, m), 3) * (rng.random((m, m)) < 0.6)
    asked = np.where(rng.random((n, k)) < 0.7, rng.integers(0, m, (n, k)), -1)
    links, strength = strongest_links(sp.csr_matrix(h), sp.csr_matrix(s), asked)
    for r in range(n):
        for c in range(k):
            i = asked[r, c]
            products = h[r].astype(np.float64) * s[:, i] if i >= 0 else np.zeros(m)
            if i < 0 or products.max(initial=0.0) <= 0:
                assert links[r, c] == -1 and strength[r, c] == 0
            else:
                assert links[r, c] == int(np.argmax(products))  # first maximum: lowest column
                assert strength[r, c] == pytest.approx(products.max())


def _random_log(rng: np.random.Generator, n_customers: int, n_items: int, n_events: int) -> pd.DataFrame:
    start = np.datetime64("2024-01-01T00:00:00", "ns")
    return pd.DataFrame(
        {
            Columns.CUSTOMER_ID: [f"c{v}" for v in rng.integers(0, n_customers, n_events)],
            Columns.ITEM_ID: [f"i{v:02d}" for v in rng.integers(0, n_items, n_events)],
            Columns.EVENT_TYPE: rng.choice(EVENTS, n_events, p=[0.6, 0.2, 0.2]),
            Columns.TIMESTAMP: start + (rng.random(n_events) * 10 * 86_400e9).astype("timedelta64[ns]"),
        }
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_items=st.integers(2, 25),
    n_events=st.integers(1, 80),
    k=st.integers(1, 30),
    similarity=st.sampled_from(["random_walk", "cosine"]),
    neighbours=st.integers(1, 6),
    chunk=st.sampled_from([1, 3, 2048]),
    filter_purchased=st.booleans(),
    denied_share=st.sampled_from([0.0, 0.3]),
    allowed_share=st.sampled_from([None, 0.5, 0.1]),
    random_weights=st.booleans(),
)
def test_sparse_candidates_equal_dense_blend(
    seed: int,
    n_items: int,
    n_events: int,
    k: int,
    similarity: str,
    neighbours: int,
    chunk: int,
    filter_purchased: bool,
    denied_share: float,
    allowed_share: float | None,
    random_weights: bool,
) -> None:
    """Same rows, scores, ranks and reasons from both paths, with filters, cold and history-less customers."""
    rng = np.random.default_rng(seed)
    log = _random_log(rng, 8, n_items, n_events)
    items = np.array([f"i{j:02d}" for j in range(n_items)], dtype=object)
    # c100 and c101 are known from the customer table only: warm rows without history (cold weights).
    customers = pd.DataFrame({Columns.CUSTOMER_ID: ["c100", "c101"]})
    config = BlendConfig(tune=False, similarity_chunk_size=chunk)
    model = BlendRecommender(config, n_neighbours=neighbours, item_similarity=similarity)
    model.fit(log, FitContext(item_ids=items, customers=customers))
    assert set(model.signals_) == {"behaviour", "popularity", "trend"}
    if random_weights:
        model.weights_ = {s: float(rng.choice([0.0, 0.3, 1.0])) for s in model.signals_}
        model.cold_weights_ = {s: float(rng.choice([0.0, 0.5])) for s in ("popularity", "trend")}
    asked = [*[f"c{j}" for j in range(8)], "c100", "c101", "never-seen"]
    denied = list(items[rng.random(n_items) < denied_share])
    allowed = None if allowed_share is None else list(items[rng.random(n_items) < allowed_share])
    kwargs = {
        "k": k,
        "filter_already_purchased": filter_purchased,
        "filter_items": denied,
        "allowed_items": allowed,
    }
    assert model._sparse_ready()
    sparse = model.recommend(asked, **kwargs)
    model.sparse_candidates = False
    dense = model.recommend(asked, **kwargs)
    pd.testing.assert_frame_equal(sparse, dense)


def test_sparse_path_is_used_only_when_exact(small_world) -> None:
    """Visual or profile signals (dense per customer), or a negative weight, keep the dense path."""
    _, clicks, ctx = small_world
    config = BlendConfig(tune=False)
    with_images = BlendRecommender(config).fit(clicks, ctx)
    assert "visual" in with_images.signals_ and not with_images._sparse_ready()
    behaviour_only = BlendRecommender(config).fit(clicks, FitContext(item_ids=ctx.item_ids))
    assert behaviour_only._sparse_ready()
    behaviour_only.weights_ = {**behaviour_only.weights_, "trend": -0.1}
    assert not behaviour_only._sparse_ready()
    behaviour_only.weights_ = {**behaviour_only.weights_, "trend": 0.1}
    behaviour_only.normalisation = "zscore"
    assert not behaviour_only._sparse_ready()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_events=st.integers(0, 60))
def test_strongest_event_matrix_matches_the_log(seed: int, n_events: int) -> None:
    from fashion_reco.recommend.history import TrainData
    from fashion_reco.recommend.reasons import strongest_event_matrix as _strongest_event_matrix

    rng = np.random.default_rng(seed)
    items = [f"i{j:02d}" for j in range(9)]
    data = TrainData.build(_random_log(rng, 6, 9, n_events), item_ids=items, extra_customer_ids=["c99"])
    got = _strongest_event_matrix(data)
    assert got.has_sorted_indices and got.dtype == np.int8
    np.testing.assert_array_equal(got.toarray(), data.strongest_event_matrix().toarray())
