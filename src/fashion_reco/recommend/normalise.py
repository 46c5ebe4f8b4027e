"""Per-customer normalisation of signal blocks, so that blend weights compare like with like.

* ``max`` (the blend's default): ``s / max_row |s|`` (in [-1, 1]); absent evidence (0) stays 0, so a sparse
  signal such as co-occurrence adds nothing to items it knows nothing about, and relative magnitudes survive.
* ``zscore``: ``(s − mean_row) / std_row``; rows with no spread (no signal) become 0.
* ``rank``: the row's ranks scaled to [0, 1] (ties share the mean rank).

All keep the order within a row, so a single signal ranks items exactly as the raw signal does.

The blend's scoring fuses ``max`` normalisation with its weight: ``w · s / peak`` is one multiplication of the raw
block by :func:`max_scale` (``w / peak`` per row), so no normalised copy is ever materialised.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["NORMALISATIONS", "max_scale", "normalise_rows", "row_peaks"]

NORMALISATIONS = ("zscore", "max", "rank")
_EPS = 1e-9


def row_peaks(x: np.ndarray) -> np.ndarray:
    """``max_row |x|`` as float32 ``(n_rows,)`` without materialising ``|x|`` (0 for rows of no columns)."""
    x = np.asarray(x)
    if x.shape[1] == 0:
        return np.zeros(x.shape[0], dtype=np.float32)
    return np.maximum(x.max(axis=1), -x.min(axis=1)).astype(np.float32, copy=False)


def max_scale(peak: np.ndarray, weight: np.ndarray | float = 1.0) -> np.ndarray:
    """Per-row float32 multiplier ``weight / peak`` of ``max`` normalisation (0 where the row has no signal)."""
    peak = np.asarray(peak, dtype=np.float32)
    w = np.broadcast_to(np.asarray(weight, dtype=np.float32), peak.shape)
    ok = peak > _EPS
    return np.divide(w, np.where(ok, peak, np.float32(1.0)), where=ok, out=np.zeros(peak.shape, np.float32))


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
        peak = row_peaks(x)
        # Rows without signal divide by +inf: 0 everywhere, in the same single pass as the others.
        divisor = np.where(peak > _EPS, peak, np.float32(np.inf))
        return np.divide(x, divisor[:, None], dtype=np.float32)
    if method == "rank":
        n = x.shape[1]
        if n == 1:
            return np.zeros_like(x)
        ranks = rankdata(x, axis=1, method="average").astype(np.float32)
        return ((ranks - 1.0) / (n - 1)).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r} (expected one of {NORMALISATIONS})")
