"""Cosine similarity and top-k: properties (Hypothesis) and the exact / faiss indexes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fashion_reco.config import BlendConfig
from fashion_reco.errors import RecommendError
from fashion_reco.recommend.similarity import (
    ExactIndex,
    FaissIndex,
    build_index,
    cosine_similarity,
    cosine_topk,
    faiss_available,
    l2_normalise,
    recall_at_k_vs_exact,
)
from fashion_reco.recommend.topk import topk_rows

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32)


def vectors(n_min: int = 1, n_max: int = 12, d_min: int = 1, d_max: int = 8):
    return st.integers(n_min, n_max).flatmap(
        lambda n: st.integers(d_min, d_max).flatmap(lambda d: arrays(np.float32, (n, d), elements=finite))
    )


def nonzero_rows(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x.astype(np.float64), axis=1) > 1e-3


def reference_topk(scores: np.ndarray, k: int, order: np.ndarray | None = None) -> np.ndarray:
    """Full sort by (-score, tie-break position)."""
    n_cols = scores.shape[1]
    order = np.arange(n_cols) if order is None else order
    position = np.empty(n_cols, dtype=np.int64)
    position[order] = np.arange(n_cols)
    keys = np.broadcast_to(position, scores.shape)
    return np.lexsort((keys, -scores), axis=1)[:, :k]


@settings(max_examples=60, deadline=None)
@given(vectors())
def test_cosine_symmetric_bounded_and_self_one(x: np.ndarray) -> None:
    s = cosine_similarity(x)
    assert np.all(s <= 1.0) and np.all(s >= -1.0)
    np.testing.assert_allclose(s, s.T, atol=1e-6)
    ok = nonzero_rows(x)
    np.testing.assert_allclose(np.diag(s)[ok], 1.0, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(vectors(), st.floats(0.01, 1000), st.floats(0.01, 1000))
def test_cosine_scale_invariant(x: np.ndarray, a: float, b: float) -> None:
    ok = nonzero_rows(x)
    x = x[ok]
    if len(x) == 0:
        return
    s = cosine_similarity(x)
    s_scaled = cosine_similarity(x * np.float32(a), x * np.float32(b))
    np.testing.assert_allclose(s, s_scaled, atol=1e-4)


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 40)),
        elements=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    ),
    st.integers(1, 45),
    st.booleans(),
)
def test_topk_equals_full_sort_with_ties(scores: np.ndarray, k: int, use_order: bool) -> None:
    """Heavily tied scores: the result is exactly the full sort by (-score, tie-break order)."""
    n_cols = scores.shape[1]
    order = np.random.default_rng(n_cols).permutation(n_cols) if use_order else None
    idx, vals = topk_rows(scores, k, order=order)
    expected = reference_topk(scores, min(k, n_cols), order)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(vals, np.take_along_axis(scores, expected, axis=1))


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(50, 400)), elements=finite), st.integers(1, 6)
)
def test_topk_fast_path_matches_full_sort(scores: np.ndarray, k: int) -> None:
    """k much smaller than the columns takes the group-maximum path; it must agree with a full sort."""
    idx, _ = topk_rows(scores, k)
    np.testing.assert_array_equal(idx, reference_topk(scores, k))


def test_topk_masked_columns_never_returned() -> None:
    scores = np.array([[1.0, -np.inf, 0.5, -np.inf], [-np.inf, -np.inf, -np.inf, 3.0]], dtype=np.float32)
    idx, vals = topk_rows(scores, 3)
    valid = np.isfinite(vals)
    assert set(idx[0][valid[0]]) == {0, 2}
    assert list(idx[1][valid[1]]) == [3]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 40),
    st.integers(1, 10),
    st.integers(0, 2**31 - 1),
    st.integers(1, 7),
)
def test_cosine_topk_filters_never_leak(n_items: int, k: int, seed: int, chunk: int) -> None:
    rng = np.random.default_rng(seed)
    corpus = rng.standard_normal((n_items, 6)).astype(np.float32)
    queries = corpus[: min(5, n_items)]
    n_q = len(queries)
    allowed = rng.random(n_items) < 0.7
    denied = rng.random(n_items) < 0.2
    pairs = sp.random(n_q, n_items, density=0.2, random_state=seed % 1000, format="csr").astype(bool)
    self_ix = np.arange(n_q)
    idx, vals = cosine_topk(
        queries, corpus, k, exclude=self_ix, allowed_mask=allowed, denied_mask=denied, chunk_size=chunk
    )
    idx2, _ = cosine_topk(queries, corpus, k, exclude=pairs, allowed_mask=allowed, chunk_size=chunk)
    dense_pairs = pairs.toarray()
    for q in range(n_q):
        got = idx[q][idx[q] >= 0]
        assert q not in got
        assert allowed[got].all() and not denied[got].any()
        assert len(got) == min(k, int((allowed & ~denied).sum() - (allowed[q] and not denied[q])))
        got2 = idx2[q][idx2[q] >= 0]
        assert not dense_pairs[q, got2].any() and allowed[got2].all()
    assert np.all(vals[idx >= 0] <= 1.0)


def test_cosine_topk_chunking_invariant_and_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((300, 16)).astype(np.float32)
    q = rng.standard_normal((37, 16)).astype(np.float32)
    full = cosine_similarity(q, corpus)
    expected = reference_topk(full, 10)
    for chunk in (1, 7, 64, 1000):
        idx, vals = cosine_topk(q, corpus, 10, chunk_size=chunk)
        np.testing.assert_array_equal(idx, expected)
        np.testing.assert_allclose(vals, np.take_along_axis(full, expected, 1), atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(1, 12),
    st.integers(1, 9),
    st.integers(0, 2**31 - 1),
)
def test_cosine_topk_tiles_merge_to_the_untiled_result(n_items: int, k: int, tile: int, seed: int) -> None:
    """Scoring the corpus tile by tile and merging the per-tile top-k gives the one-pass result, ties included.

    Entries in {-1, 0, 1} and ``normalise=False`` make every dot product an exact small integer whatever the BLAS
    kernel's summation order, so ties are real ties and the comparison can be exact.
    """
    rng = np.random.default_rng(seed)
    corpus = rng.integers(-1, 2, (n_items, 4)).astype(np.float32)
    queries = rng.integers(-1, 2, (7, 4)).astype(np.float32)
    denied = rng.random(n_items) < 0.2
    pairs = sp.random(7, n_items, density=0.2, random_state=seed % 1000, format="csr").astype(bool)
    options = {"exclude": pairs, "denied_mask": denied, "chunk_size": 3, "normalise": False}
    one_pass = cosine_topk(queries, corpus, k, tile_size=n_items, **options)
    tiled = cosine_topk(queries, corpus, k, tile_size=tile, **options)
    np.testing.assert_array_equal(tiled[0], one_pass[0])
    np.testing.assert_array_equal(tiled[1], one_pass[1])
    scores = queries @ corpus.T
    scores[:, denied] = -np.inf
    scores[pairs.toarray()] = -np.inf
    expected = reference_topk(scores, min(k, n_items))
    valid = tiled[0] >= 0
    np.testing.assert_array_equal(tiled[0][valid], expected[valid])


def test_cosine_topk_rejects_bad_input() -> None:
    with pytest.raises(RecommendError, match="shape"):
        cosine_topk(np.ones((2, 3)), np.ones((4, 5)), 2)
    with pytest.raises(RecommendError, match="finite"):
        cosine_topk(np.full((1, 3), np.nan), np.ones((4, 3)), 2)
    with pytest.raises(RecommendError, match="allowed_mask"):
        cosine_topk(np.ones((1, 3)), np.ones((4, 3)), 2, allowed_mask=np.ones(3, dtype=bool))


def test_l2_normalise_keeps_zero_rows() -> None:
    x = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 0.0]])


def test_build_index_switches_to_faiss_above_exact_max_items() -> None:
    emb = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
    assert isinstance(build_index(emb, BlendConfig()), ExactIndex)
    if faiss_available():
        assert isinstance(build_index(emb, BlendConfig(exact_max_items=10)), FaissIndex)
    assert isinstance(build_index(emb, BlendConfig(exact_max_items=10, ann_backend="none")), ExactIndex)


@pytest.mark.skipif(not faiss_available(), reason="faiss (extra 'ann') not installed")
def test_faiss_hnsw_recall_against_exact() -> None:
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((20, 64))
    emb = (centres[rng.integers(0, 20, 3000)] + 0.5 * rng.standard_normal((3000, 64))).astype(np.float32)
    index = FaissIndex(emb, num_threads=1)
    q = emb[:200]
    recall = recall_at_k_vs_exact(index, q, 10, exclude=np.arange(200))
    assert recall >= 0.9
    idx, vals = index.search(q, 10, exclude=np.arange(200))
    assert not (idx == np.arange(200)[:, None]).any()
    assert np.all(np.diff(vals, axis=1) <= 1e-6)
    exact = FaissIndex(emb, kind="flat")
    assert recall_at_k_vs_exact(exact, q, 10) == pytest.approx(1.0)
