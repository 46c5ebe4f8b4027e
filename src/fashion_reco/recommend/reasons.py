"""Building blocks of the blend's per-row reasons: vectorised text joins and event look-ups.

A reason names the signal that contributed most to a recommended item, phrased for the customer ("similar to X you
viewed", "often bought with Y", "you added this to your cart"). These helpers work on whole ``(customers, k)``
blocks: no Python loop per row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from fashion_reco.recommend.history import TrainData

__all__ = ["fill_linked", "join_text", "lookup", "strongest_event_matrix"]


def join_text(*parts: npt.ArrayLike) -> np.ndarray:
    """Element-wise string concatenation of scalars and equally shaped object arrays."""
    shape = next((np.shape(p) for p in parts if np.ndim(p) > 0), ())
    result = np.full(shape, "", dtype=object)
    for p in parts:
        result = result + (np.asarray(p, dtype=object).astype(str).astype(object) if np.ndim(p) else str(p))
    return result


def fill_linked(
    out: np.ndarray,
    mask: np.ndarray,
    active: np.ndarray,
    found: np.ndarray,
    text: Callable[[np.ndarray, np.ndarray], np.ndarray],
    fallback: str,
) -> None:
    """Write ``text(found items, local rows)`` where ``mask`` and an item was found, ``fallback`` where not.

    ``found`` covers only the rows ``active`` (``-1`` = nothing found); texts are built for those positions only.
    """
    sub = mask[active]
    r, c = np.nonzero(sub & (found >= 0))
    if r.size:
        out[active[r], c] = text(found[r, c], r)
    r, c = np.nonzero(sub & (found < 0))
    out[active[r], c] = fallback


def strongest_event_matrix(data: TrainData) -> sp.csr_matrix:
    """Customer × item CSR (sorted indices) of 1 + the strongest event code seen: 1 view, 2 cart, 3 purchase."""
    if data.n_events == 0:
        return sp.csr_matrix((data.n_customers, data.n_items), dtype=np.int8)
    keys = data.cust.astype(np.int64) * data.n_items + data.item
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    first = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    codes = (np.maximum.reduceat(data.event[order].astype(np.int8), starts) + 1).astype(np.int8)
    pairs = keys[starts]
    per_customer = np.bincount(pairs // data.n_items, minlength=data.n_customers)
    indptr = np.concatenate([[0], np.cumsum(per_customer)])
    return sp.csr_matrix(
        (codes, (pairs % data.n_items).astype(np.int32), indptr), shape=(data.n_customers, data.n_items)
    )


def lookup(matrix: sp.csr_matrix, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``matrix[row, item]`` for every chosen item ``items[r, c]`` of row ``rows[r]`` (0 for rows ``-1``)."""
    r = np.broadcast_to(np.where(rows >= 0, rows, 0)[:, None], items.shape)
    codes = np.asarray(matrix[r.ravel(), items.ravel()]).reshape(items.shape).astype(np.int64)
    return np.where((rows >= 0)[:, None], codes, 0)
