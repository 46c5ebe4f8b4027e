"""Visual signal: a customer's taste vector and its cosine to every item's image embedding.

The taste vector is the recency-decayed, event-weighted mean of the embeddings of the items a customer viewed,
added to cart or bought (``normalise(h · E)``); the visual affinity of item ``i`` is ``cos(taste, E_i)``. For the
explanation, :func:`closest_history_items` finds the history item whose photo is most similar to each recommended
item ("similar to X you viewed").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fashion_reco.recommend.similarity import l2_normalise

__all__ = ["closest_history_items", "taste_vectors", "visual_affinity"]


def taste_vectors(history_rows: sp.spmatrix, embeddings: np.ndarray) -> np.ndarray:
    """``(n_rows, d)`` unit taste vectors (zero rows for customers without history)."""
    h = sp.csr_matrix(history_rows, dtype=np.float32)
    return l2_normalise(np.asarray(h @ embeddings, dtype=np.float32))


def visual_affinity(history_rows: sp.spmatrix, embeddings: np.ndarray) -> np.ndarray:
    """Cosine between each customer's taste vector and every item embedding, float32 ``(n_rows, n_items)``."""
    taste = taste_vectors(history_rows, embeddings)
    return taste @ embeddings.T


def closest_history_items(
    history_rows: sp.csr_matrix, embeddings: np.ndarray, item_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each chosen item ``item_idx[r, c]``, the row's history item with the highest cosine (ties: lower index).

    Returns ``(items, cosines)`` of the shape of ``item_idx`` (``-1`` / ``-inf`` where the row has no history).
    """
    h = sp.csr_matrix(history_rows)
    n_rows, k = item_idx.shape
    best = np.full((n_rows, k), -1, dtype=np.int64)
    best_cos = np.full((n_rows, k), -np.inf, dtype=np.float64)
    if h.nnz == 0 or k == 0:
        return best, best_cos
    # Pair every asked (row, position) — item_idx >= 0 — with every history item of that row.
    t_row, t_pos = np.nonzero(item_idx >= 0)
    per = np.diff(h.indptr)[t_row]
    pair = np.repeat(np.arange(t_row.size), per)
    if pair.size == 0:
        return best, best_cos
    offset = np.arange(pair.size) - np.repeat(np.cumsum(per) - per, per)
    hist_item = h.indices[h.indptr[t_row][pair] + offset].astype(np.int64)
    target = item_idx[t_row, t_pos][pair]
    cos = np.einsum("ij,ij->i", embeddings[hist_item], embeddings[target]).astype(np.float64)
    order = np.lexsort((hist_item, -cos, pair))
    first = np.ones(order.size, dtype=bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    sel = order[first]
    flat = t_row[pair[sel]] * k + t_pos[pair[sel]]
    best.reshape(-1)[flat] = hist_item[sel]
    best_cos.reshape(-1)[flat] = cos[sel]
    return best, best_cos


def label_visual_affinity(
    history_rows: sp.spmatrix,
    embeddings: np.ndarray,
    item_label: np.ndarray,
    *,
    global_mix: float = 0.5,
) -> np.ndarray:
    """Label-conditional visual affinity, float32 ``(n_rows, n_items)``.

    Taste in fashion is per category: the dresses someone likes say little about their shoes. For every label the
    customer has history in, the taste vector is the decayed, event-weighted mean of *that label's* history
    embeddings, blended with the overall taste (``normalise(t_label + global_mix · t_all)``); items are scored by
    cosine with the taste vector of their own label. Labels without history (and unlabelled items) use the overall
    taste vector, i.e. plain :func:`visual_affinity`.
    """
    h = sp.csr_matrix(history_rows, dtype=np.float32)
    base = taste_vectors(h, embeddings)
    labels = np.asarray(item_label, dtype=np.int64)
    if h.nnz == 0:
        return (base @ embeddings.T).astype(np.float32)
    # Work in label-sorted column order so that every label is one contiguous block.
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    emb_sorted = np.ascontiguousarray(embeddings[order])
    h_sorted = h[:, order].tocsr()
    out_sorted = base @ emb_sorted.T
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    stops = np.r_[starts[1:], len(order)]
    for a, b in zip(starts, stops, strict=True):
        if sorted_labels[a] < 0:
            continue
        sub = h_sorted[:, a:b]
        rows = np.flatnonzero(np.diff(sub.indptr) > 0)
        if rows.size == 0:
            continue
        t = np.asarray(sub[rows] @ emb_sorted[a:b], dtype=np.float32)
        t = l2_normalise(l2_normalise(t) + np.float32(global_mix) * base[rows])
        out_sorted[rows, a:b] = t @ emb_sorted[a:b].T
    out = np.empty_like(out_sorted)
    out[:, order] = out_sorted
    return out.astype(np.float32, copy=False)
