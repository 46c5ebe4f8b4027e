"""Customer profiles: one row per customer, keyed by ``customer_id``.

Optional columns: ``age_band`` (text such as ``25-34``), ``gender`` (text), ``preferred_labels`` (catalogue labels
separated by ``;``, e.g. ``dress;skirt``), ``signup_date`` (parsed like interaction timestamps to tz-naive UTC).
Any other columns are kept (a column mixing numbers and text is read as text, with a warning). Problems raise :class:`~fashion_reco.errors.InteractionsError` naming file, row and column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.data._attributes import storable_attributes
from fashion_reco.data._tabular import (
    bad_timestamp_reason,
    clean_ids,
    first_row,
    parse_timestamps,
    prepare_frame,
    read_csv_table,
    text_column,
)
from fashion_reco.errors import InteractionsError
from fashion_reco.ids import Ids, as_id_array

__all__ = ["PROFILE_COLUMNS", "Customers"]

AGE_BAND, GENDER, PREFERRED_LABELS, SIGNUP_DATE = "age_band", "gender", "preferred_labels", "signup_date"
PROFILE_COLUMNS = (AGE_BAND, GENDER, PREFERRED_LABELS, SIGNUP_DATE)
_FIRST = (Columns.CUSTOMER_ID, *PROFILE_COLUMNS)


class Customers:
    """A validated customer table. ``Customers(df)`` is the same as :meth:`from_frame`; methods return new objects."""

    __slots__ = ("_frame", "_source")

    def __init__(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise InteractionsError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        self._frame = _validate(frame, None, None)
        self._source: Path | None = None

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Customers:
        """Validate an in-memory customer table (rows in errors are 1-based positions in ``df``)."""
        return cls(df)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], *, encoding: str = "utf-8") -> Customers:
        """Read and validate a customer CSV; errors name file, data row and column."""
        table = read_csv_table(path, error_cls=InteractionsError, encoding=encoding)
        obj = cls.__new__(cls)
        obj._frame = _validate(table.frame, table.rows, table.file)
        obj._source = table.file
        return obj

    @property
    def frame(self) -> pd.DataFrame:
        """A copy of the validated table."""
        return self._frame.copy()

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        extra = [c for c in PROFILE_COLUMNS if c in self._frame]
        return f"Customers({len(self)} customers{', ' + ', '.join(extra) if extra else ''})"

    @property
    def customer_ids(self) -> np.ndarray:
        """Customer ids in table order (object array of ``str``)."""
        return self._frame[Columns.CUSTOMER_ID].to_numpy(dtype=object, copy=True)

    def preferred_labels(self) -> pd.Series:
        """Each customer's preferred labels as a list (empty when unknown), indexed by ``customer_id``."""
        if PREFERRED_LABELS not in self._frame:
            values = pd.Series([[] for _ in range(len(self))], dtype=object)
        else:
            text = self._frame[PREFERRED_LABELS].fillna("")
            values = text.str.split(";").map(lambda parts: [p.strip() for p in parts if p.strip()])
        return pd.Series(values.to_numpy(), index=pd.Index(self.customer_ids, name=Columns.CUSTOMER_ID))

    def subset(self, customer_ids: Ids) -> Customers:
        """These customers, in the order given; unknown ids raise :class:`InteractionsError`."""
        wanted = as_id_array(customer_ids)
        positions = pd.Index(self._frame[Columns.CUSTOMER_ID]).get_indexer(wanted)
        if (positions < 0).any():
            raise InteractionsError(
                f"{int((positions < 0).sum())} customer id(s) not in the table",
                customer_id=str(wanted[int(np.argmax(positions < 0))]),
                file=self._source,
            )
        obj = Customers.__new__(Customers)
        obj._frame = self._frame.iloc[positions].reset_index(drop=True)
        obj._source = self._source
        return obj


def _validate(df: pd.DataFrame, rows: np.ndarray | None, file: Path | None) -> pd.DataFrame:
    frame, rows = prepare_frame(
        df, rows, [Columns.CUSTOMER_ID], error_cls=InteractionsError, file=file, known=PROFILE_COLUMNS
    )
    if not len(frame):
        raise InteractionsError("no customers (the table has a header but no rows)", file=file)
    ids = clean_ids(
        frame[Columns.CUSTOMER_ID],
        rows,
        error_cls=InteractionsError,
        file=file,
        column=Columns.CUSTOMER_ID,
        unique=True,
    )
    frame[Columns.CUSTOMER_ID] = ids

    for column in (AGE_BAND, GENDER, PREFERRED_LABELS):
        if column in frame:
            text = text_column(frame[column])
            if column == PREFERRED_LABELS:
                text = text.str.replace(r"\s*;\s*", ";", regex=True).str.strip(";")
            frame[column] = text.where(text != "", None)

    if SIGNUP_DATE in frame:
        parsed, bad = parse_timestamps(frame[SIGNUP_DATE])
        row = first_row(bad, rows)
        if row is not None:
            raise InteractionsError(
                f"{bad_timestamp_reason(frame[SIGNUP_DATE].iloc[int(np.argmax(bad))]).replace('timestamp', 'date')} "
                f"{frame[SIGNUP_DATE].iloc[int(np.argmax(bad))]!r} (expected ISO 8601, e.g. "
                "2024-05-01)",
                file=file,
                row=row,
                column=SIGNUP_DATE,
            )
        frame[SIGNUP_DATE] = parsed

    others = [c for c in frame.columns if c not in _FIRST]
    frame = storable_attributes(frame, others, rows=rows, file=file, error_cls=InteractionsError)
    ordered = [c for c in _FIRST if c in frame] + others
    return frame[ordered]
