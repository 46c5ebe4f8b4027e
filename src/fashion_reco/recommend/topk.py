"""Deterministic row-wise top-k selection for dense score blocks.

``np.argpartition`` finds the k best columns of each row in linear time, but among equal scores at the boundary it
picks arbitrarily. :func:`topk_rows` makes the result exactly equal to a full sort by ``(-score, tiebreak position)``:
rows whose k-th score is tied with a column outside the candidate set are re-ranked with a full stable sort (those
rows are rare for real-valued scores; for sparse signals they are exactly the rows where the tie-break matters).

``-inf`` marks a masked column: it never appears in the result unless the row has fewer than k finite scores, and
the caller drops those positions (see :func:`valid_mask`).

:func:`topk_sparse_plus_rows` gives the same answer for blocks of the form ``sparse + shared row`` (a non-negative
sparse part per row plus one of a few rows shared by many) without materialising them: a row's top-k lies within its
sparse non-zeros plus the shared row's top-(k + excluded), so only those candidates are scored and sorted
(:func:`segment_topk`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "csr_topk",
    "segment_topk",
    "tiebreak_order_from_priority",
    "topk_rows",
    "topk_sparse_plus_rows",
    "valid_mask",
]


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


def segment_topk(
    row: np.ndarray, col: np.ndarray, val: np.ndarray, n_rows: int, k: int, position: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` of candidate entries ``(row, col, val)`` per row, by ``(-val, position[col])``.

    Returns ``(indices, values, source)``, each ``(n_rows, k)``: column, value and the entry's index in the inputs;
    positions a row has no candidate for hold column 0, value ``-inf`` and source ``-1``. A column must appear at
    most once per row.
    """
    idx = np.zeros((n_rows, k), dtype=np.int64)
    out = np.full((n_rows, k), -np.inf, dtype=np.float32 if val.dtype == np.float32 else np.float64)
    src = np.full((n_rows, k), -1, dtype=np.int64)
    if row.size == 0 or k == 0:
        return idx, out, src
    order = _row_value_column_order(row, val, position[col], n_rows, position.size)
    r = row[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n_rows))[:-1]])
    rank = np.arange(order.size) - starts[r]
    keep = rank < k
    r, rank, order = r[keep], rank[keep], order[keep]
    idx[r, rank] = col[order]
    out[r, rank] = val[order]
    src[r, rank] = order
    return idx, out, src


def _ordered_keys(val: np.ndarray) -> np.ndarray:
    """Unsigned integer keys with the order of the float values (``-0.0`` counts as ``0.0``; no NaN)."""
    val = np.asarray(val)
    if val.dtype != np.float32:
        val = val.astype(np.float64, copy=False)
    signed, unsigned = (np.int32, np.uint32) if val.dtype == np.float32 else (np.int64, np.uint64)
    bits = (val + val.dtype.type(0.0)).view(signed)
    negative = bits < 0
    top = unsigned(1) << unsigned(8 * bits.itemsize - 1)
    keys = bits.view(unsigned) | top  # non-negative floats: above every negative one, in bit order
    if negative.any():
        keys[negative] = ~bits[negative].view(unsigned)  # negative floats: bit order reversed
    return keys


def _bucket_select(counts: np.ndarray, val: np.ndarray, need: np.ndarray, bits: int = 6) -> np.ndarray:
    """Mask of entries (grouped by row, ``counts`` per row) that may be among their row's ``need`` largest values.

    Each row's values are dealt into at most ``2**bits`` buckets by an exactly monotone map: order-preserving
    integer keys of the floats (so spacing is roughly logarithmic and outliers do not squash the rest), less the
    row's smallest key, shifted right by a per-row amount. The lowest bucket from which on the row still has
    ``need`` entries is kept with everything above it. A dropped entry is strictly below at least ``need`` kept
    ones, so it cannot be among the row's top-``need``, ties included.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_rows = counts.size
    if not (counts > need).any():
        return np.ones(val.size, dtype=bool)
    keys = _ordered_keys(val)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = np.flatnonzero(counts > 0)
    lo = np.zeros(n_rows, dtype=keys.dtype)
    hi = np.zeros(n_rows, dtype=keys.dtype)
    lo[has] = np.minimum.reduceat(keys, starts[has])
    hi[has] = np.maximum.reduceat(keys, starts[has])
    # shift so that the row's key span fits in `bits` bits (from a float estimate; the clip keeps it exact)
    span = (hi - lo).astype(np.float64)
    span_bits = np.zeros(n_rows, dtype=np.int64)
    wide = span > 0
    span_bits[wide] = np.floor(np.log2(span[wide])).astype(np.int64) + 1
    shift = np.maximum(span_bits - bits, 0).astype(keys.dtype)
    offset = keys - np.repeat(lo, counts)
    offset >>= np.repeat(shift, counts)
    n_buckets = 1 << bits
    bucket = np.minimum(offset, n_buckets - 1).astype(np.int64)
    row = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    hist = np.bincount(row * n_buckets + bucket, minlength=n_rows * n_buckets).reshape(n_rows, n_buckets)
    at_least = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
    first = np.maximum((at_least >= need[:, None]).sum(axis=1) - 1, 0)
    return bucket >= np.repeat(first, counts)


def csr_topk(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest stored entries of every row of a CSR matrix without duplicate entries (ties: lower
    column), with sorted indices. Products of CSR matrices qualify; call ``sum_duplicates`` first otherwise."""
    m = sp.csr_matrix(matrix)
    counts = np.diff(m.indptr)
    if k <= 0:
        return sp.csr_matrix(m.shape, dtype=m.dtype)
    if counts.max(initial=0) <= k:
        return m.sorted_indices() if not m.has_sorted_indices else m
    n = m.shape[0]
    sel = np.flatnonzero(_bucket_select(counts, m.data, np.full(n, k, dtype=np.int64)))
    r = np.searchsorted(m.indptr, sel, side="right") - 1
    c, v = m.indices[sel].astype(np.int64), m.data[sel]
    order = _row_value_column_order(r, v, c, n, m.shape[1])
    r, c, v = r[order], c[order], v[order]
    rank = np.arange(r.size) - np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))[:-1]])[r]
    keep = rank < k
    r, c, v = r[keep], c[keep], v[keep]
    order = np.argsort(r * np.int64(m.shape[1]) + c)  # back to column order within each row
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])
    return sp.csr_matrix((v[order], c[order], indptr), shape=m.shape)


def _row_value_column_order(
    r: np.ndarray, v: np.ndarray, c: np.ndarray, n_rows: int, n_cols: int
) -> np.ndarray:
    """Permutation sorting entries by (row, -value, column): one uint64 sort when the three fit in 64 bits."""
    row_bits, col_bits = int(n_rows).bit_length(), int(n_cols).bit_length()
    if v.dtype != np.float32 or row_bits + 32 + col_bits > 64:
        return np.lexsort((c, -v, r))
    descending = ~_ordered_keys(v)  # uint32: larger values first
    key = r.astype(np.uint64) << np.uint64(32 + col_bits)
    key |= descending.astype(np.uint64) << np.uint64(col_bits)
    key |= c.astype(np.uint64)
    return np.argsort(key)


def topk_sparse_plus_rows(
    sparse: sp.csr_matrix,
    scale: np.ndarray,
    rows: np.ndarray,
    group: np.ndarray,
    k: int,
    position: np.ndarray,
    *,
    exclude: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise top-k of ``scale[:, None] * sparse + rows[group]``, equal to :func:`topk_rows` on the dense block.

    Args:
        sparse: ``(n, m)`` CSR with non-negative entries (absent entries are 0).
        scale: ``(n,)`` non-negative per-row multipliers of ``sparse``.
        rows: ``(G, m)`` float32 shared rows; ``-inf`` marks a column that may never be returned.
        group: ``(n,)`` the shared row of each row.
        k: how many to keep (clipped to ``m``).
        position: ``(m,)`` tie-break position of each column (lower wins), as ``topk_rows``'s ``order`` inverted.
        exclude: ``(n, m)`` boolean CSR of columns never to return for that row (e.g. already purchased).

    Returns:
        ``(indices, values, parts)`` each ``(n, min(k, m))``: columns, blended scores (float32, computed as
        ``rows[g, c] + scale · sparse`` exactly as on the dense block) and the sparse part ``scale · sparse`` of
        each; ``-inf`` values mark positions without an item (fewer than k allowed columns).
    """
    n, m = sparse.shape
    kk = int(min(max(k, 0), m))
    rows = np.asarray(rows, dtype=np.float32)
    group = np.asarray(group, dtype=np.int64)
    scale = np.asarray(scale, dtype=np.float32)
    if sparse.nnz and (sparse.data.min() < 0 or (scale < 0).any()):
        raise ValueError("topk_sparse_plus_rows needs a non-negative sparse part")
    if kk == 0 or n == 0:
        empty = np.empty((n, kk))
        return empty.astype(np.int64), empty.astype(np.float32), empty.astype(np.float32)
    n_excluded = np.zeros(n, dtype=np.int64) if exclude is None else np.diff(exclude.indptr).astype(np.int64)
    need = kk + n_excluded
    # Shared rows in ranked order; a row's top-k among columns it has no sparse entry for is a prefix of it.
    n_finite = np.isfinite(rows).sum(axis=1)
    order = np.lexsort((np.broadcast_to(position, rows.shape), -rows), axis=-1)
    ranked = np.take_along_axis(rows, order, axis=1)
    prefix = np.minimum(need, n_finite[group])
    floor = np.full(n, np.inf, dtype=np.float32)
    some = prefix > 0
    floor[some] = ranked[group[some], prefix[some] - 1]
    # Sparse entries: blended score, then those that can still reach the top-k of their row.
    # Per-row values are expanded with np.repeat (sequential) rather than gathered through a row-id array.
    counts = np.diff(sparse.indptr)
    part = np.repeat(scale, counts)
    np.multiply(part, sparse.data, out=part)
    if rows.shape[0] == 1:
        score = rows[0].take(sparse.indices)
    else:
        at = np.repeat(group * m, counts)
        at += sparse.indices
        score = rows.reshape(-1).take(at)
    np.add(score, part, out=score)
    sel = np.flatnonzero(score >= np.repeat(floor, counts))
    s_row = np.searchsorted(sparse.indptr, sel, side="right") - 1
    s_score = score[sel]
    keep = _bucket_select(np.bincount(s_row, minlength=n), s_score, need)
    sel, s_row, s_score = sel[keep], s_row[keep], s_score[keep]
    s_col = sparse.indices[sel].astype(np.int64)
    s_part = part[sel]
    # Shared-row candidates: each row's ranked prefix, less the columns already scored with their sparse part.
    starts = np.cumsum(prefix) - prefix
    t_row = np.repeat(np.arange(n, dtype=np.int64), prefix)
    t_rank = np.arange(t_row.size) - starts[t_row]
    t_col = order[group[t_row], t_rank]
    rank_of = np.empty_like(order)
    np.put_along_axis(rank_of, order, np.arange(m)[None, :], axis=1)
    s_rank = rank_of[group[s_row], s_col]
    in_prefix = s_rank < prefix[s_row]
    fresh = np.ones(t_row.size, dtype=bool)
    fresh[starts[s_row[in_prefix]] + s_rank[in_prefix]] = False
    t_row, t_col = t_row[fresh], t_col[fresh]
    c_row = np.concatenate([s_row, t_row])
    c_col = np.concatenate([s_col, t_col])
    c_score = np.concatenate([s_score, rows[group[t_row], t_col]])
    c_part = np.concatenate([s_part, np.zeros(t_row.size, dtype=np.float32)])
    if exclude is not None and exclude.nnz:
        ex = sp.csr_matrix(exclude)
        if not ex.has_sorted_indices:
            ex = ex.sorted_indices()
        ex_keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(ex.indptr)) * m + ex.indices
        keys = c_row * m + c_col
        at = np.minimum(np.searchsorted(ex_keys, keys), ex_keys.size - 1)
        ok = ex_keys[at] != keys
        c_row, c_col, c_score, c_part = c_row[ok], c_col[ok], c_score[ok], c_part[ok]
    idx, vals, src = segment_topk(c_row, c_col, c_score, n, kk, position)
    parts = np.where(src >= 0, c_part[np.maximum(src, 0)] if c_part.size else 0.0, np.float32(0.0))
    return idx, vals, parts.astype(np.float32, copy=False)
