"""The one rule that turns customer and item identifiers into canonical text, used by every reader.

An id is canonical text, compared as text. The rule, applied to each value on its own (never per column):

* missing values spell ``""`` (:data:`MISSING_ID`): ``None``, ``pd.NA``, ``NaT``, float NaN, and text that is
  empty, whitespace only, or (ignoring case and surrounding blanks) ``"nan"``, ``"none"`` or ``"null"``;
* text is stripped of surrounding blanks: ``" 17850"`` is ``"17850"``;
* integral numbers lose their fraction: ``17850.0`` and ``"17850.0"`` are ``"17850"`` (pandas turns an integer
  id column with gaps into floats, and CSV writers then spell them with ``.0``: without this rule the same
  customer would have two spellings across tables);
* bytes are decoded as UTF-8; anything else is spelled with ``str`` and then follows the text rule.

:func:`normalise_ids` applies the rule to a whole column, once per distinct value (``pandas.factorize``), with
vectorised string operations; :func:`normalise_id` applies it to one value and always agrees with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
import pandas as pd

__all__ = ["MISSING_ID", "IdLike", "Ids", "as_id_array", "is_missing_id", "normalise_id", "normalise_ids"]

#: One identifier as callers may pass it: text, or a number that names an id (``17850`` / ``17850.0``).
IdLike: TypeAlias = str | int | float | np.integer | np.floating
#: One or many identifiers: a single id, or any sequence / array / Series / Index of them.
Ids: TypeAlias = IdLike | Iterable[IdLike] | np.ndarray | pd.Series | pd.Index

#: The spelling of a missing id after normalisation.
MISSING_ID = ""
#: Text (lower-cased, stripped) that means "no id" rather than an id.
MISSING_TOKENS = frozenset({"", "nan", "none", "null"})

_INTEGRAL_TEXT = r"^([+-]?\d+)\.0*$"
_INT64_LIMIT = 2.0**63
# object columns whose distinct values can be factorized as they are (equal values spell the same id)
_HOMOGENEOUS = frozenset(
    {"string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "bytes"}
)


def normalise_id(value: object) -> str:
    """One identifier in its canonical spelling (``""`` when missing); see the module docstring for the rule."""
    return str(_normalise_text(pd.Series([_spell(value)], dtype=object)).iloc[0])


def is_missing_id(value: object) -> bool:
    """Whether ``value`` spells no id at all (None, NaN, blank text, ``"NaN"``, ``"None"``, ``"null"`` …)."""
    return normalise_id(value) == MISSING_ID


def normalise_ids(values: Ids | None) -> pd.Series:
    """Identifiers in their canonical spelling as an object ``Series`` of ``str`` (``""`` where missing).

    A ``Series`` keeps its index; anything else gets a fresh ``RangeIndex``. The work is done once per distinct
    value and spread back with ``take``, so a column of a million events with a few thousand customers costs a
    few thousand spellings.
    """
    series = _as_series(values)
    keys = series
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in _HOMOGENEOUS:
        # mixed objects: factorize would merge True with 1 and fails on unhashable values; spell them first
        keys = series.map(_spell)
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    spelled = _normalise_distinct(pd.Series(uniques, copy=False)).to_numpy(dtype=object)
    lookup = np.append(spelled, MISSING_ID)  # code -1 (missing) picks the trailing ""
    return pd.Series(lookup[codes], index=series.index, dtype=object)


def as_id_array(ids: Ids | None) -> np.ndarray:
    """Ids (one id, a list, an array, a Series or an Index; None for none) as a 1-D object array of canonical
    ``str``."""
    return normalise_ids(ids).to_numpy(dtype=object)


def _as_series(values: Ids | None) -> pd.Series:
    if values is None:
        return pd.Series([], dtype=object)
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, (str, bytes, int, float, np.generic)):
        return pd.Series([values], dtype=object)
    if isinstance(values, (pd.Index, np.ndarray)):
        return pd.Series(np.asarray(values).reshape(-1), copy=False)
    return pd.Series(list(values), dtype=object)


def _normalise_distinct(uniques: pd.Series) -> pd.Series:
    """The rule applied to distinct, non-missing values, vectorised by dtype."""
    dtype = uniques.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return uniques.astype(str)
    if pd.api.types.is_integer_dtype(dtype):
        return uniques.astype("string").fillna(MISSING_ID).astype(object)
    if pd.api.types.is_float_dtype(dtype):
        return _normalise_floats(uniques)
    if pd.api.types.infer_dtype(uniques, skipna=True) in ("string", "empty"):
        return _normalise_text(uniques.astype(object).where(uniques.notna(), MISSING_ID))
    spelled = [_spell(v) for v in uniques.to_numpy(dtype=object)]  # mixed objects: one cheap step per value
    return _normalise_text(pd.Series(spelled, index=uniques.index, dtype=object))


def _spell(value: object) -> str | None:
    """A scalar as text before the text rule: None when missing, numbers already in their canonical spelling."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, np.datetime64) and np.isnat(value):
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _normalise_floats(series: pd.Series) -> pd.Series:
    numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
    out = pd.Series(series.astype(str).to_numpy(dtype=object), index=series.index, dtype=object)
    integral = np.isfinite(numbers) & (np.floor(numbers) == numbers)
    small = integral & (np.abs(numbers) < _INT64_LIMIT)
    if small.any():
        out[small] = numbers[small].astype(np.int64).astype(str)
    for position in np.flatnonzero(integral & ~small):  # beyond int64: exact Python ints, rare
        out.iloc[position] = str(int(numbers[position]))
    out[np.isnan(numbers)] = MISSING_ID
    return out


def _normalise_text(text: pd.Series) -> pd.Series:
    """The text rule on a column of ``str`` (None where already known to be missing)."""
    stripped = text.where(text.notna(), MISSING_ID).astype(str).str.strip()
    missing = stripped.str.lower().isin(MISSING_TOKENS)
    out = stripped.str.replace(_INTEGRAL_TEXT, r"\1", regex=True)
    return out.where(~missing, MISSING_ID).astype(object)
