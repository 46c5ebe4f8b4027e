"""Customer–item events (views, add-to-carts, purchases): validation, time splits and sparse matrices.

:class:`Interactions` wraps a validated DataFrame with columns ``customer_id`` (str), ``item_id`` (str),
``event_type`` (``view`` / ``add_to_cart`` / ``purchase``), ``timestamp`` (tz-naive UTC ``datetime64[ns]``),
optional ``quantity`` (number) and any extra columns, sorted by timestamp (stable). :class:`IdMapping` maps ids to
matrix rows/columns in the style of LightFM's ``Dataset`` and builds weighted, recency-decayed
``scipy.sparse.csr_matrix`` interaction matrices.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from fashion_reco.columns import Columns, EventTypes
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
from fashion_reco.errors import FashionRecoWarning, InteractionsError
from fashion_reco.ids import MISSING_ID, Ids, as_id_array

if TYPE_CHECKING:
    import scipy.sparse

    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers

#: A point in time as callers may give it: ISO text, a datetime/date, a pandas Timestamp or a numpy datetime64.
TimestampLike: TypeAlias = str | datetime | date | pd.Timestamp | np.datetime64

__all__ = ["REQUIRED_COLUMNS", "IdMapping", "Interactions"]

REQUIRED_COLUMNS = (Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP)
QUANTITY = "quantity"
_FIRST = (*REQUIRED_COLUMNS, QUANTITY)


class Interactions:
    """A validated, time-sorted event log. ``Interactions(df)`` is the same as :meth:`from_frame`.

    Instances are treated as immutable: every method returns a new object. :attr:`frame` is a shallow copy.
    """

    __slots__ = ("_frame", "_rows", "_source")

    def __init__(
        self,
        frame: pd.DataFrame,
        event_type_mapping: Mapping[str, str] | None = None,
        *,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise InteractionsError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        data = frame.rename(columns=dict(columns)) if columns else frame
        validated, rows = _validate(data, None, None, event_type_mapping)
        self._frame, self._rows = validated, rows
        self._source: Path | None = None

    @classmethod
    def _wrap(cls, frame: pd.DataFrame, rows: np.ndarray, source: Path | None) -> Interactions:
        obj = cls.__new__(cls)
        obj._frame, obj._rows, obj._source = frame, rows, source
        return obj

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        event_type_mapping: Mapping[str, str] | None = None,
        *,
        columns: Mapping[str, str] | None = None,
    ) -> Interactions:
        """Validate an in-memory event table.

        ``event_type_mapping`` maps the log's own event names onto ``view`` / ``add_to_cart`` / ``purchase``
        (e.g. ``{"pageview": "view", "transaction": "purchase"}``); ``columns`` renames columns first
        (e.g. ``{"user_id": "customer_id"}``). Rows in errors are 1-based positions in ``df``.
        """
        return cls(df, event_type_mapping, columns=columns)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        event_type_mapping: Mapping[str, str] | None = None,
        *,
        columns: Mapping[str, str] | None = None,
        encoding: str = "utf-8",
    ) -> Interactions:
        """Read and validate a CSV event log (see :meth:`from_frame`); errors name file, data row and column."""
        table = read_csv_table(path, error_cls=InteractionsError, encoding=encoding)
        data = table.frame.rename(columns=dict(columns)) if columns else table.frame
        frame, rows = _validate(data, table.rows, table.file, event_type_mapping)
        return cls._wrap(frame, rows, table.file)

    # ------------------------------------------------------------------ views
    @property
    def source(self) -> Path | None:
        """The file this log was read from (None when built from a frame), for messages that name it."""
        return self._source

    @property
    def frame(self) -> pd.DataFrame:
        """The validated events (a shallow copy: add columns freely, do not edit values in place)."""
        return self._frame.copy(deep=False)

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        if not len(self):
            return "Interactions(0 events)"
        ts = self._frame[Columns.TIMESTAMP]
        return (
            f"Interactions({len(self)} events, {self._frame[Columns.CUSTOMER_ID].nunique()} customers, "
            f"{self._frame[Columns.ITEM_ID].nunique()} items, {ts.iloc[0]} .. {ts.iloc[-1]})"
        )

    @property
    def customers(self) -> np.ndarray:
        """Distinct customer ids, sorted."""
        return np.sort(self._frame[Columns.CUSTOMER_ID].unique()).astype(object)

    @property
    def items(self) -> np.ndarray:
        """Distinct item ids, sorted."""
        return np.sort(self._frame[Columns.ITEM_ID].unique()).astype(object)

    @property
    def start(self) -> pd.Timestamp | None:
        return self._frame[Columns.TIMESTAMP].iloc[0] if len(self) else None

    @property
    def end(self) -> pd.Timestamp | None:
        return self._frame[Columns.TIMESTAMP].iloc[-1] if len(self) else None

    def filter(self, mask: np.ndarray | pd.Series) -> Interactions:
        """The events where the boolean ``mask`` (aligned with :attr:`frame`) is true."""
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != (len(self),):
            raise InteractionsError(f"mask has shape {keep.shape}, expected ({len(self)},)")
        return self._wrap(self._frame.loc[keep].reset_index(drop=True), self._rows[keep], self._source)

    def before(self, ts: TimestampLike) -> Interactions:
        """Events strictly before ``ts`` (anything ``pd.Timestamp`` accepts; tz-aware values are converted to UTC)."""
        return self.filter((self._frame[Columns.TIMESTAMP] < _as_naive_utc(ts)).to_numpy())

    def after(self, ts: TimestampLike) -> Interactions:
        """Events at or after ``ts``."""
        return self.filter((self._frame[Columns.TIMESTAMP] >= _as_naive_utc(ts)).to_numpy())

    def exclude_future(self, now: TimestampLike | None = None) -> tuple[Interactions, int]:
        """Drop events dated after ``now`` (default: the wall clock, UTC), with a warning that counts them.

        An event from the future would otherwise become the model's "now" and age every real event away.
        Returns the remaining log and the number of events removed.
        """
        reference = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else _as_naive_utc(now)
        future = (self._frame[Columns.TIMESTAMP] > reference).to_numpy()
        count = int(future.sum())
        if not count:
            return self, 0
        latest = self._frame[Columns.TIMESTAMP].max()
        where = f"{self._source}: " if self._source is not None else ""
        if count == len(self):
            raise InteractionsError(
                f"all {count} events are dated after now ({reference:%Y-%m-%d %H:%M:%S} UTC; latest "
                f"{latest:%Y-%m-%d %H:%M:%S}); check the log's clock or time zone, or pass now=",
                file=self._source,
                column=Columns.TIMESTAMP,
            )
        warnings.warn(
            f"{where}{count} of {len(self)} event(s) are dated after now ({reference:%Y-%m-%d %H:%M:%S} UTC; latest "
            f"{latest:%Y-%m-%d %H:%M:%S}) and were left out; check the log's clock or time zone, or pass now=",
            FashionRecoWarning,
            stacklevel=2,
        )
        return self.filter(~future), count

    def split_by_time(self, days: float) -> tuple[Interactions, Interactions]:
        """``(train, test)``: test holds the last ``days`` days of the log (``timestamp >= end - days``), train
        everything before. ``days`` may be fractional."""
        if not np.isfinite(days) or days <= 0:
            raise InteractionsError(f"days must be a positive number, got {days!r}", column=Columns.TIMESTAMP)
        if not len(self):
            raise InteractionsError("cannot split an empty event log", file=self._source)
        cutoff = self._frame[Columns.TIMESTAMP].iloc[-1] - pd.Timedelta(days=float(days))
        return self.before(cutoff), self.after(cutoff)

    def check_known(
        self,
        catalogue_ids: Catalogue | Ids | None = None,
        customer_ids: Customers | Ids | None = None,
        *,
        on_unknown: Literal["raise", "drop"] = "raise",
    ) -> Interactions:
        """Check every ``item_id`` against the catalogue (a :class:`~fashion_reco.data.catalogue.Catalogue` or its
        ids) and every ``customer_id`` against the known customers (a ``Customers`` table or ids).

        With ``on_unknown="raise"`` an unknown id raises :class:`InteractionsError` naming the first offending row,
        column and id, and how many rows are affected; with ``"drop"`` those events are removed.
        """
        if on_unknown not in ("raise", "drop"):
            raise InteractionsError(f"on_unknown must be 'raise' or 'drop', got {on_unknown!r}")
        keep = np.ones(len(self), dtype=bool)
        for column, known in ((Columns.ITEM_ID, catalogue_ids), (Columns.CUSTOMER_ID, customer_ids)):
            if known is None:
                continue
            ids = _ids_of(known, column)
            unknown = ~self._frame[column].isin(ids).to_numpy()
            if unknown.any() and on_unknown == "raise":
                pos = int(np.argmax(unknown))
                what = "catalogue" if column == Columns.ITEM_ID else "customer table"
                raise InteractionsError(
                    f"{'item' if column == Columns.ITEM_ID else 'customer'} not in the {what} "
                    f"({int(unknown.sum())} of {len(self)} events affected; pass on_unknown='drop' to remove them)",
                    file=self._source,
                    row=int(self._rows[pos]),
                    column=column,
                    value=self._frame[column].iloc[pos],
                )
            keep &= ~unknown
        return self if keep.all() else self.filter(keep)


# ---------------------------------------------------------------------- id mapping


class IdMapping:
    """Customer and item ids ↔ contiguous matrix indices (LightFM ``Dataset`` style).

    Order is first appearance, so an item mapping fitted on ``catalogue.item_ids`` lines up with the catalogue's
    rows (and its embeddings). Lookups are vectorised with ``pandas.Index.get_indexer``.
    """

    __slots__ = ("_customers", "_items")

    def __init__(self, customer_ids: Ids = (), item_ids: Ids = ()) -> None:
        self._customers = _unique_index(customer_ids)
        self._items = _unique_index(item_ids)

    @classmethod
    def fit(cls, customer_ids: Ids, item_ids: Ids) -> IdMapping:
        """Map the distinct ids (first appearance order; duplicates ignored)."""
        return cls(customer_ids, item_ids)

    @classmethod
    def from_interactions(cls, interactions: Interactions, item_ids: Ids | None = None) -> IdMapping:
        """Customers from the log; items from ``item_ids`` (e.g. the catalogue) when given, else from the log."""
        frame = interactions._frame
        return cls(frame[Columns.CUSTOMER_ID], frame[Columns.ITEM_ID] if item_ids is None else item_ids)

    @property
    def customer_ids(self) -> np.ndarray:
        return self._customers.to_numpy(dtype=object)

    @property
    def item_ids(self) -> np.ndarray:
        return self._items.to_numpy(dtype=object)

    @property
    def n_customers(self) -> int:
        return len(self._customers)

    @property
    def n_items(self) -> int:
        return len(self._items)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_customers, self.n_items

    def customer_index(self, ids: Ids, *, on_unknown: Literal["raise", "minus_one"] = "raise") -> np.ndarray:
        """Row index of each customer id (int64). Unknown ids raise :class:`InteractionsError` naming the id, or
        map to ``-1`` with ``on_unknown="minus_one"``."""
        return _lookup(self._customers, ids, "customer", on_unknown)

    def item_index(self, ids: Ids, *, on_unknown: Literal["raise", "minus_one"] = "raise") -> np.ndarray:
        """Column index of each item id (int64); see :meth:`customer_index`."""
        return _lookup(self._items, ids, "item", on_unknown)

    def interaction_matrix(
        self,
        interactions: Interactions,
        event_weights: Mapping[str, float] | None = None,
        half_life_days: float | None = None,
        as_of: TimestampLike | None = None,
        *,
        on_unknown: Literal["raise", "drop"] = "raise",
        dtype: npt.DTypeLike = np.float32,
    ) -> scipy.sparse.csr_matrix:
        """Customers × items ``csr_matrix`` of summed event weights.

        Each event contributes ``event_weights[event_type]`` (default 1.0 for every type; a type present in the
        log but missing from the mapping raises) times, with ``half_life_days``, ``0.5 ** (age_days / half_life)``
        where ``age = as_of - timestamp`` (``as_of`` defaults to the log's last timestamp; events after ``as_of``
        count as age 0). Repeated customer–item pairs are summed. Unknown ids raise, or are dropped with
        ``on_unknown="drop"``.
        """
        import scipy.sparse

        frame = interactions._frame
        if on_unknown not in ("raise", "drop"):
            raise InteractionsError(f"on_unknown must be 'raise' or 'drop', got {on_unknown!r}")
        mode = "raise" if on_unknown == "raise" else "minus_one"
        # the log's ids are already normalised: look them up as they are
        rows = _positions(
            self._customers, frame[Columns.CUSTOMER_ID].to_numpy(dtype=object), "customer", mode
        )
        cols = _positions(self._items, frame[Columns.ITEM_ID].to_numpy(dtype=object), "item", mode)
        events = frame[Columns.EVENT_TYPE]
        if event_weights is None:
            weights = np.ones(len(frame), dtype=np.float64)
        else:
            table = {str(k): float(v) for k, v in event_weights.items()}
            missing = sorted(set(events.unique()) - set(table))
            if missing:
                raise InteractionsError(
                    f"no weight for event type {missing[0]!r} (weights given for: {', '.join(sorted(table))})",
                    key=missing[0],
                )
            weights = events.map(table).to_numpy(dtype=np.float64)
        if half_life_days is not None:
            if not half_life_days > 0:
                raise InteractionsError(f"half_life_days must be positive, got {half_life_days!r}")
            if len(frame):
                reference = _as_naive_utc(as_of) if as_of is not None else frame[Columns.TIMESTAMP].iloc[-1]
                age = (reference - frame[Columns.TIMESTAMP]).to_numpy(dtype="timedelta64[ns]")
                age_days = np.clip(age.astype(np.float64) / 86_400e9, 0.0, None)
                weights = weights * np.exp2(-age_days / float(half_life_days))
        keep = (rows >= 0) & (cols >= 0)
        matrix = scipy.sparse.coo_matrix(
            (weights[keep].astype(dtype), (rows[keep], cols[keep])), shape=self.shape, dtype=dtype
        ).tocsr()
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix


# ---------------------------------------------------------------------- helpers


def _validate(
    df: pd.DataFrame,
    rows: np.ndarray | None,
    file: Path | None,
    mapping: Mapping[str, str] | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    frame, rows = prepare_frame(
        df, rows, REQUIRED_COLUMNS, error_cls=InteractionsError, file=file, known=(QUANTITY,)
    )
    if not len(frame):
        raise InteractionsError("no events (the table has a header but no rows)", file=file)

    for column in (Columns.CUSTOMER_ID, Columns.ITEM_ID):
        frame[column] = clean_ids(
            frame[column], rows, error_cls=InteractionsError, file=file, column=column, unique=False
        )

    frame[Columns.EVENT_TYPE] = _event_types(frame[Columns.EVENT_TYPE], rows, file, mapping)

    timestamps, bad = parse_timestamps(frame[Columns.TIMESTAMP])
    missing = timestamps.isna().to_numpy() & ~bad
    for mask, reason in ((bad, "unparseable timestamp"), (missing, "empty timestamp")):
        row = first_row(mask, rows)
        if row is not None:
            pos = int(np.argmax(mask))
            value = frame[Columns.TIMESTAMP].iloc[pos]
            reason = bad_timestamp_reason(value) if mask is bad else reason
            raise InteractionsError(
                f"{reason} {value!r} ({int(mask.sum())} such rows; expected ISO 8601 "
                "like 2024-05-01 13:45:00, optionally with a UTC offset, or Unix seconds)",
                file=file,
                row=row,
                column=Columns.TIMESTAMP,
            )
    frame[Columns.TIMESTAMP] = timestamps

    if QUANTITY in frame:
        raw = frame[QUANTITY]
        text = text_column(raw)
        numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad_quantity = ((text != "") & numbers.isna()).to_numpy()
        row = first_row(bad_quantity, rows)
        if row is not None:
            raise InteractionsError(
                f"not a number: {raw.iloc[int(np.argmax(bad_quantity))]!r}",
                file=file,
                row=row,
                column=QUANTITY,
            )
        infinite = np.isinf(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
        row = first_row(infinite, rows)
        if row is not None:
            raise InteractionsError(
                f"not a finite number: {raw.iloc[int(np.argmax(infinite))]!r}",
                file=file,
                row=row,
                column=QUANTITY,
            )
        frame[QUANTITY] = numbers.astype(np.float64) if numbers.isna().any() else numbers

    extras = [c for c in frame.columns if c not in _FIRST]
    frame = storable_attributes(frame, extras, rows=rows, file=file, error_cls=InteractionsError)
    order = np.argsort(frame[Columns.TIMESTAMP].to_numpy(), kind="stable")
    ordered = [c for c in _FIRST if c in frame] + [c for c in frame.columns if c not in _FIRST]
    return frame.iloc[order][ordered].reset_index(drop=True), rows[order]


def _event_types(
    values: pd.Series, rows: np.ndarray, file: Path | None, mapping: Mapping[str, str] | None
) -> pd.Series:
    """Canonical event types; the spelling work is done once per distinct value (``pandas.factorize``)."""
    canonical = set(EventTypes.ALL)
    table: dict[str, str] = {}
    if mapping:
        table = {str(k).strip(): str(v).strip().lower() for k, v in mapping.items()}
        wrong = sorted(k for k, v in table.items() if v not in canonical)
        if wrong:
            raise InteractionsError(
                f"event_type_mapping maps {wrong[0]!r} to {table[wrong[0]]!r}; targets must be one of "
                f"{', '.join(EventTypes.ALL)}",
                key=wrong[0],
            )
    codes, uniques = pd.factorize(values.astype(object).where(values.notna(), ""), use_na_sentinel=True)
    spelled = pd.Series(uniques, dtype=object).astype(str).str.strip()
    events = spelled.map(table).fillna(spelled).astype(str).str.lower() if table else spelled.str.lower()
    unknown_distinct = ~events.isin(canonical).to_numpy()
    unknown = np.append(unknown_distinct, True)[codes]
    row = first_row(unknown, rows)
    if row is not None:
        pos = int(np.argmax(unknown))
        others = sorted(set(spelled[unknown_distinct]))
        shown = ", ".join(repr(v) for v in others[:5]) + (" …" if len(others) > 5 else "")
        reason = (
            "empty event type"
            if spelled.iloc[codes[pos]] == ""
            else f"unknown event type {values.iloc[pos]!r}"
        )
        raise InteractionsError(
            f"{reason}; expected one of {', '.join(EventTypes.ALL)} — map the log's own names with "
            f"event_type_mapping={{name: 'view' | 'add_to_cart' | 'purchase'}} (values seen: {shown})",
            file=file,
            row=row,
            column=Columns.EVENT_TYPE,
        )
    return pd.Series(events.to_numpy(dtype=object)[codes], index=values.index, dtype=object)


def _as_naive_utc(ts: TimestampLike) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(ts)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InteractionsError(f"not a timestamp: {ts!r} ({exc})", column=Columns.TIMESTAMP) from None
    if stamp is pd.NaT:
        raise InteractionsError(f"not a timestamp: {ts!r}", column=Columns.TIMESTAMP)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def _ids_of(known: Catalogue | Customers | Ids, column: str) -> pd.Index:
    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers

    if isinstance(known, Catalogue):
        return pd.Index(as_id_array(known.item_ids if column == Columns.ITEM_ID else []))
    if isinstance(known, Customers):
        return pd.Index(as_id_array(known.customer_ids if column == Columns.CUSTOMER_ID else []))
    return pd.Index(as_id_array(known))


def _unique_index(ids: Ids) -> pd.Index:
    normalised = as_id_array(ids)
    if (normalised == MISSING_ID).any():
        raise InteractionsError(
            "missing id (blank, NaN, None or null) passed to IdMapping",
            row=int(np.argmax(normalised == MISSING_ID)) + 1,
        )
    return pd.Index(pd.unique(normalised), dtype=object)


def _lookup(index: pd.Index, ids: Ids, kind: str, on_unknown: str) -> np.ndarray:
    return _positions(index, as_id_array(ids), kind, on_unknown)


def _positions(index: pd.Index, wanted: np.ndarray, kind: str, on_unknown: str) -> np.ndarray:
    positions = index.get_indexer(wanted).astype(np.int64)
    if on_unknown not in ("raise", "minus_one"):
        raise InteractionsError(f"on_unknown must be 'raise' or 'minus_one', got {on_unknown!r}")
    if on_unknown == "raise" and (positions < 0).any():
        first = wanted[int(np.argmax(positions < 0))]
        raise InteractionsError(
            f"unknown {kind} id ({int((positions < 0).sum())} unknown of {len(positions)}; the mapping was "
            f"fitted on {len(index)} {kind}s)",
            key=str(first),
        )
    return positions
