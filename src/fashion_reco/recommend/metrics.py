"""Offline ranking metrics, vectorised over customers.

Accuracy metrics take a boolean *hit matrix* ``hits`` of shape ``(n_customers, k)`` — ``hits[u, r]`` is True when
the item at rank ``r + 1`` of customer ``u``'s list is relevant (padding positions are False) — and ``n_relevant``,
the number of relevant items per customer (binary relevance). Each returns the mean over customers with at least
one relevant item (``per_customer=True`` returns the per-customer values, NaN where nothing is relevant).

* precision@k = hits / k
* recall@k    = hits / |relevant|
* AP@k        = Σ_r P@r · rel_r / min(k, |relevant|);  MAP@k is its mean
* NDCG@k      = Σ_r rel_r / log2(r + 1) divided by the ideal DCG of min(k, |relevant|) hits
* hit-rate@k  = 1 if any hit

Beyond accuracy: catalogue :func:`coverage`, :func:`novelty` (mean self-information ``-log2 p(item)`` with
``p = (customers who interacted + 1) / (customers + 1)`` from training), and :func:`intra_list_diversity`
(``1 − mean pairwise cosine`` of the recommended items' embeddings within each list).

Uncertainty: :func:`paired_bootstrap` gives the mean difference of two models' per-unit scores (units: customer-
windows) with a percentile bootstrap interval, resampling units with replacement (Efron & Tibshirani 1993, *An
Introduction to the Bootstrap*, ch. 13); the pairing keeps the between-customer variance out of the difference.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.ids import IdLike

__all__ = [
    "coverage",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity",
    "map_at_k",
    "ndcg_at_k",
    "novelty",
    "paired_bootstrap",
    "precision_at_k",
    "recall_at_k",
]


def _check(hits: npt.ArrayLike, n_relevant: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 2:
        raise ValueError(f"hits must be 2-D (customers, k), got shape {h.shape}")
    n = np.asarray(n_relevant, dtype=np.float64).reshape(-1)
    if n.shape[0] != h.shape[0]:
        raise ValueError(f"n_relevant has {n.shape[0]} entries for {h.shape[0]} hit rows")
    return h, n


def _reduce(values: np.ndarray, n_rel: np.ndarray, per_customer: bool) -> np.ndarray | float:
    values = np.where(n_rel > 0, values, np.nan)
    if per_customer:
        return values
    valid = n_rel > 0
    return float(values[valid].mean()) if valid.any() else 0.0


def precision_at_k(
    hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int | None = None, *, per_customer: bool = False
) -> float | np.ndarray:
    """Fraction of the top-k that is relevant (denominator ``k``, default ``hits.shape[1]``)."""
    h, n = _check(hits, n_relevant)
    k = h.shape[1] if k is None else int(k)
    return _reduce(h[:, :k].sum(axis=1) / max(k, 1), n, per_customer)


def recall_at_k(
    hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int | None = None, *, per_customer: bool = False
) -> float | np.ndarray:
    """Fraction of the relevant items found in the top-k."""
    h, n = _check(hits, n_relevant)
    k = h.shape[1] if k is None else int(k)
    return _reduce(h[:, :k].sum(axis=1) / np.maximum(n, 1), n, per_customer)


def map_at_k(
    hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int | None = None, *, per_customer: bool = False
) -> float | np.ndarray:
    """Mean average precision: ``Σ_r P@r · rel_r / min(k, |relevant|)``."""
    h, n = _check(hits, n_relevant)
    k = h.shape[1] if k is None else int(k)
    h = h[:, :k].astype(np.float64)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    ap = (prec * h).sum(axis=1) / np.maximum(np.minimum(n, k), 1)
    return _reduce(ap, n, per_customer)


def ndcg_at_k(
    hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int | None = None, *, per_customer: bool = False
) -> float | np.ndarray:
    """Normalised discounted cumulative gain with binary relevance."""
    h, n = _check(hits, n_relevant)
    k = h.shape[1] if k is None else int(k)
    h = h[:, :k].astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * discount[: h.shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(discount)])
    idcg = ideal_cum[np.minimum(n, k).astype(np.int64)]
    return _reduce(np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0), n, per_customer)


def hit_rate_at_k(
    hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int | None = None, *, per_customer: bool = False
) -> float | np.ndarray:
    """1 when at least one of the top-k is relevant."""
    h, n = _check(hits, n_relevant)
    k = h.shape[1] if k is None else int(k)
    return _reduce(np.asarray(h[:, :k].any(axis=1), dtype=np.float64), n, per_customer)


def hit_matrix(
    recommendations: pd.DataFrame, relevant: pd.DataFrame, customer_ids: Iterable[IdLike], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean hits ``(n_customers, k)`` and relevant counts, by merging lists with relevant pairs (no loops).

    Args:
        recommendations: ``customer_id, item_id, rank`` (rank 1-based).
        relevant: ``customer_id, item_id`` pairs (duplicates ignored).
        customer_ids: the customers to score, in output row order.
        k: list length.
    """
    ids = pd.Index(pd.unique(pd.Series(list(customer_ids), dtype=object)))
    rel = relevant[[Columns.CUSTOMER_ID, Columns.ITEM_ID]].drop_duplicates()
    n_rel = rel[Columns.CUSTOMER_ID].value_counts().reindex(ids, fill_value=0).to_numpy(np.float64)
    recs = recommendations[[Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.RANK]]
    recs = recs[(recs[Columns.RANK] >= 1) & (recs[Columns.RANK] <= k)]
    merged = recs.merge(rel.assign(_hit=True), on=[Columns.CUSTOMER_ID, Columns.ITEM_ID], how="inner")
    hits = np.zeros((len(ids), k), dtype=bool)
    row = ids.get_indexer(merged[Columns.CUSTOMER_ID])
    ok = row >= 0
    hits[row[ok], merged[Columns.RANK].to_numpy(np.int64)[ok] - 1] = True
    return hits, n_rel


def coverage(recommended_item_ids: Iterable[IdLike], n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    if n_items <= 0:
        return 0.0
    return float(pd.unique(pd.Series(list(recommended_item_ids), dtype=object)).size / n_items)


def novelty(
    recommended_item_ids: Iterable[IdLike], train_customer_counts: pd.Series | dict, n_train_customers: int
) -> float:
    """Mean self-information ``-log2((c_i + 1) / (n + 1))`` of the recommended items (higher = less obvious)."""
    recs = pd.Series(list(recommended_item_ids), dtype=object)
    if recs.empty:
        return 0.0
    counts = pd.Series(train_customer_counts, dtype=np.float64)
    c = recs.map(counts).fillna(0.0).to_numpy(np.float64)
    return float(np.mean(-np.log2((c + 1.0) / (n_train_customers + 1.0))))


def intra_list_diversity(
    item_index_lists: np.ndarray, embeddings: np.ndarray, *, chunk_size: int = 4096
) -> float:
    """Mean over lists of ``1 − mean pairwise cosine`` among the list's items (``-1`` entries are padding).

    Lists with fewer than two items are skipped; returns NaN when there are none or no embeddings.
    """
    if embeddings is None:
        return float("nan")
    idx = np.asarray(item_index_lists, dtype=np.int64)
    if idx.ndim != 2 or idx.shape[1] < 2 or idx.shape[0] == 0:
        return float("nan")
    emb = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
    values = []
    for start in range(0, idx.shape[0], chunk_size):
        block = idx[start : start + chunk_size]
        valid = block >= 0
        e = emb[np.maximum(block, 0)] * valid[:, :, None]
        gram = np.einsum("nid,njd->nij", e, e)
        m = valid.sum(axis=1).astype(np.float64)
        pair_sum = (gram.sum(axis=(1, 2)) - np.einsum("nii->n", gram)) / 2.0
        n_pairs = m * (m - 1) / 2.0
        ok = n_pairs > 0
        values.append(1.0 - pair_sum[ok] / n_pairs[ok])
    allv = np.concatenate(values) if values else np.empty(0)
    return float(allv.mean()) if allv.size else float("nan")


# At most this many resampled indices are held at once (32 MiB of int64).
_BOOT_CELLS = 1 << 22


def paired_bootstrap(
    a: npt.ArrayLike, b: npt.ArrayLike, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean(a − b), low, high)``: the percentile bootstrap interval of the mean paired difference.

    ``a`` and ``b`` are per-unit scores of two models on the same units (NaN units are dropped from both). Units are
    resampled with replacement ``n_boot`` times, vectorised in blocks; returns NaNs when no unit is left.
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"paired scores differ in length: {x.shape[0]} vs {y.shape[0]}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    d = (x - y)[np.isfinite(x) & np.isfinite(y)]
    n = d.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot, dtype=np.float64)
    step = max(1, _BOOT_CELLS // n)
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        means[start : start + m] = d[rng.integers(0, n, size=(m, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(d.mean()), float(low), float(high)
