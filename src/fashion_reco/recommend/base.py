"""The recommender interface shared by the personalised blend and every baseline (implicit's RecommenderBase shape).

A recommender is fitted on a training log plus a :class:`FitContext` (the catalogue's item ids, embeddings and
labels, the customer table, the ``as_of`` time), then answers

* :meth:`Recommender.score` — a dense ``(n_customers, n_items)`` score block in the item order of ``item_ids_``;
* :meth:`Recommender.recommend` — the top-k rows per customer as a DataFrame ``customer_id, item_id, score, rank,
  reason``, with filters that never leak: already-purchased items (default on), ``filter_items`` (excluded) and
  ``allowed_items`` (the only candidates).

Scoring runs over blocks of customers (``chunk_size`` rows × all items), never one Python iteration per customer;
a model may answer a block without dense scores when that is exact (:meth:`Recommender._recommend_block`, e.g. the
blend's sparse candidates). The result frame is built once from all blocks' index arrays.
Customers unknown at fit time are *cold*: each model decides what they get (popularity at least), so every
requested customer receives exactly ``k`` rows whenever ``k`` items pass the filters.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.checks import check_k
from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig
from fashion_reco.errors import FashionRecoWarning, NotFittedError, RecommendError
from fashion_reco.ids import MISSING_ID, Ids
from fashion_reco.recommend.history import TrainData, as_id_array
from fashion_reco.recommend.popularity import popularity_counts
from fashion_reco.recommend.similarity import l2_normalise
from fashion_reco.recommend.topk import topk_rows

if TYPE_CHECKING:
    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions, TimestampLike

__all__ = ["FitContext", "Recommender", "customers_frame", "take_rows"]

# Dense score blocks hold at most this many floats (64 MiB of float32) per signal.
_BLOCK_ELEMENTS = 1 << 24


def customers_frame(customers: Customers | pd.DataFrame | None) -> pd.DataFrame | None:
    """The customer table as a DataFrame with a string ``customer_id`` column (accepts ``Customers`` or a frame)."""
    if customers is None:
        return None
    frame = customers.frame if hasattr(customers, "frame") else customers
    if not isinstance(frame, pd.DataFrame):
        raise RecommendError(
            f"customers must be a Customers table or a DataFrame, got {type(customers).__name__}"
        )
    if Columns.CUSTOMER_ID not in frame.columns:
        if frame.index.name == Columns.CUSTOMER_ID:
            frame = frame.reset_index()
        else:
            raise RecommendError("customers table has no customer_id column", column=Columns.CUSTOMER_ID)
    frame = frame.copy()
    frame[Columns.CUSTOMER_ID] = as_id_array(frame[Columns.CUSTOMER_ID])
    return frame.drop_duplicates(Columns.CUSTOMER_ID, keep="last").reset_index(drop=True)


@dataclass(frozen=True)
class FitContext:
    """Everything a recommender may use besides the log: catalogue arrays, customer table, reference time.

    Attributes:
        item_ids: the catalogue's item ids (the item universe and its order); default: items seen in the log.
        item_embeddings: ``(n_items, d)`` float32 L2-normalised image embeddings, aligned with ``item_ids``.
        item_labels: ``(n_items,)`` labels (str or None), aligned with ``item_ids``.
        customers: customer table (``customer_id`` plus optional ``age_band``, ``gender``, ``preferred_labels``).
        as_of: the time the model is fitted "at": recency is measured from it; events after it are ignored.
        item_prices: ``(n_items,)`` float prices (NaN unknown), aligned with ``item_ids``: the catalogue's ``price``
            column when it has one (the ranker's price features; without it they come from the log's prices).
    """

    item_ids: np.ndarray | None = None
    item_embeddings: np.ndarray | None = None
    item_labels: np.ndarray | None = None
    customers: pd.DataFrame | None = None
    as_of: pd.Timestamp | None = None
    item_prices: np.ndarray | None = None

    @classmethod
    def from_catalogue(
        cls,
        catalogue: Catalogue,
        item_embeddings: np.ndarray | None = None,
        customers: Customers | pd.DataFrame | None = None,
        as_of: TimestampLike | None = None,
    ) -> FitContext:
        """Context from a data-layer ``Catalogue`` (its ``item_ids``, ``labels`` and ``price`` column when it has
        one) plus embeddings."""
        labels = getattr(catalogue, "labels", None)
        frame = catalogue.to_frame() if hasattr(catalogue, "to_frame") else None
        prices = None
        if frame is not None and Columns.PRICE in frame.columns:
            if pd.api.types.is_numeric_dtype(frame[Columns.PRICE]):
                prices = frame[Columns.PRICE].to_numpy()
            else:  # the catalogue keeps mixed text columns ("12.99 EUR"); price features need numbers
                warnings.warn(
                    f"the catalogue's {Columns.PRICE!r} column is not numeric: fitting without price features",
                    FashionRecoWarning,
                    stacklevel=2,
                )
        return cls(
            item_ids=np.asarray(catalogue.item_ids),
            item_embeddings=item_embeddings,
            item_labels=None if labels is None else np.asarray(labels, dtype=object),
            customers=customers_frame(customers),
            as_of=None if as_of is None else pd.Timestamp(as_of),
            item_prices=prices,
        ).validated()

    @classmethod
    def coerce(cls, context: FitContext | None = None, **overrides: Any) -> FitContext:
        """A validated context from an optional base context and keyword overrides (``None`` values ignored)."""
        base = context if context is not None else cls()
        values = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **values).validated() if values else base.validated()

    def validated(self) -> FitContext:
        """Checked copy: ids as strings, embeddings float32 unit rows, labels object array, customers a frame."""
        item_ids = None if self.item_ids is None else as_id_array(self.item_ids)
        n = None if item_ids is None else len(item_ids)
        emb = self.item_embeddings
        if emb is not None:
            emb = np.asarray(emb, dtype=np.float32)
            if emb.ndim != 2:
                raise RecommendError(f"item_embeddings must be 2-D, got shape {emb.shape}")
            if n is None:
                raise RecommendError("item_embeddings need item_ids (the order they are aligned with)")
            if emb.shape[0] != n:
                raise RecommendError(f"item_embeddings has {emb.shape[0]} rows but there are {n} item ids")
            if not np.isfinite(emb).all():
                raise RecommendError("item_embeddings contain NaN or inf")
            emb = l2_normalise(emb)
        labels = self.item_labels
        if labels is not None:
            labels = (
                pd.Series(np.asarray(labels, dtype=object)).where(lambda s: s.notna(), None).to_numpy(object)
            )
            labels = np.array([None if v is None else str(v) for v in labels], dtype=object)
            if n is None:
                raise RecommendError("item_labels need item_ids (the order they are aligned with)")
            if labels.shape[0] != n:
                raise RecommendError(f"item_labels has {labels.shape[0]} entries but there are {n} item ids")
        as_of = None if self.as_of is None else pd.Timestamp(self.as_of)
        prices = self.item_prices
        if prices is not None:
            raw = pd.Series(np.asarray(prices, dtype=object).reshape(-1))
            numeric = pd.to_numeric(raw, errors="coerce")
            bad = raw.notna() & (numeric.isna() | (numeric < 0) | ~np.isfinite(numeric.fillna(0.0)))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise RecommendError(
                    "item_prices must be non-negative numbers (or missing)",
                    column=Columns.PRICE,
                    row=row + 1,
                    value=raw.iloc[row],
                )
            if n is None:
                raise RecommendError("item_prices need item_ids (the order they are aligned with)")
            if len(raw) != n:
                raise RecommendError(f"item_prices has {len(raw)} entries but there are {n} item ids")
            prices = numeric.to_numpy(np.float64)
        return FitContext(
            item_ids=item_ids,
            item_embeddings=emb,
            item_labels=labels,
            customers=customers_frame(self.customers),
            as_of=as_of,
            item_prices=prices,
        )


class Recommender(ABC):
    """Base class: fit on a log, score blocks of customers, recommend top-k with filters and a reason per row."""

    #: short model name used in evaluation tables
    name: str = "recommender"
    #: reason string when the model has nothing more specific to say
    default_reason: str = "recommended for you"

    def __init__(self, config: BlendConfig | None = None) -> None:
        self.config = config or BlendConfig()
        self.data_: TrainData | None = None
        self.context_: FitContext | None = None

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions | pd.DataFrame | TrainData,
        context: FitContext | None = None,
        **context_kwargs: Any,
    ) -> Recommender:
        """Fit on ``train`` (``Interactions``, a DataFrame in that schema, or a prebuilt :class:`TrainData`).

        ``context_kwargs`` (``item_ids``, ``item_embeddings``, ``item_labels``, ``customers``, ``as_of``) override
        the fields of ``context``.
        """
        ctx = FitContext.coerce(context, **context_kwargs)
        data = self._build_data(train, ctx)
        self._set_data(data, ctx)
        self._fit(data, ctx)
        return self

    def _set_data(self, data: TrainData, context: FitContext) -> None:
        """The state every model derives from its training data alone (fit and load alike, built once, read-only
        afterwards): item popularity, the tie-break order and its positions, the purchased matrix."""
        self.context_ = context
        self.data_ = data
        self.popularity_ = _customer_counts(data)
        self._tiebreak_order = np.lexsort((np.arange(data.n_items), -self.popularity_))
        position = np.empty(data.n_items, dtype=np.int64)
        position[self._tiebreak_order] = np.arange(data.n_items)
        self._tiebreak_positions = position
        self._purchased_matrix = data.purchased_matrix()

    @staticmethod
    def _build_data(train: Interactions | pd.DataFrame | TrainData | None, ctx: FitContext) -> TrainData:
        if isinstance(train, TrainData):
            return train
        extra = None if ctx.customers is None else ctx.customers[Columns.CUSTOMER_ID]
        return TrainData.build(train, item_ids=ctx.item_ids, extra_customer_ids=extra, as_of=ctx.as_of)

    @abstractmethod
    def _fit(self, data: TrainData, context: FitContext) -> None:
        """Model-specific fitting on indexed data."""

    @abstractmethod
    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> np.ndarray | tuple[np.ndarray, Any]:
        """Scores ``(len(rows), n_items)`` for customer rows (``-1`` = cold); optionally ``(scores, extras)``.

        :meth:`recommend` masks a returned block in place when it is a fresh writeable float32 array that is no
        view (``base is None``); anything else (e.g. a broadcast shared row) is copied first.
        """

    def _reasons(
        self, rows: np.ndarray, customer_ids: np.ndarray, idx: np.ndarray, extras: Any
    ) -> np.ndarray:
        """Reason strings ``(len(rows), k)`` for the chosen item indices ``idx``."""
        return np.full(idx.shape, self.default_reason, dtype=object)

    # ------------------------------------------------------------------ helpers
    def _require_fitted(self) -> TrainData:
        if self.data_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")
        return self.data_

    @property
    def item_ids_(self) -> np.ndarray:
        """Item ids in score-column order."""
        return self._require_fitted().item_ids

    def _chunk_rows(self, n_items: int) -> int:
        return int(max(1, min(self.config.similarity_chunk_size, _BLOCK_ELEMENTS // max(n_items, 1))))

    @staticmethod
    def _unique_ids(customer_ids: Ids) -> np.ndarray:
        ids = as_id_array(customer_ids)
        missing = ids == MISSING_ID
        if missing.any():
            raise RecommendError(
                f"customer id at position {int(np.argmax(missing))} is missing (blank, NaN, None and null are "
                f"missing values; {int(missing.sum())} such id(s)): drop them before asking for recommendations"
            )
        return pd.unique(pd.Series(ids, dtype=object)).astype(object)

    # ------------------------------------------------------------------ public API
    def score(self, customer_ids: Ids) -> np.ndarray:
        """Dense scores ``(n_customers, n_items)`` (float32) in the order of ``customer_ids`` and ``item_ids_``."""
        data = self._require_fitted()
        ids = as_id_array(customer_ids)
        rows = data.customer_rows(ids)
        out = np.empty((len(ids), data.n_items), dtype=np.float32)
        step = self._chunk_rows(data.n_items)
        for start in range(0, len(ids), step):
            res = self._score_rows(rows[start : start + step], ids[start : start + step])
            out[start : start + step] = res[0] if isinstance(res, tuple) else res
        return out

    def recommend(
        self,
        customer_ids: Ids,
        k: int | None = None,
        filter_already_purchased: bool = True,
        filter_items: Ids | None = None,
        *,
        allowed_items: Ids | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` items per customer → DataFrame ``customer_id, item_id, score, rank, reason``.

        Args:
            customer_ids: one id or many; duplicates are answered once, in first-seen order.
            k: items per customer (default ``config.k``).
            filter_already_purchased: never return items the customer bought in the training log.
            filter_items: item ids never to return.
            allowed_items: if given, only these item ids may be returned.

        Every customer gets exactly ``k`` rows when at least ``k`` items pass the filters, otherwise all of them.
        """
        data = self._require_fitted()
        k = check_k(self.config.k if k is None else k)
        ids = self._unique_ids(customer_ids)
        rows = data.customer_rows(ids)
        allowed = np.ones(data.n_items, dtype=bool)
        if allowed_items is not None:
            allowed &= data.item_mask(allowed_items)
        if filter_items is not None:
            allowed &= ~data.item_mask(filter_items)
        purchased = self._purchased() if filter_already_purchased else None
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        step = self._recommend_rows()
        for start in range(0, len(ids), step):
            r = rows[start : start + step]
            exclude = None if purchased is None else take_rows(purchased, r)
            parts.append(self._recommend_block(r, ids[start : start + step], k, allowed, exclude))
        if not parts:
            return pd.DataFrame(
                {
                    Columns.CUSTOMER_ID: pd.Series(dtype=object),
                    Columns.ITEM_ID: pd.Series(dtype=object),
                    Columns.SCORE: pd.Series(dtype=np.float64),
                    Columns.RANK: pd.Series(dtype=np.int64),
                    Columns.REASON: pd.Series(dtype=object),
                }
            )
        idx = np.concatenate([p[0] for p in parts])
        vals = np.concatenate([p[1] for p in parts])
        reasons = np.concatenate([np.asarray(p[2], dtype=object) for p in parts])
        valid = np.isfinite(vals)
        rank = np.broadcast_to(np.arange(1, idx.shape[1] + 1, dtype=np.int64), idx.shape)
        return pd.DataFrame(
            {
                Columns.CUSTOMER_ID: np.broadcast_to(ids[:, None], idx.shape)[valid],
                Columns.ITEM_ID: data.item_ids[idx[valid]],
                Columns.SCORE: vals[valid].astype(np.float64),
                Columns.RANK: rank[valid],
                Columns.REASON: reasons[valid],
            }
        )

    def _recommend_rows(self) -> int:
        """Customers per block of :meth:`recommend`."""
        return self._chunk_rows(self._require_fitted().n_items)

    def _recommend_block(
        self,
        rows: np.ndarray,
        customer_ids: np.ndarray,
        k: int,
        allowed: np.ndarray,
        exclude: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k ``(indices, scores, reasons)`` of one block, each ``(len(rows), min(k, n_items))``.

        ``allowed`` masks the items that may be returned at all, ``exclude`` (block rows × items) the ones each
        customer must not get; positions without an item hold a ``-inf`` score. The default scores the dense block.
        """
        res = self._score_rows(rows, customer_ids)
        scores, extras = res if isinstance(res, tuple) else (res, None)
        scores = _owned_float32(scores)
        if not allowed.all():
            scores[:, ~allowed] = -np.inf
        if exclude is not None and exclude.nnz:
            sub = exclude.tocoo()
            scores[sub.row, sub.col] = -np.inf
        idx, vals = topk_rows(scores, k, order=self._tiebreak_order)
        return idx, vals, self._reasons(rows, customer_ids, idx, extras)

    def _tiebreak_position(self) -> np.ndarray:
        """Rank of every item in the tie-break order (lower wins a tie)."""
        return self._tiebreak_positions

    def _purchased(self) -> sp.csr_matrix:
        """Customers × items: 1 where the customer bought the item in the training log."""
        self._require_fitted()
        return self._purchased_matrix


def _customer_counts(data: TrainData) -> np.ndarray:
    """Distinct customers per item (float64): the popularity used for tie-breaks and the popularity baseline."""
    return popularity_counts(data)


def take_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of a CSR matrix in the given order, row ``-1`` giving an empty row (values untouched)."""
    rows = np.asarray(rows, dtype=np.int64)
    warm = rows >= 0
    if warm.all():
        return matrix[rows]
    sub = matrix[rows[warm]]
    counts = np.zeros(rows.size, dtype=np.int64)
    counts[warm] = np.diff(sub.indptr)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((sub.data, sub.indices, indptr), shape=(rows.size, matrix.shape[1]))


def _owned_float32(block: Any) -> np.ndarray:
    """``block`` itself when it is a fresh writeable float32 array, else a float32 copy (safe to mask in place)."""
    if (
        isinstance(block, np.ndarray)
        and block.dtype == np.float32
        and block.base is None
        and block.flags.writeable
        and block.flags.c_contiguous
    ):
        return block
    return np.array(block, dtype=np.float32, copy=True)
