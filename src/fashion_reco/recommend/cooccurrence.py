"""Behaviour signal: item–item co-occurrence on the customer × item matrix, scored as history · similarity.

Two item–item similarities over the (event-weighted, log-scaled) interaction matrix ``X``, each pruned to the
``n_neighbours`` strongest entries per item row:

* :func:`item_item_random_walk` (default of the blend) — P3α / RP3β (Cooper et al. 2014; Paudel et al. 2017): the
  probability of walking item → customer → item, ``W = P_iu · P_ui`` with row-stochastic transition matrices
  (entries raised to ``alpha``), optionally divided by ``popularity_j ** beta``. Co-purchases with many shared
  customers dominate, and a single heavy customer cannot create a strong link.
* :func:`item_item_cosine` — ``Xᵀ X`` between unit-norm item columns (with optional co-count shrinkage).

A customer's behaviour score for item ``i`` is ``Σ_j h_j · S[j, i]`` over their recency-decayed history ``h`` — one
sparse matrix product per block of customers.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fashion_reco.recommend.topk import csr_topk, topk_rows

__all__ = ["behaviour_scores", "item_item_cosine", "item_item_random_walk", "prune_rows", "strongest_links"]


def prune_rows(m: sp.csr_matrix, n_keep: int) -> sp.csr_matrix:
    """Keep the ``n_keep`` largest entries of every CSR row (ties: lower column first; ``n_keep <= 0``: all)."""
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    if n_keep <= 0:
        return m
    return csr_topk(m, n_keep)


def item_item_cosine(
    x: sp.spmatrix,
    *,
    n_neighbours: int = 100,
    shrink: float = 0.0,
    include_self: bool = True,
    transform: str = "log1p",
    dense_max_items: int = 50_000,
) -> sp.csr_matrix:
    """Item × item cosine similarity of the columns of ``x`` (customers × items), float32 CSR, pruned per row.

    Args:
        x: customer × item weights (e.g. event-weighted counts).
        n_neighbours: entries kept per item row (the strongest; ties: lower column).
        shrink: shrinkage ``co / (co + shrink)`` applied to the co-occurrence count (damps pairs seen once).
        include_self: keep the diagonal (1.0): an item is its own best neighbour, so history items score too.
        transform: ``"log1p"`` (damps repeated events), ``"binary"`` or ``"none"`` applied to ``x`` first.
        dense_max_items: up to this many items the Gram matrix is built in dense row blocks (fast top-k per
            block, memory ``block × n_items``); above it, sparse products and a sparse prune.
    """
    x = _transform(x, transform)
    n_items = x.shape[1]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    xt = x.T.tocsr()
    binary = xt_bin = None
    if shrink > 0:
        binary = x.copy()
        binary.data = np.ones_like(binary.data)
        xt_bin = binary.T.tocsr()
    if n_items > dense_max_items:
        return _item_item_cosine_sparse(x, xt, inv, norms, n_neighbours, shrink, include_self, binary, xt_bin)
    block = int(max(1, min(1024, (1 << 24) // max(n_items, 1))))
    k = int(min(max(n_neighbours, 1), n_items))
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        g = np.asarray((xt[start:stop] @ x).toarray(), dtype=np.float32)
        g *= inv[start:stop, None]
        g *= inv[None, :]
        if xt_bin is not None:
            co = np.asarray((xt_bin[start:stop] @ binary).toarray(), dtype=np.float32)
            g *= co / (co + np.float32(shrink))
        local = np.arange(stop - start)
        g[local, start + local] = np.where(norms[start:stop] > 0, 1.0, 0.0) if include_self else 0.0
        idx, vals = topk_rows(g, k, check_nan=False)
        keep = vals > 0
        rows_out.append(np.broadcast_to((start + local)[:, None], idx.shape)[keep])
        cols_out.append(idx[keep])
        vals_out.append(vals[keep])
    rows = np.concatenate(rows_out) if rows_out else np.empty(0, dtype=np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.empty(0, dtype=np.int64)
    vals = np.concatenate(vals_out) if vals_out else np.empty(0, dtype=np.float32)
    sim = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_items, n_items))
    sim.sort_indices()
    return sim


def _transform(x: sp.spmatrix, transform: str) -> sp.csr_matrix:
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    if transform == "log1p":
        x.data = np.log1p(x.data)
    elif transform == "binary":
        x.data = np.ones_like(x.data)
    elif transform != "none":
        raise ValueError(f"unknown transform {transform!r}")
    return x


def _row_stochastic(m: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    sums = np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    m = sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m)
    if alpha != 1.0:
        m.data = np.power(m.data, np.float32(alpha))
    return m


def item_item_random_walk(
    x: sp.spmatrix,
    *,
    alpha: float = 1.0,
    beta: float = 0.0,
    n_neighbours: int = 100,
    transform: str = "log1p",
) -> sp.csr_matrix:
    """P3α / RP3β item → customer → item transition probabilities, float32 CSR pruned per row (module docstring).

    Args:
        x: customer × item weights.
        alpha: exponent on the transition probabilities (1 = plain random walk).
        beta: popularity penalty: column ``j`` is divided by ``degree_j ** beta`` (0 = P3α).
        n_neighbours: entries kept per item row.
        transform: ``"log1p"``, ``"binary"`` or ``"none"`` applied to ``x`` first.
    """
    x = _transform(x, transform)
    n_items = x.shape[1]
    p_ui = _row_stochastic(x, alpha)
    p_iu = _row_stochastic(x.T.tocsr(), alpha)
    degree = np.asarray((x > 0).sum(axis=0), dtype=np.float64).ravel()
    penalty = (
        np.divide(1.0, np.power(degree, beta), out=np.zeros_like(degree), where=degree > 0).astype(np.float32)
        if beta
        else None
    )
    k = int(min(max(n_neighbours, 1), n_items))
    # Rows of the (sparse) item-item product in blocks of ~2^22 expected entries, each pruned to its k strongest.
    per_row = max(1.0, (p_iu.nnz / max(n_items, 1)) * (p_ui.nnz / max(p_ui.shape[0], 1)))
    block = int(max(1, min(n_items, (1 << 22) // per_row)))
    blocks = []
    for start in range(0, n_items, block):
        prod = sp.csr_matrix(p_iu[start : start + block] @ p_ui)
        if penalty is not None:
            prod = sp.csr_matrix(prod @ sp.diags(penalty))
        if prod.nnz and prod.data.min() <= 0:
            prod.data[prod.data < 0] = 0
            prod.eliminate_zeros()
        blocks.append(csr_topk(prod, k))
    if not blocks:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    sim = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float32)
    sim.sort_indices()
    return sim


def _item_item_cosine_sparse(
    x: sp.csr_matrix,
    xt: sp.csr_matrix,
    inv: np.ndarray,
    norms: np.ndarray,
    n_neighbours: int,
    shrink: float,
    include_self: bool,
    binary: sp.csr_matrix | None,
    xt_bin: sp.csr_matrix | None,
) -> sp.csr_matrix:
    gram = (xt @ x).tocoo()
    vals = gram.data.astype(np.float64) * inv[gram.row] * inv[gram.col]
    if shrink > 0 and binary is not None and xt_bin is not None:
        co = (xt_bin @ binary).tocsr()
        co_vals = np.asarray(co[gram.row, gram.col]).ravel()
        vals *= co_vals / (co_vals + shrink)
    diag = gram.row == gram.col
    vals[diag] = np.where(norms[gram.row[diag]] > 0, 1.0, 0.0) if include_self else 0.0
    sim = sp.csr_matrix((vals.astype(np.float32), (gram.row, gram.col)), shape=gram.shape)
    sim.eliminate_zeros()
    return prune_rows(sim, n_neighbours)


def behaviour_scores(history_rows: sp.spmatrix, similarity: sp.csr_matrix) -> np.ndarray:
    """Dense ``history · similarity`` for a block of customers, float32 ``(n_rows, n_items)``."""
    h = sp.csr_matrix(history_rows, dtype=np.float32)
    return np.asarray((h @ similarity).toarray(), dtype=np.float32)


def strongest_links(
    history_rows: sp.csr_matrix,
    similarity: sp.csr_matrix,
    item_idx: np.ndarray,
    *,
    similarity_t: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each chosen item ``item_idx[r, c]``, the history item ``j`` maximising ``h[r, j] · S[j, i]`` and that value.

    Returns ``(links, strength)`` of the shape of ``item_idx``; ``-1`` / ``0`` where no history item links (or
    ``item_idx`` is ``-1``: only the items asked about are looked at). ``similarity_t`` (``Sᵀ`` as CSR) may be
    passed by callers that ask often; ties go to the lowest history column.
    """
    h = sp.csr_matrix(history_rows)
    n_rows, k = item_idx.shape
    links = np.full((n_rows, k), -1, dtype=np.int64)
    strength = np.zeros((n_rows, k), dtype=np.float64)
    if h.nnz == 0 or k == 0:
        return links, strength
    t_row, t_pos = np.nonzero(item_idx >= 0)
    keep = np.diff(h.indptr)[t_row] > 0
    t_row, t_pos = t_row[keep], t_pos[keep]
    if t_row.size == 0:
        return links, strength
    st = similarity.T.tocsr() if similarity_t is None else similarity_t
    # One row per asked item: the customer's history times the item's column of S, as a sparse element-wise product.
    hist = sp.csr_matrix(h[t_row], dtype=np.float64)
    column = sp.csr_matrix(st[item_idx[t_row, t_pos]], dtype=np.float64)
    prod = sp.csr_matrix(hist.multiply(column))
    prod.eliminate_zeros()
    if not prod.has_sorted_indices:
        prod.sort_indices()
    counts = np.diff(prod.indptr)
    has = np.flatnonzero(counts > 0)
    if has.size == 0:
        return links, strength
    row_of = np.repeat(np.arange(t_row.size), counts)
    peak = np.zeros(t_row.size)
    peak[has] = np.maximum.reduceat(prod.data, prod.indptr[has])
    hit = np.flatnonzero(prod.data == peak[row_of])
    first = np.ones(hit.size, dtype=bool)
    first[1:] = row_of[hit[1:]] != row_of[hit[:-1]]
    hit = hit[first]
    best = hit[prod.data[hit] > 0]
    r = row_of[best]
    links[t_row[r], t_pos[r]] = prod.indices[best]
    strength[t_row[r], t_pos[r]] = prod.data[best]
    return links, strength
