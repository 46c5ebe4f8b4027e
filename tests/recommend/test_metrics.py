"""Ranking metrics: hand-computed values on small cases, bounds as properties, and the frame → hit-matrix merge."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fashion_reco.recommend.metrics import (
    coverage,
    hit_matrix,
    hit_rate_at_k,
    intra_list_diversity,
    map_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)

# Customer A: hits at ranks 1 and 3 of 4, 3 relevant items in total.  Customer B: one hit at rank 2, 1 relevant.
HITS = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=bool)
N_REL = np.array([3, 1])


def test_precision_recall_hit_rate_by_hand() -> None:
    assert precision_at_k(HITS, N_REL) == pytest.approx(((2 / 4) + (1 / 4)) / 2)
    assert recall_at_k(HITS, N_REL) == pytest.approx(((2 / 3) + 1.0) / 2)
    assert hit_rate_at_k(HITS, N_REL) == pytest.approx(1.0)
    assert precision_at_k(HITS, N_REL, k=1) == pytest.approx(0.5)


def test_map_by_hand() -> None:
    ap_a = (1 / 1 + 2 / 3) / min(4, 3)
    ap_b = (1 / 2) / 1
    assert map_at_k(HITS, N_REL) == pytest.approx((ap_a + ap_b) / 2)
    np.testing.assert_allclose(map_at_k(HITS, N_REL, per_customer=True), [ap_a, ap_b])


def test_ndcg_by_hand() -> None:
    dcg_a = 1 / math.log2(2) + 1 / math.log2(4)
    idcg_a = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    dcg_b = 1 / math.log2(3)
    idcg_b = 1.0
    assert ndcg_at_k(HITS, N_REL) == pytest.approx((dcg_a / idcg_a + dcg_b / idcg_b) / 2)


def test_customers_without_relevant_items_are_skipped() -> None:
    hits = np.array([[1, 0], [0, 0]], dtype=bool)
    assert precision_at_k(hits, [1, 0]) == pytest.approx(0.5)
    assert np.isnan(ndcg_at_k(hits, [1, 0], per_customer=True)[1])


@settings(max_examples=80, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 8), st.integers(1, 10))), st.data())
def test_metric_bounds_and_perfect_lists(hits: np.ndarray, data: st.DataObject) -> None:
    n_rel = np.maximum(hits.sum(axis=1), 1) + data.draw(
        arrays(np.int64, hits.shape[0], elements=st.integers(0, 5))
    )
    for fn in (precision_at_k, recall_at_k, map_at_k, ndcg_at_k, hit_rate_at_k):
        value = fn(hits, n_rel)
        assert 0.0 <= value <= 1.0 + 1e-12
    k = hits.shape[1]
    perfect = np.arange(k)[None, :] < np.minimum(n_rel, k)[:, None]
    assert ndcg_at_k(perfect, n_rel) == pytest.approx(1.0)
    assert map_at_k(perfect, n_rel) == pytest.approx(1.0)
    # moving a hit to a better rank never lowers NDCG
    for row in range(hits.shape[0]):
        pos = np.flatnonzero(hits[row])
        free = np.flatnonzero(~hits[row])
        if pos.size and free.size and free[0] < pos[-1]:
            better = hits.copy()
            better[row, pos[-1]] = False
            better[row, free[0]] = True
            assert ndcg_at_k(better, n_rel) >= ndcg_at_k(hits, n_rel) - 1e-12


def test_hit_matrix_from_frames() -> None:
    recs = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "y", "z", "x", "q"],
            "rank": [1, 2, 3, 1, 2],
        }
    )
    relevant = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "item_id": ["z", "w", "q", "x"]})
    hits, n_rel = hit_matrix(recs, relevant, ["a", "b", "c"], k=3)
    np.testing.assert_array_equal(hits, [[False, False, True], [False, True, False], [False, False, False]])
    np.testing.assert_array_equal(n_rel, [2, 1, 1])


def test_coverage_novelty_diversity_by_hand() -> None:
    assert coverage(["a", "b", "a"], 4) == pytest.approx(0.5)
    counts = pd.Series({"a": 3, "b": 0})
    expected = np.mean([-math.log2(4 / 4), -math.log2(1 / 4), -math.log2(4 / 4)])
    assert novelty(["a", "b", "a"], counts, 3) == pytest.approx(expected)
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    # list 1: orthogonal pair → 1 - 0; list 2: identical pair → 1 - 1; list 3: one item → skipped
    lists = np.array([[0, 1], [0, 2], [1, -1]])
    assert intra_list_diversity(lists, emb) == pytest.approx(0.5)
    assert math.isnan(intra_list_diversity(lists, None))
