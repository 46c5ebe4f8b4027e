"""Checks of numeric call arguments shared by every entry point (facade, recommenders, CLI): range and finiteness,
with a message that names the argument. Configuration values are checked by the pydantic models in config.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fashion_reco.errors import RecommendError

__all__ = ["check_k", "check_positive"]


def check_k(k: Any, name: str = "k") -> int:
    """A positive whole number of results (refuses bool, float, NaN and strings with a clear message)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        if isinstance(k, (float, np.floating)) and math.isfinite(k) and float(k).is_integer() and k >= 1:
            return int(k)
        raise RecommendError(f"{name} must be a whole number of at least 1, got {k!r}")
    if k < 1:
        raise RecommendError(f"{name} must be at least 1, got {k}")
    return int(k)


def check_positive(value: Any, name: str) -> float:
    """A finite number above 0 (days, weights, budgets given as call arguments)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecommendError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise RecommendError(f"{name} must be a finite number above 0, got {value!r}")
    return number
