"""Popularity candidates: last-window bestsellers, trending items, and bestsellers per customer segment.

"Last week's bestsellers" is the strongest single baseline of the H&M competition and the usual cold-start answer;
per segment (age band, or any categorical customer column) it captures age-segment tastes. Popularity counts
distinct customers (a heavy buyer cannot make an item popular); trend is popularity decayed with a short half-life.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fashion_reco.recommend.candidates.base import CandidateEnv, Candidates, CandidateSource
from fashion_reco.recommend.eventlog import DAY_NS, EventLog
from fashion_reco.recommend.history import decay
from fashion_reco.recommend.popularity import distinct_customer_counts

__all__ = ["PopularSource", "SegmentPopularSource", "TrendingSource", "window_popularity"]


def window_popularity(log: EventLog, cut_ns: int, window_days: float) -> np.ndarray:
    """Distinct customers per item over the last ``window_days`` before the cut (all-time when that is empty)."""
    window = log.between(cut_ns - int(window_days * DAY_NS), cut_ns)
    if window.n_events == 0:
        window = log
    return distinct_customer_counts(window.cust, window.item, log.n_items)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    order = np.lexsort((np.arange(scores.size), -scores))
    order = order[scores[order] > 0]
    return order[:n]


def _broadcast(items: np.ndarray, scores: np.ndarray, n_rows: int) -> Candidates:
    return Candidates(
        row=np.repeat(np.arange(n_rows, dtype=np.int64), items.size),
        item=np.tile(items.astype(np.int64), n_rows),
        score=np.tile(scores.astype(np.float32), n_rows),
        rank=np.tile(np.arange(1, items.size + 1, dtype=np.float32), n_rows),
    )


@dataclass(frozen=True)
class PopularSource(CandidateSource):
    """The same top-``n`` bestsellers of the last ``window_days`` for every customer."""

    name: ClassVar[str] = "popular"
    n: int
    items: np.ndarray
    scores: np.ndarray

    @classmethod
    def fit(
        cls, log: EventLog, cut_ns: int, env: CandidateEnv, n: int, *, window_days: float = 7.0
    ) -> PopularSource:
        pop = window_popularity(log, cut_ns, window_days)
        items = _top(pop, int(n))
        return cls(n=int(n), items=items, scores=pop[items].astype(np.float32))

    def generate(self, rows: np.ndarray) -> Candidates:
        return _broadcast(self.items, self.scores, len(rows))


@dataclass(frozen=True)
class TrendingSource(CandidateSource):
    """Top-``n`` items by popularity decayed with ``half_life_days`` (what is selling *now*)."""

    name: ClassVar[str] = "trending"
    n: int
    items: np.ndarray
    scores: np.ndarray

    @classmethod
    def fit(
        cls, log: EventLog, cut_ns: int, env: CandidateEnv, n: int, *, half_life_days: float = 3.0
    ) -> TrendingSource:
        trend = np.zeros(log.n_items)
        if log.n_events:
            keys = log.cust * log.n_items + log.item
            # latest event per (customer, item): log is time-sorted, so the last occurrence of each key
            last = np.unique(keys[::-1], return_index=True)[1]
            last = log.n_events - 1 - last
            np.add.at(trend, log.item[last], decay(log.age_days(cut_ns)[last], half_life_days))
        items = _top(trend, int(n))
        return cls(n=int(n), items=items, scores=trend[items].astype(np.float32))

    def generate(self, rows: np.ndarray) -> Candidates:
        return _broadcast(self.items, self.scores, len(rows))


@dataclass(frozen=True)
class SegmentPopularSource(CandidateSource):
    """Top-``n`` bestsellers of the last ``window_days`` within the customer's segment (e.g. age band)."""

    name: ClassVar[str] = "segment_popular"
    n: int
    customer_segment: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @classmethod
    def fit(
        cls, log: EventLog, cut_ns: int, env: CandidateEnv, n: int, *, window_days: float = 7.0
    ) -> SegmentPopularSource:
        n = int(n)
        items = np.full((env.n_segments, n), -1, dtype=np.int64)
        scores = np.zeros((env.n_segments, n), dtype=np.float32)
        window = log.between(cut_ns - int(window_days * DAY_NS), cut_ns)
        if window.n_events == 0:
            window = log
        seg = env.customer_segment[window.cust] if window.n_events else np.empty(0, np.int64)
        for s in range(env.n_segments):  # one pass per segment value (a handful), not per customer
            sel = seg == s
            pop = distinct_customer_counts(window.cust[sel], window.item[sel], log.n_items)
            top = _top(pop, n)
            items[s, : top.size] = top
            scores[s, : top.size] = pop[top]
        return cls(n=n, customer_segment=env.customer_segment, items=items, scores=scores)

    def generate(self, rows: np.ndarray) -> Candidates:
        rows = np.asarray(rows, dtype=np.int64)
        seg = np.where(rows >= 0, self.customer_segment[np.maximum(rows, 0)], -1)
        pos = np.flatnonzero(seg >= 0)
        if pos.size == 0 or self.items.size == 0:
            return Candidates.empty()
        items = self.items[seg[pos]]
        scores = self.scores[seg[pos]]
        keep = items >= 0
        ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.float32), items.shape)
        return Candidates(
            row=np.broadcast_to(pos[:, None], items.shape)[keep].astype(np.int64),
            item=items[keep],
            score=scores[keep],
            rank=ranks[keep],
        )
