"""Per-customer normalisation of signal blocks, so that blend weights compare like with like.

* ``max`` (the blend's default): ``s / max_row |s|`` (in [-1, 1]); absent evidence (0) stays 0, so a sparse
  signal such as co-occurrence adds nothing to items it knows nothing about, and relative magnitudes survive.
* ``zscore``: ``(s − mean_row) / std_row``; rows with no spread (no signal) become 0.
* ``rank``: the row's ranks scaled to [0, 1] (ties share the mean rank).

All keep the order within a row, so a single signal ranks items exactly as the raw signal does.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["NORMALISATIONS", "normalise_rows"]

NORMALISATIONS = ("zscore", "max", "rank")
_EPS = 1e-9


def normalise_rows(x: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Normalise every row of ``x`` (float32 result, same shape)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D block, got shape {x.shape}")
    if x.shape[1] == 0:
        return x.copy()
    if method == "zscore":
        mean = x.mean(axis=1, keepdims=True, dtype=np.float64)
        centred = (x - mean).astype(np.float32)
        std = np.sqrt(np.mean(np.square(centred, dtype=np.float32), axis=1, keepdims=True, dtype=np.float64))
        scale = np.where(std > _EPS * np.maximum(1.0, np.abs(mean)), 1.0 / np.maximum(std, 1e-30), 0.0)
        return (centred * scale.astype(np.float32)).astype(np.float32)
    if method == "max":
        peak = np.abs(x).max(axis=1, keepdims=True)
        return np.divide(x, peak, out=np.zeros_like(x), where=peak > _EPS).astype(np.float32)
    if method == "rank":
        n = x.shape[1]
        if n == 1:
            return np.zeros_like(x)
        ranks = rankdata(x, axis=1, method="average").astype(np.float32)
        return ((ranks - 1.0) / (n - 1)).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r} (expected one of {NORMALISATIONS})")
