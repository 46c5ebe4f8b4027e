"""Popularity signals: all-time popularity and "trend" (recency-decayed popularity with a short half-life).

Both count distinct customers per item (a customer viewing one item ten times counts once), so a few heavy users
cannot make an item popular. The trend weights each customer–item pair by the decay of its most recent event.

Distinct pairs are found by sorting the ``customer · n_items + item`` keys and keeping first occurrences (numpy's
``unique`` hashes 64-bit keys, which is ~30× slower on millions of events).
"""

from __future__ import annotations

import numpy as np

from fashion_reco.recommend.history import TrainData, decay

__all__ = ["distinct_customer_counts", "popularity_counts", "trend_scores"]


def _pair_keys(cust: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    return cust.astype(np.int64) * np.int64(n_items) + item.astype(np.int64, copy=False)


def _first_of_runs(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions where a new key starts in a sorted key array."""
    first = np.empty(sorted_keys.size, dtype=bool)
    if sorted_keys.size:
        first[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    return np.flatnonzero(first)


def distinct_customer_counts(cust: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """Distinct customers per item of the event arrays ``cust``, ``item``: float64 ``(n_items,)``."""
    if cust.size == 0:
        return np.zeros(n_items, dtype=np.float64)
    keys = np.sort(_pair_keys(cust, item, n_items))
    pairs = keys[_first_of_runs(keys)]
    return np.bincount(pairs % n_items, minlength=n_items).astype(np.float64)


def popularity_counts(data: TrainData, *, window_days: float | None = None) -> np.ndarray:
    """Distinct customers per item (optionally only events in the last ``window_days``), float64 ``(n_items,)``."""
    if window_days is None:
        return distinct_customer_counts(data.cust, data.item, data.n_items)
    sel = data.age_days <= window_days
    return distinct_customer_counts(data.cust[sel], data.item[sel], data.n_items)


def trend_scores(data: TrainData, half_life_days: float) -> np.ndarray:
    """Σ over customers of ``decay(age of their latest event on the item)``: popularity now, float64 ``(n_items,)``."""
    if data.n_events == 0:
        return np.zeros(data.n_items, dtype=np.float64)
    keys = _pair_keys(data.cust, data.item, data.n_items)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = _first_of_runs(keys)
    latest = np.minimum.reduceat(np.asarray(data.age_days, dtype=np.float64)[order], starts)
    items = keys[starts] % data.n_items
    return np.bincount(items, weights=decay(latest, half_life_days), minlength=data.n_items)
