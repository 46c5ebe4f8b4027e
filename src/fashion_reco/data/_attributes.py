"""Attribute columns that can always be saved: a column of mixed scalars is coerced to text at load time.

Catalogue and customer tables keep the retailer's own attribute columns. A column pyarrow cannot store (numbers
and strings mixed, e.g. ``size`` = ``38`` and ``"M"``) would otherwise only fail much later, inside ``save``. It is
decided here, when the table is read: mixed scalars (text, numbers, booleans, dates) become text, with a warning
naming the column; a column holding containers or arbitrary objects is refused with the column and row at fault.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from fashion_reco.errors import DataError, FashionRecoWarning

__all__ = ["storable_attributes"]

_SCALARS = (str, bytes, bool, int, float, decimal.Decimal, _dt.date, _dt.datetime, _dt.time, np.generic)


def _storable(series: pd.Series) -> bool:
    import pyarrow as pa

    try:
        pa.array(series, from_pandas=True)
    except Exception:  # pyarrow refuses with ArrowInvalid / ArrowTypeError / TypeError depending on the mix
        return False
    return True


def _as_text(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def storable_attributes(
    frame: pd.DataFrame,
    columns: Iterable[str],
    *,
    rows: np.ndarray | None,
    file: Path | None,
    error_cls: type[DataError],
) -> pd.DataFrame:
    """Coerce mixed-scalar ``columns`` of ``frame`` (object dtype only) to text; refuse unstorable ones."""
    for name in columns:
        series = frame[name]
        if series.dtype != object or _storable(series):
            continue
        missing = series.isna().to_numpy() if len(series) else np.zeros(0, dtype=bool)
        scalar = series.map(lambda v: isinstance(v, _SCALARS)).to_numpy(dtype=bool)
        bad = ~scalar & ~missing
        if bad.any():
            pos = int(np.argmax(bad))
            value = series.iloc[pos]
            raise error_cls(
                f"attribute column holds a {type(value).__name__} ({str(value)[:40]!r}); attribute columns must "
                "hold text, numbers, booleans or dates — convert or drop this column",
                file=file,
                row=int(rows[pos]) if rows is not None else pos + 1,
                column=str(name),
            )
        kinds = sorted({type(v).__name__ for v in series[~missing]})
        where = f"{file}: " if file is not None else ""
        warnings.warn(
            f"{where}column {str(name)!r} mixes {' and '.join(kinds)} values: read as text",
            FashionRecoWarning,
            stacklevel=4,
        )
        frame[name] = series.map(_as_text).where(~missing, None).astype(object)
    return frame
