"""Popularity signals: all-time popularity and "trend" (recency-decayed popularity with a short half-life).

Both count distinct customers per item (a customer viewing one item ten times counts once), so a few heavy users
cannot make an item popular. The trend weights each customer–item pair by the decay of its most recent event.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fashion_reco.recommend.history import TrainData, decay

__all__ = ["popularity_counts", "trend_scores"]


def popularity_counts(data: TrainData, *, window_days: float | None = None) -> np.ndarray:
    """Distinct customers per item (optionally only events in the last ``window_days``), float64 ``(n_items,)``."""
    sel = np.ones(data.n_events, dtype=bool) if window_days is None else data.age_days <= window_days
    if not sel.any():
        return np.zeros(data.n_items, dtype=np.float64)
    pairs = np.unique(data.cust[sel].astype(np.int64) * data.n_items + data.item[sel])
    return np.bincount(pairs % data.n_items, minlength=data.n_items).astype(np.float64)


def trend_scores(data: TrainData, half_life_days: float) -> np.ndarray:
    """Σ over customers of ``decay(age of their latest event on the item)``: popularity now, float64 ``(n_items,)``."""
    if data.n_events == 0:
        return np.zeros(data.n_items, dtype=np.float64)
    frame = pd.DataFrame({"key": data.cust.astype(np.int64) * data.n_items + data.item, "age": data.age_days})
    latest = frame.groupby("key", sort=False)["age"].min()
    items = (latest.index.to_numpy() % data.n_items).astype(np.int64)
    return np.bincount(items, weights=decay(latest.to_numpy(), half_life_days), minlength=data.n_items)
