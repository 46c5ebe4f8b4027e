"""Interaction logs as index arrays: the shared input of every recommender in this package.

:class:`TrainData` maps customer and item ids to dense indices once (item order = the catalogue's when given, else
the sorted item ids seen in the log), keeps one row per event (customer, item, event code, age in days before
``as_of``) and builds the sparse customer × item matrices the signals need: recency-decayed, event-weighted history
(:meth:`TrainData.history_matrix`) and the purchased set used by filters (:meth:`TrainData.purchased_matrix`).

Accepts the data layer's ``Interactions`` (anything with a ``frame``) or a plain DataFrame in the same schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.columns import Columns, EventType, EventTypes
from fashion_reco.config import DEFAULT_EVENT_WEIGHTS
from fashion_reco.errors import InteractionsError, RecommendError
from fashion_reco.ids import Ids, as_id_array  # re-exported: the one id rule lives in fashion_reco.ids

if TYPE_CHECKING:
    from fashion_reco.data.interactions import Interactions, TimestampLike

__all__ = [
    "EVENT_CODES",
    "TrainData",
    "as_id_array",
    "decay",
    "interactions_frame",
]

EVENT_CODES: dict[str, int] = {name: code for code, name in enumerate(EventTypes.ALL)}
_REQUIRED = (Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP)
_DAY_NS = 86_400 * 10**9


def decay(age_days: np.ndarray | float, half_life_days: float | None) -> np.ndarray:
    """Exponential recency weight ``0.5 ** (age / half_life)`` (1 at age 0; ages below 0 count as 0).

    ``half_life_days=None`` (or ``inf``) means no decay. Non-increasing in age for any positive half-life.
    """
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    if half_life_days is None or not math.isfinite(half_life_days):
        return np.ones_like(age)
    if half_life_days <= 0:
        raise RecommendError(f"half-life must be positive, got {half_life_days}")
    return np.exp2(-age / float(half_life_days))


def interactions_frame(interactions: Interactions | pd.DataFrame | None) -> pd.DataFrame:
    """The events as a DataFrame with string ids, canonical event types and ``datetime64[ns]`` timestamps."""
    if interactions is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _REQUIRED}).astype(
            {Columns.TIMESTAMP: "datetime64[ns]"}
        )
    frame = interactions.frame if hasattr(interactions, "frame") else interactions
    if not isinstance(frame, pd.DataFrame):
        raise InteractionsError(f"expected Interactions or a DataFrame, got {type(interactions).__name__}")
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise InteractionsError(f"interactions lack required columns {missing}", column=missing[0])
    kept = (*_REQUIRED, "quantity", Columns.PRICE, Columns.UNIT_PRICE)
    out = frame.loc[:, [c for c in kept if c in frame.columns]].copy()
    for col in (Columns.CUSTOMER_ID, Columns.ITEM_ID):
        if out[col].dtype != object or not all(isinstance(v, str) for v in out[col].head(50)):
            out[col] = as_id_array(out[col])
    bad = ~out[Columns.EVENT_TYPE].isin(EventTypes.ALL)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InteractionsError(
            f"unknown event type (expected one of {list(EventTypes.ALL)})",
            row=row,
            column=Columns.EVENT_TYPE,
            value=out[Columns.EVENT_TYPE].iloc[row - 1],
        )
    ts = out[Columns.TIMESTAMP]
    if not pd.api.types.is_datetime64_ns_dtype(ts):
        ts = pd.to_datetime(ts, utc=getattr(ts.dt, "tz", None) is not None if hasattr(ts, "dt") else False)
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        out[Columns.TIMESTAMP] = ts.astype("datetime64[ns]")
    return out.reset_index(drop=True)


@dataclass
class TrainData:
    """Index arrays of a training log over a fixed item universe (see the module docstring)."""

    item_ids: np.ndarray
    customer_ids: np.ndarray
    cust: np.ndarray
    item: np.ndarray
    event: np.ndarray
    age_days: np.ndarray
    as_of: pd.Timestamp | None
    n_dropped: int = 0
    item_pos: dict[str, int] = field(default_factory=dict, repr=False)
    customer_pos: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def n_customers(self) -> int:
        return int(self.customer_ids.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.cust.shape[0])

    @classmethod
    def build(
        cls,
        interactions: Interactions | pd.DataFrame | None,
        *,
        item_ids: Ids | None = None,
        extra_customer_ids: Ids | None = None,
        as_of: TimestampLike | None = None,
    ) -> TrainData:
        """Index a log. Events on items outside ``item_ids`` and events after ``as_of`` are dropped (counted)."""
        frame = interactions_frame(interactions)
        cutoff: pd.Timestamp | None
        if as_of is not None:
            cutoff = pd.Timestamp(as_of)
            if cutoff.tzinfo is not None:
                cutoff = cutoff.tz_convert("UTC").tz_localize(None)
            late = frame[Columns.TIMESTAMP] > cutoff
            n_late = int(late.sum())
            frame = frame.loc[~late]
        else:
            n_late = 0
            cutoff = frame[Columns.TIMESTAMP].max() if len(frame) else None
        if item_ids is None:
            items = np.array(sorted(frame[Columns.ITEM_ID].unique()), dtype=object)
        else:
            items = as_id_array(item_ids)
            if len(set(items)) != len(items):
                raise RecommendError("item ids must be unique")
        item_pos = {item: i for i, item in enumerate(items)}
        item_idx = frame[Columns.ITEM_ID].map(item_pos)
        known = item_idx.notna().to_numpy()
        n_dropped = int((~known).sum()) + n_late
        frame = frame.loc[known]
        item_idx = item_idx.loc[known].to_numpy(dtype=np.int64)
        customers = set(frame[Columns.CUSTOMER_ID].unique())
        if extra_customer_ids is not None:
            customers.update(as_id_array(extra_customer_ids))
        cust_ids = np.array(sorted(customers), dtype=object)
        customer_pos = {c: i for i, c in enumerate(cust_ids)}
        cust_idx = frame[Columns.CUSTOMER_ID].map(customer_pos).to_numpy(dtype=np.int64)
        event = frame[Columns.EVENT_TYPE].map(EVENT_CODES).to_numpy(dtype=np.int8)
        if len(frame):
            age_ns = (cutoff - frame[Columns.TIMESTAMP]).to_numpy(dtype="timedelta64[ns]").astype(np.int64)
            age = np.maximum(age_ns / _DAY_NS, 0.0)
        else:
            age = np.empty(0, dtype=np.float64)
        return cls(
            item_ids=items,
            customer_ids=cust_ids,
            cust=cust_idx,
            item=item_idx,
            event=event,
            age_days=age,
            as_of=cutoff,
            n_dropped=n_dropped,
            item_pos=item_pos,
            customer_pos=customer_pos,
        )

    # ------------------------------------------------------------------ lookups
    def customer_rows(self, customer_ids: Ids) -> np.ndarray:
        """Row index per id, ``-1`` for customers never seen in training."""
        ids = as_id_array(customer_ids)
        pos = self.customer_pos
        return np.fromiter((pos.get(c, -1) for c in ids), dtype=np.int64, count=len(ids))

    def item_rows(self, item_ids: Ids | None, *, strict: bool = False) -> np.ndarray:
        """Column index per item id, ``-1`` for unknown ids (or :class:`UnknownIdError` when ``strict``)."""
        from fashion_reco.errors import UnknownIdError

        ids = as_id_array(item_ids)
        pos = self.item_pos
        out = np.fromiter((pos.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        if strict and (out < 0).any():
            bad = ids[int(np.flatnonzero(out < 0)[0])]
            raise UnknownIdError("item id not in the catalogue", item_id=bad)
        return out

    def item_mask(self, item_ids: Ids | None) -> np.ndarray:
        """Boolean ``(n_items,)`` mask of the given ids (unknown ids ignored)."""
        mask = np.zeros(self.n_items, dtype=bool)
        if item_ids is None:
            return mask
        rows = self.item_rows(item_ids)
        mask[rows[rows >= 0]] = True
        return mask

    # ------------------------------------------------------------------ matrices
    def event_weight_array(self, event_weights: Mapping[EventType, float] | None) -> np.ndarray:
        """Weight of each event row from its type."""
        weights: dict[str, float] = {str(k): float(v) for k, v in DEFAULT_EVENT_WEIGHTS.items()}
        if event_weights:
            weights.update({k: float(v) for k, v in event_weights.items()})
        lut = np.array([weights[name] for name in EventTypes.ALL], dtype=np.float64)
        return lut[self.event]

    def history_matrix(
        self,
        event_weights: Mapping[EventType, float] | None = None,
        half_life_days: float | None = None,
        *,
        rows: np.ndarray | None = None,
    ) -> sp.csr_matrix:
        """Customer × item matrix of Σ event weight × recency decay (duplicates summed), float32 CSR."""
        w = self.event_weight_array(event_weights) * decay(self.age_days, half_life_days)
        m = sp.csr_matrix(
            (w.astype(np.float32), (self.cust, self.item)),
            shape=(self.n_customers, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        m.eliminate_zeros()
        return m if rows is None else m[rows]

    def purchased_matrix(self) -> sp.csr_matrix:
        """Boolean customer × item CSR of purchases (what ``filter_already_purchased`` removes)."""
        sel = self.event == EVENT_CODES[EventTypes.PURCHASE]
        m = sp.csr_matrix(
            (np.ones(int(sel.sum()), dtype=bool), (self.cust[sel], self.item[sel])),
            shape=(self.n_customers, self.n_items),
            dtype=bool,
        )
        m.sum_duplicates()
        return m

    def strongest_event_matrix(self) -> sp.csr_matrix:
        """Customer × item CSR holding 1 + the strongest event code seen (1 view, 2 add to cart, 3 purchase)."""
        df = pd.DataFrame({"c": self.cust, "i": self.item, "e": self.event.astype(np.int8) + 1})
        agg = df.groupby(["c", "i"], sort=False)["e"].max()
        c = agg.index.get_level_values(0).to_numpy()
        i = agg.index.get_level_values(1).to_numpy()
        m = sp.csr_matrix(
            (agg.to_numpy(dtype=np.int8), (c, i)), shape=(self.n_customers, self.n_items), dtype=np.int8
        )
        return m

    def subset_before(self, min_age_days: float) -> TrainData:
        """The events at least ``min_age_days`` old, re-aged to the new ``as_of`` (for validation splits)."""
        keep = self.age_days >= min_age_days
        as_of = None if self.as_of is None else self.as_of - pd.Timedelta(days=float(min_age_days))
        return TrainData(
            item_ids=self.item_ids,
            customer_ids=self.customer_ids,
            cust=self.cust[keep],
            item=self.item[keep],
            event=self.event[keep],
            age_days=self.age_days[keep] - min_age_days,
            as_of=as_of,
            n_dropped=self.n_dropped,
            item_pos=self.item_pos,
            customer_pos=self.customer_pos,
        )
