"""Indexed events with exact timestamps: what the two-stage ranker cuts at a point in time without leakage.

:class:`EventLog` holds one row per event as integer arrays (customer row, item column, event code, timestamp in
nanoseconds) over the id tables of a :class:`~fashion_reco.recommend.history.TrainData`. :meth:`EventLog.before`
keeps the events *strictly before* a cut, so every candidate source and feature computed from it cannot see the cut
or anything after it — the property the ranker's training windows rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.recommend.history import EVENT_CODES, TrainData, interactions_frame

if TYPE_CHECKING:
    from fashion_reco.data.interactions import Interactions, TimestampLike

__all__ = ["DAY_NS", "EventLog", "as_ns", "event_prices"]

DAY_NS = 86_400 * 10**9


def event_prices(frame: pd.DataFrame) -> np.ndarray | None:
    """Price per event from a ``price`` (else ``unit_price``) column: float64, NaN where missing, negative or not a
    number; None when the frame has neither column."""
    column = next((c for c in (Columns.PRICE, Columns.UNIT_PRICE) if c in frame.columns), None)
    if column is None:
        return None
    price = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    return np.where(np.isfinite(price) & (price >= 0), price, np.nan)


def as_ns(ts: TimestampLike) -> int:
    """A timestamp (anything ``pd.Timestamp`` accepts; tz-aware converted to naive UTC) as int nanoseconds."""
    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return int(t.value)


@dataclass(frozen=True)
class EventLog:
    """Events as index arrays with exact int64-nanosecond timestamps (module docstring)."""

    cust: np.ndarray
    item: np.ndarray
    event: np.ndarray
    ts: np.ndarray
    n_customers: int
    n_items: int
    #: price of each event (float64, NaN unknown) when the log has a ``price`` / ``unit_price`` column, else None
    price: np.ndarray | None = None

    @property
    def n_events(self) -> int:
        return int(self.cust.shape[0])

    @classmethod
    def from_frame(cls, interactions: Interactions | pd.DataFrame, data: TrainData) -> EventLog:
        """Index ``interactions`` with the id tables of ``data`` (unknown ids and events after ``as_of`` dropped)."""
        frame = interactions_frame(interactions)
        item = pd.Index(data.item_ids).get_indexer(frame[Columns.ITEM_ID].to_numpy(object))
        cust = pd.Index(data.customer_ids).get_indexer(frame[Columns.CUSTOMER_ID].to_numpy(object))
        ts = frame[Columns.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64)
        keep = (item >= 0) & (cust >= 0)
        if data.as_of is not None:
            keep &= ts <= as_ns(data.as_of)
        event = frame[Columns.EVENT_TYPE].map(EVENT_CODES).to_numpy(np.int8)
        price = event_prices(frame)
        return cls._sorted(
            cust[keep],
            item[keep],
            event[keep],
            ts[keep],
            data.n_customers,
            data.n_items,
            None if price is None else price[keep],
        )

    @classmethod
    def from_train_data(cls, data: TrainData) -> EventLog:
        """Rebuild from indexed data whose timestamps are only known as ages (rounded to the nanosecond)."""
        as_of = as_ns(data.as_of) if data.as_of is not None else 0
        ts = as_of - np.rint(np.asarray(data.age_days, dtype=np.float64) * DAY_NS).astype(np.int64)
        return cls._sorted(data.cust, data.item, data.event, ts, data.n_customers, data.n_items)

    @classmethod
    def _sorted(
        cls,
        cust: np.ndarray,
        item: np.ndarray,
        event: np.ndarray,
        ts: np.ndarray,
        n_c: int,
        n_i: int,
        price: np.ndarray | None = None,
    ) -> EventLog:
        order = np.lexsort((item, cust, ts))
        return cls(
            cust=np.ascontiguousarray(cust[order], dtype=np.int64),
            item=np.ascontiguousarray(item[order], dtype=np.int64),
            event=np.ascontiguousarray(event[order], dtype=np.int8),
            ts=np.ascontiguousarray(ts[order], dtype=np.int64),
            n_customers=int(n_c),
            n_items=int(n_i),
            price=None if price is None else np.ascontiguousarray(price[order], dtype=np.float64),
        )

    def _select(self, mask: np.ndarray | slice) -> EventLog:
        return EventLog(
            cust=self.cust[mask],
            item=self.item[mask],
            event=self.event[mask],
            ts=self.ts[mask],
            n_customers=self.n_customers,
            n_items=self.n_items,
            price=None if self.price is None else self.price[mask],
        )

    def before(self, cut_ns: int) -> EventLog:
        """The events strictly before ``cut_ns`` (timestamps are sorted: one binary search)."""
        return self._select(slice(0, int(np.searchsorted(self.ts, cut_ns, side="left"))))

    def between(self, start_ns: int, end_ns: int) -> EventLog:
        """The events in ``[start_ns, end_ns)``."""
        lo = int(np.searchsorted(self.ts, start_ns, side="left"))
        hi = int(np.searchsorted(self.ts, end_ns, side="left"))
        return self._select(slice(lo, hi))

    def of_type(self, code: int) -> EventLog:
        """Only the events of one event code."""
        return self._select(self.event == code)

    def age_days(self, cut_ns: int) -> np.ndarray:
        """Days between each event and ``cut_ns`` (float64, positive for events before it)."""
        return (cut_ns - self.ts).astype(np.float64) / DAY_NS

    @property
    def first_ns(self) -> int | None:
        return int(self.ts[0]) if self.n_events else None

    @property
    def last_ns(self) -> int | None:
        return int(self.ts[-1]) if self.n_events else None
