"""Deterministic row-wise top-k selection for dense score blocks.

``np.argpartition`` finds the k best columns of each row in linear time, but among equal scores at the boundary it
picks arbitrarily. :func:`topk_rows` makes the result exactly equal to a full sort by ``(-score, tiebreak position)``:
rows whose k-th score is tied with a column outside the candidate set are re-ranked with a full stable sort (those
rows are rare for real-valued scores; for sparse signals they are exactly the rows where the tie-break matters).

``-inf`` marks a masked column: it never appears in the result unless the row has fewer than k finite scores, and
the caller drops those positions (see :func:`valid_mask`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["tiebreak_order_from_priority", "topk_rows", "valid_mask"]


def tiebreak_order_from_priority(priority: np.ndarray | None, n: int) -> np.ndarray:
    """Column order used to break score ties: higher ``priority`` first, then lower index (identity if None)."""
    if priority is None:
        return np.arange(n, dtype=np.int64)
    priority = np.asarray(priority, dtype=np.float64)
    if priority.shape != (n,):
        raise ValueError(f"priority must have shape ({n},), got {priority.shape}")
    return np.lexsort((np.arange(n), -priority)).astype(np.int64)


def topk_rows(
    scores: np.ndarray,
    k: int,
    *,
    order: np.ndarray | None = None,
    priority: np.ndarray | None = None,
    check_nan: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` largest entries of every row, best first, ties broken deterministically.

    Args:
        scores: float array ``(n_rows, n_cols)``; ``-inf`` marks excluded columns. NaN is treated as ``-inf``.
        k: how many to keep (clipped to ``n_cols``).
        order: a permutation of the columns giving tie-break precedence (earlier wins); default: column index.
        priority: alternatively, a per-column secondary key (higher wins ties), e.g. popularity.
        check_nan: replace NaN by ``-inf`` first (callers that know their scores are finite skip the pass).

    Returns:
        ``(indices, values)`` each ``(n_rows, min(k, n_cols))``; equal to ``argsort`` by ``(-score, order)``.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D, got shape {scores.shape}")
    n_rows, n_cols = scores.shape
    k = int(min(max(k, 0), n_cols))
    if k == 0 or n_rows == 0:
        return np.empty((n_rows, k), dtype=np.int64), np.empty((n_rows, k), dtype=scores.dtype)
    if check_nan and np.isnan(scores).any():
        scores = np.where(np.isnan(scores), -np.inf, scores)
    if order is None:
        order = tiebreak_order_from_priority(priority, n_cols)
    order = np.asarray(order, dtype=np.int64)
    position = np.empty(n_cols, dtype=np.int64)
    position[order] = np.arange(n_cols)

    if k * 8 <= n_cols:
        fast = _topk_prefilter(scores, k, position)
        if fast is not None:
            return fast
    if k < n_cols:
        cand = np.argpartition(scores, n_cols - k, axis=1)[:, n_cols - k :]
    else:
        cand = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    cand_scores = np.take_along_axis(scores, cand, axis=1)
    kth = cand_scores.min(axis=1)
    # A row is ambiguous when a column outside the candidates ties with the k-th score.
    n_at_least = (scores >= kth[:, None]).sum(axis=1)
    ambiguous = n_at_least > k
    # Sort candidates by (-score, tie-break position).
    sort_idx = np.lexsort((position[cand], -cand_scores), axis=1)
    idx = np.take_along_axis(cand, sort_idx, axis=1)
    if ambiguous.any():
        rows = np.flatnonzero(ambiguous)
        sub = scores[rows][:, order]
        # Stable sort of the permuted columns keeps the tie-break order among equal scores.
        best = np.argsort(-sub, axis=1, kind="stable")[:, :k]
        idx[rows] = order[best]
    vals = np.take_along_axis(scores, idx, axis=1)
    return idx, vals


def _topk_prefilter(scores: np.ndarray, k: int, position: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact top-k via a group-maximum threshold: cheap when k is much smaller than the number of columns.

    The columns are dealt into ``G`` strided groups (column ``j`` belongs to group ``j mod G``); the k-th largest
    group maximum ``t`` is a lower bound of the row's k-th largest score (the k best groups hold k distinct entries
    >= t). Only the groups whose maximum reaches ``t`` are gathered, and every entry >= t in them is a candidate, so
    ties at the boundary are all present and sorting the candidates by ``(-score, position)`` is exact.
    """
    n_rows, n_cols = scores.shape
    group = max(1, min(64, n_cols // (4 * k)))
    n_groups = n_cols // group
    main = n_groups * group
    # Reduction over the middle axis runs as SIMD maxima of whole rows: one fast pass over the block.
    gmax = scores[:, :main].reshape(n_rows, group, n_groups).max(axis=1)
    if main < n_cols:
        gmax = np.concatenate([gmax, scores[:, main:]], axis=1)
    n_g = gmax.shape[1]
    if n_g < k:
        return None
    thresh = np.partition(gmax, n_g - k, axis=1)[:, n_g - k]
    if not np.isfinite(thresh).all():
        return None
    g_rows, g_ids = np.nonzero(gmax >= thresh[:, None])
    if g_rows.size > 16 * k * n_rows:  # many tied groups: the general path is cheaper
        return None
    strided = g_ids < n_groups
    r1 = g_rows[strided]
    cols1 = g_ids[strided][:, None] + n_groups * np.arange(group)[None, :]
    flat = scores.reshape(-1) if scores.flags.c_contiguous else np.ascontiguousarray(scores).reshape(-1)
    vals1 = np.take(flat, (r1 * n_cols)[:, None] + cols1)
    keep1 = vals1 >= thresh[r1][:, None]
    rows = np.concatenate([np.broadcast_to(r1[:, None], cols1.shape)[keep1], g_rows[~strided]])
    cols = np.concatenate([cols1[keep1], main + g_ids[~strided] - n_groups])
    vals = np.concatenate([vals1[keep1], scores[g_rows[~strided], main + g_ids[~strided] - n_groups]])
    order = np.lexsort((position[cols], -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    rank = np.arange(rows.size) - starts[rows]
    keep = rank < k
    idx = np.empty((n_rows, k), dtype=np.int64)
    out = np.empty((n_rows, k), dtype=scores.dtype)
    idx[rows[keep], rank[keep]] = cols[keep]
    out[rows[keep], rank[keep]] = vals[keep]
    return idx, out


def valid_mask(values: np.ndarray) -> np.ndarray:
    """True where a top-k position holds a real (not masked) column."""
    return np.isfinite(values)
