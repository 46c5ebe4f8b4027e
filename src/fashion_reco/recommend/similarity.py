"""Cosine similarity search over item embeddings: exact (chunked BLAS) and approximate (faiss HNSW).

The exact path works like faiss's ``IndexFlatIP``: a block of queries is scored against corpus tiles of up to
65,536 rows with float32 matrix products (``(block, d) @ (d, tile)`` on the corpus's transposed *view*, no copy), the
k best of each tile are selected (:func:`fashion_reco.recommend.topk.topk_rows`) and merged into the running top-k.
A block holds at most ``chunk_size`` queries and 2**25 scores (128 MiB), whatever the corpus size; never ``N × N``
(measured: tiles of 4,096 rows cost 25-35 % in per-tile selection; 65,536 x 256-512 queries is as fast as one pass). Its
speed is that of the BLAS ``sgemm`` that ``IndexFlatIP`` also uses, so it is the default up to
``BlendConfig.exact_max_items`` items.

Above that, :class:`FaissIndex` (HNSW graph, inner product on unit vectors = cosine) answers in sub-linear time;
:func:`recall_at_k_vs_exact` measures how many of the exact neighbours it finds.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig
from fashion_reco.errors import FashionRecoWarning, RecommendError
from fashion_reco.recommend.topk import topk_rows

__all__ = [
    "ExactIndex",
    "FaissIndex",
    "SimilarityIndex",
    "build_index",
    "cosine_similarity",
    "cosine_topk",
    "faiss_available",
    "l2_normalise",
    "recall_at_k_vs_exact",
]

_EPS = 1e-12
_TILE_COLUMNS = 65_536  # corpus rows per tile (corpora up to twice this are scored whole)
_BLOCK_ELEMENTS = 2**25  # scores per block, 128 MiB of float32: queries per block = this / tile width


def l2_normalise(x: np.ndarray, *, eps: float = _EPS) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (float32); all-zero rows stay zero."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        norm = float(np.linalg.norm(arr))
        return arr / norm if norm > eps else np.zeros_like(arr)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    out = np.divide(arr, norms, out=np.zeros_like(arr), where=norms > eps)
    return out


def cosine_similarity(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Dense cosine similarity matrix between the rows of ``a`` and ``b`` (small inputs only), clipped to [-1, 1]."""
    an = l2_normalise(np.atleast_2d(a))
    bn = an if b is None else l2_normalise(np.atleast_2d(b))
    return np.clip(an @ bn.T, -1.0, 1.0)


def _as_2d(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise RecommendError(f"queries must have shape (n, {dim}), got {np.shape(queries)}")
    return q


def cosine_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | sp.spmatrix | sp.sparray | None = None,
    allowed_mask: np.ndarray | None = None,
    denied_mask: np.ndarray | None = None,
    chunk_size: int = 2048,
    tile_size: int = _TILE_COLUMNS,
    normalise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k of every query row against the corpus rows.

    Args:
        queries: ``(n, d)`` (or ``(d,)``) query vectors.
        corpus: ``(N, d)`` corpus vectors.
        k: neighbours per query (clipped to the number of selectable corpus rows).
        exclude: corpus rows to skip per query: an int array ``(n,)`` (one row per query, ``-1`` for none, e.g. the
            query's own index to exclude self), or a sparse/dense boolean matrix ``(n, N)`` of excluded pairs.
        allowed_mask: boolean ``(N,)`` or ``(n, N)``: only these corpus rows may be returned.
        denied_mask: boolean ``(N,)`` or ``(n, N)``: these corpus rows are never returned.
        chunk_size: most queries scored per block (a block also holds at most 2**25 scores, 128 MiB).
        tile_size: corpus rows scored at a time; corpora up to twice this size are scored in one tile.
        normalise: L2-normalise inputs first (skip when they already are, as the model layer's embeddings are).

    Returns:
        ``(indices, scores)`` of shape ``(n, k)``, best first, ties by lower corpus index. Where fewer than ``k``
        rows are selectable, the tail holds index ``-1`` and score ``-inf``.
    """
    corpus = np.asarray(corpus, dtype=np.float32)
    if corpus.ndim != 2:
        raise RecommendError(f"corpus must be 2-D, got shape {corpus.shape}")
    n_items, dim = corpus.shape
    q = _as_2d(queries, dim)
    n = q.shape[0]
    if not (np.isfinite(q).all() and np.isfinite(corpus).all()):
        raise RecommendError("queries and corpus must be finite (found NaN or inf)")
    if normalise:
        q = l2_normalise(q)
        corpus = l2_normalise(corpus)
    k = int(min(max(int(k), 0), n_items))
    idx_out = np.full((n, k), -1, dtype=np.int64)
    val_out = np.full((n, k), -np.inf, dtype=np.float32)
    if k == 0 or n == 0:
        return idx_out, val_out
    excl_rows = None
    excl_matrix = None
    if exclude is not None:
        if sp.issparse(exclude):
            excl_matrix = sp.csr_matrix(exclude)
        else:
            arr = np.asarray(exclude)
            if arr.ndim == 1:
                excl_rows = arr.astype(np.int64)
                if excl_rows.shape[0] != n:
                    raise RecommendError(
                        f"exclude must have one entry per query ({n}), got {excl_rows.shape[0]}"
                    )
            else:
                excl_matrix = sp.csr_matrix(arr.astype(bool))
        if excl_matrix is not None and excl_matrix.shape != (n, n_items):
            raise RecommendError(f"exclude matrix must have shape ({n}, {n_items}), got {excl_matrix.shape}")
    masks = []
    for name, mask, allow in (("allowed_mask", allowed_mask, True), ("denied_mask", denied_mask, False)):
        if mask is None:
            continue
        m = np.asarray(mask, dtype=bool)
        if m.shape not in ((n_items,), (n, n_items)):
            raise RecommendError(f"{name} must have shape ({n_items},) or ({n}, {n_items}), got {m.shape}")
        masks.append((m, allow))
    tile_size = max(1, int(tile_size))
    tile = n_items if n_items <= 2 * tile_size else tile_size
    rows_per_block = max(1, min(int(chunk_size), _BLOCK_ELEMENTS // tile))
    buffer = np.empty((min(rows_per_block, n), tile), dtype=np.float32)
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        rows = np.arange(stop - start)
        excl_coo = excl_matrix[start:stop].tocoo() if excl_matrix is not None else None
        best_idx = np.empty((stop - start, 0), dtype=np.int64)
        best_val = np.empty((stop - start, 0), dtype=np.float32)
        for lo in range(0, n_items, tile):
            hi = min(n_items, lo + tile)
            block = np.matmul(q[start:stop], corpus[lo:hi].T, out=buffer[: stop - start, : hi - lo])
            for m, allow in masks:
                part = m[lo:hi] if m.ndim == 1 else m[start:stop, lo:hi]
                bad = ~part if allow else part
                if m.ndim == 1:
                    block[:, bad] = -np.inf
                else:
                    block[bad] = -np.inf
            if excl_rows is not None:
                e = excl_rows[start:stop]
                ok = (e >= lo) & (e < hi)
                block[rows[ok], e[ok] - lo] = -np.inf
            if excl_coo is not None:
                inside = (excl_coo.col >= lo) & (excl_coo.col < hi)
                block[excl_coo.row[inside], excl_coo.col[inside] - lo] = -np.inf
            idx, vals = topk_rows(block, k, check_nan=False)
            idx += lo
            if lo == 0:
                best_idx, best_val = idx, vals
            else:  # merge two lists ordered by (-score, index): exact, as every global winner wins its tile
                both_idx = np.concatenate([best_idx, idx], axis=1)
                both_val = np.concatenate([best_val, vals], axis=1)
                keep = np.lexsort((both_idx, -both_val), axis=1)[:, :k]
                best_idx = np.take_along_axis(both_idx, keep, axis=1)
                best_val = np.take_along_axis(both_val, keep, axis=1)
        bad = ~np.isfinite(best_val)
        best_val = np.where(bad, best_val, np.clip(best_val, -1.0, 1.0))
        best_idx[bad] = -1
        idx_out[start:stop, : best_idx.shape[1]] = best_idx
        val_out[start:stop, : best_val.shape[1]] = best_val
    return idx_out, val_out


class SimilarityIndex(ABC):
    """A searchable set of unit vectors: ``search(queries, k) -> (indices, scores)``."""

    def __init__(self, embeddings: np.ndarray) -> None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2:
            raise RecommendError(f"embeddings must be 2-D, got shape {emb.shape}")
        self.embeddings = l2_normalise(emb)
        #: rows whose embedding is all zeros (an item without a usable photo): no one's neighbour, none of their own
        self.blank = ~np.any(emb, axis=1)

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, *, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k corpus rows per query, best first (index ``-1`` / score ``-inf`` pad missing neighbours)."""


class ExactIndex(SimilarityIndex):
    """Brute-force cosine search with chunked BLAS (see :func:`cosine_topk`)."""

    def __init__(self, embeddings: np.ndarray, *, chunk_size: int = 2048) -> None:
        super().__init__(embeddings)
        self.chunk_size = chunk_size

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: np.ndarray | None = None,
        allowed_mask: np.ndarray | None = None,
        denied_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return cosine_topk(
            l2_normalise(_as_2d(queries, self.dim)),
            self.embeddings,
            k,
            exclude=exclude,
            allowed_mask=allowed_mask,
            denied_mask=denied_mask,
            chunk_size=self.chunk_size,
            normalise=False,
        )


def faiss_available() -> bool:
    """Whether the optional ``faiss`` package (extra ``ann``) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class FaissIndex(SimilarityIndex):
    """Approximate cosine search with faiss (``IndexHNSWFlat`` on inner product; or ``"flat"`` for exact faiss).

    Excluded rows are handled by over-fetching and filtering, so a query may get fewer than k results only when
    the graph search itself returns fewer.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        *,
        kind: str = "hnsw",
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(embeddings)
        try:
            import faiss
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise RecommendError("faiss is not installed: pip install 'fashion-reco[ann]'") from exc
        self._faiss = faiss
        if num_threads is not None:
            faiss.omp_set_num_threads(int(num_threads))
        index: faiss.IndexHNSWFlat | faiss.IndexFlatIP
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            index.hnsw.efSearch = int(ef_search)
        elif kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        else:
            raise RecommendError(f"unknown faiss index kind {kind!r} (expected 'hnsw' or 'flat')")
        self.kind = kind
        self.ef_search = int(ef_search)
        index.add(np.ascontiguousarray(self.embeddings))
        self.index = index

    def search(
        self, queries: np.ndarray, k: int, *, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(l2_normalise(_as_2d(queries, self.dim)))
        k = int(min(max(int(k), 0), len(self)))
        n = q.shape[0]
        if k == 0 or n == 0:
            return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)
        extra = 1 if exclude is not None else 0
        fetch = min(len(self), k + extra)
        hnsw = getattr(self.index, "hnsw", None)
        if hnsw is not None:
            hnsw.efSearch = max(self.ef_search, fetch)
        dist, ind = self.index.search(q, fetch)
        ind = ind.astype(np.int64)
        dist = dist.astype(np.float32)
        if exclude is not None:
            e = np.asarray(exclude, dtype=np.int64).reshape(-1, 1)
            drop = (ind == e) | (ind < 0)
        else:
            drop = ind < 0
        dist = np.where(drop, -np.inf, np.clip(dist, -1.0, 1.0))
        # Stable re-sort pushes dropped entries to the end while keeping faiss's order otherwise.
        order = np.argsort(-dist, axis=1, kind="stable")[:, :k]
        ind = np.take_along_axis(ind, order, axis=1)
        dist = np.take_along_axis(dist, order, axis=1)
        ind[~np.isfinite(dist)] = -1
        return ind, dist


def build_index(embeddings: np.ndarray, config: BlendConfig | None = None, **kwargs: Any) -> SimilarityIndex:
    """Exact index up to ``config.exact_max_items`` items; faiss HNSW above it (when installed and enabled)."""
    config = config or BlendConfig()
    n = int(np.shape(embeddings)[0])
    if n > config.exact_max_items and config.ann_backend == "faiss" and faiss_available():
        return FaissIndex(embeddings, **kwargs)
    return ExactIndex(embeddings, chunk_size=config.similarity_chunk_size)


def item_neighbours(
    index: SimilarityIndex, rows: np.ndarray, k: int, denied: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours of the corpus items ``rows`` in ``index`` (themselves and ``denied`` items excluded).

    The exact index filters inside its search; an approximate one over-fetches by the number of denied items and
    filters afterwards. Returns ``(indices, scores)`` of shape ``(len(rows), k)`` (``-1`` / ``-inf`` padded).
    """
    rows = np.asarray(rows, dtype=np.int64)
    queries = index.embeddings[rows]
    if index.blank.any():  # blank rows are never neighbours; blank queries get none (-1 / -inf)
        denied = index.blank if denied is None else denied | index.blank
    if isinstance(index, ExactIndex):
        return index.search(queries, k, exclude=rows, denied_mask=denied)
    extra = 0 if denied is None else int(denied.sum())
    idx, vals = index.search(queries, k + extra, exclude=rows)
    if denied is not None:
        bad = (idx >= 0) & denied[np.maximum(idx, 0)]
        vals = np.where(bad, -np.inf, vals)
        order = np.argsort(-vals, axis=1, kind="stable")[:, :k]
        idx = np.take_along_axis(idx, order, 1)
        vals = np.take_along_axis(vals, order, 1)
    return idx, vals


def neighbours_frame(
    item_ids: np.ndarray, ids: np.ndarray, idx: np.ndarray, vals: np.ndarray
) -> pd.DataFrame:
    """Top-k neighbour arrays (``-1`` / ``-inf`` padded) → ``item_id, similar_item_id, score, rank`` rows."""
    valid = np.isfinite(vals) & (idx >= 0)
    rank = np.broadcast_to(np.arange(1, idx.shape[1] + 1), idx.shape)
    return pd.DataFrame(
        {
            Columns.ITEM_ID: np.broadcast_to(ids[:, None], idx.shape)[valid],
            Columns.SIMILAR_ITEM_ID: item_ids[np.maximum(idx, 0)][valid],
            Columns.SCORE: vals[valid].astype(np.float64),
            Columns.RANK: rank[valid].astype(np.int64),
        }
    )


def similar_items_frame(
    index: SimilarityIndex,
    item_ids: np.ndarray,
    ids: np.ndarray,
    rows: np.ndarray,
    k: int,
    denied: np.ndarray | None,
) -> pd.DataFrame:
    """ "More like this" of ``ids`` (corpus ``rows``) by image cosine; an item without a usable photo (a blank
    embedding) gets no rows and a warning naming it, instead of arbitrary score-0 neighbours."""
    idx, vals = item_neighbours(index, rows, k, denied)
    blank = index.blank[np.asarray(rows, dtype=np.int64)]
    if blank.any():
        named = ids[blank]
        warnings.warn(
            f"{named.size} item(s) have no usable photo and so no visual neighbours: "
            f"{', '.join(map(repr, named[:5]))}{' …' if named.size > 5 else ''}",
            FashionRecoWarning,
            stacklevel=3,
        )
        vals = np.where(blank[:, None], -np.inf, vals)
    return neighbours_frame(item_ids, ids, idx, vals)


def recall_at_k_vs_exact(
    index: SimilarityIndex,
    queries: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int = 2048,
) -> float:
    """Mean fraction of the exact top-k neighbours (by :func:`cosine_topk`) that ``index.search`` returns."""
    exact_idx, _ = cosine_topk(
        queries, index.embeddings, k, exclude=exclude, chunk_size=chunk_size, normalise=True
    )
    approx_idx, _ = index.search(queries, k, exclude=exclude)
    if exact_idx.size == 0:
        return 1.0
    # Row-wise set intersection, vectorised: compare every exact index with every returned one (k × k per row).
    valid = exact_idx >= 0
    match = (exact_idx[:, :, None] == approx_idx[:, None, :]) & valid[:, :, None]
    hits = int(match.any(axis=2).sum())
    total = int(valid.sum())
    return hits / total if total else 1.0
