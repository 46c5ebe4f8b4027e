"""Private helpers shared by the table loaders of the data layer (catalogue, interactions, customers, retail).

Everything here is vectorised over columns; the only per-row work is done by pandas/numpy. Errors are raised as
the caller's :class:`~fashion_reco.errors.DataError` subclass and always name the file, the 1-based data row
(header excluded) and the column at fault.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fashion_reco.errors import DataError
from fashion_reco.ids import MISSING_ID, normalise_ids

__all__ = [
    "CsvTable",
    "clean_ids",
    "first_row",
    "parse_timestamps",
    "prepare_frame",
    "read_csv_table",
    "require_columns",
    "text_column",
]

_LINE_RE = re.compile(r"line (\d+)")
# a blank or whitespace-only line after the header, in any encoding read here (UTF-16 has NULs)
_BLANK_LINE = re.compile(rb"\n[ \t\r\x00]*\n|\n[ \t\r\x00]+$")
_OFFSET_RE = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"


class CsvTable:
    """A CSV file read as strings: ``frame`` (all cells ``str``, empty cell = ``""``), ``rows`` (1-based data row of
    each frame row; fully blank lines are dropped but keep the numbering), ``file`` and ``encoding``."""

    __slots__ = ("encoding", "file", "frame", "rows")

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray, file: Path, encoding: str) -> None:
        self.frame = frame
        self.rows = rows
        self.file = file
        self.encoding = encoding


def _decode(
    raw: bytes, file: Path, encodings: Sequence[str], error_cls: type[DataError]
) -> tuple[str, str, str]:
    """``(text, encoding as named by the caller, codec used)`` for the first encoding that decodes ``raw``."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not any("16" in e for e in encodings):
        raise error_cls(
            "file is UTF-16 text (byte-order mark found); re-save it as UTF-8 or pass encoding='utf-16'",
            file=file,
        )
    first_error: UnicodeDecodeError | None = None
    for encoding in encodings:
        try:
            codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        except LookupError:
            raise error_cls(f"unknown text encoding {encoding!r}", file=file) from None
        try:
            return raw.decode(codec), encoding, codec
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    assert first_error is not None  # noqa: S101 - encodings is never empty
    line = raw.count(b"\n", 0, first_error.start) + 1
    bad = raw[first_error.start : first_error.start + 1]
    hint = (
        "re-save it as UTF-8, or pass encoding='cp1252' if it came from Excel on Windows (Windows-1252), "
        "or the file's real encoding"
    )
    raise error_cls(
        f"not valid {encodings[0]} text (byte 0x{bad.hex()} at offset {first_error.start}"
        f"{', in the header' if line == 1 else ''}); {hint}",
        file=file,
        row=line - 1 if line > 1 else None,
    )


def read_csv_table(
    path: str | os.PathLike[str],
    *,
    error_cls: type[DataError],
    encoding: str | Sequence[str] = "utf-8",
) -> CsvTable:
    """Read a CSV file as a table of strings, with errors that name the file and the row.

    ``encoding`` may be a list tried in order (e.g. ``("utf-8", "latin-1")``). UTF-8 files may start with a BOM.
    Raises ``error_cls`` for a missing/unreadable file, an empty file, undecodable bytes, NUL bytes, duplicate
    column names and malformed rows (more fields than the header).
    """
    file = Path(path)
    encodings = [encoding] if isinstance(encoding, str) else list(encoding)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise error_cls("file not found", file=file) from None
    except IsADirectoryError:
        raise error_cls("is a directory, expected a CSV file", file=file) from None
    except OSError as exc:
        raise error_cls(f"cannot read file: {exc.strerror or exc}", file=file) from None
    if not raw.strip():
        raise error_cls("empty file: expected a header row naming the columns", file=file)
    text, used, codec = _decode(raw, file, encodings, error_cls)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise error_cls(
            "contains NUL characters: a binary file, or UTF-16 text read as UTF-8 (pass encoding='utf-16')",
            file=file,
            row=line - 1 if line > 1 else None,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grid = pd.read_csv(  # from the bytes: pandas decodes in C, far faster than from a str buffer
                io.BytesIO(raw),
                encoding=codec,
                header=None,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
            )
    except pd.errors.EmptyDataError:
        raise error_cls("empty file: expected a header row naming the columns", file=file) from None
    except (pd.errors.ParserError, ValueError, csv.Error, OverflowError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        match = _LINE_RE.search(message)
        row = int(match.group(1)) - 1 if match else None
        raise error_cls(f"malformed CSV: {message}", file=file, row=row if row else None) from None
    if grid.isna().to_numpy().any():  # short rows
        grid = grid.fillna("")
    header = [str(name).strip() for name in grid.iloc[0].tolist()]
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise error_cls("duplicate column name in the header", file=file, column=name)
        seen.add(name)
    header = [name or f"unnamed_{i}" for i, name in enumerate(header)]
    body = grid.iloc[1:].reset_index(drop=True)
    body.columns = header
    rows = np.arange(1, len(body) + 1, dtype=np.int64)
    if len(body) and (len(header) == 1 or _BLANK_LINE.search(raw)):
        # a blank or whitespace-only line: every cell empty except, perhaps, whitespace in the first
        blank = body.iloc[:, 1:].eq("").all(axis=1).to_numpy()
        if blank.any():
            blank[blank] = (body.iloc[:, 0][blank].str.strip() == "").to_numpy()
        if blank.any():
            body = body.loc[~blank].reset_index(drop=True)
            rows = rows[~blank]
    return CsvTable(body, rows, file, used)


def require_columns(
    frame: pd.DataFrame,
    required: Iterable[str],
    *,
    error_cls: type[DataError],
    file: object = None,
    hint: str = "",
) -> None:
    """Raise ``error_cls`` naming the first required column that is missing, and listing the columns found."""
    missing = [name for name in required if name not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise error_cls(
            f"missing required column (found: {found}){'; ' + hint if hint else ''}",
            file=file,
            column=missing[0],
        )


def prepare_frame(
    df: pd.DataFrame,
    rows: np.ndarray | None,
    required: Iterable[str],
    *,
    error_cls: type[DataError],
    file: object = None,
    hint: str = "",
    known: Iterable[str] = (),
) -> tuple[pd.DataFrame, np.ndarray]:
    """A copy of ``df`` with stripped, unique column names and a fresh index, plus the 1-based data-row number of
    each row (``rows``, or positions when None); raises ``error_cls`` for a duplicate or missing column.

    A header that spells a required or ``known`` column another way (``Customer_ID``, ``Customer ID``,
    ``customer-id``) takes its name; two headers that both spell it are refused as ambiguous.
    """
    frame = df.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.columns.duplicated().any():
        raise error_cls(
            "duplicate column name", file=file, column=frame.columns[frame.columns.duplicated()][0]
        )
    required = list(required)
    frame = frame.rename(
        columns=_canonical_headers(list(frame.columns), [*required, *known], error_cls, file)
    )
    frame = frame.reset_index(drop=True)
    numbers = (
        np.arange(1, len(frame) + 1, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    )
    require_columns(frame, required, error_cls=error_cls, file=file, hint=hint)
    return frame, numbers


def _header_key(name: str) -> str:
    """A header's spelling-free key: lower case, runs of spaces / hyphens / dots / underscores as one ``_``."""
    return re.sub(r"[\s\-._]+", "_", name.strip().lower()).strip("_")


def _canonical_headers(
    headers: list[str], names: Iterable[str], error_cls: type[DataError], file: object
) -> dict[str, str]:
    """``{header: name}`` for each canonical ``name`` absent as such but spelled another way by one header."""
    present = set(headers)
    renames: dict[str, str] = {}
    for name in names:
        if name in present:
            continue
        spelled = [h for h in headers if _header_key(h) == name and h not in renames]
        if len(spelled) > 1:
            raise error_cls(
                f"ambiguous columns {', '.join(map(repr, spelled))}: each could be {name!r}; rename one",
                file=file,
                column=spelled[1],
            )
        if spelled:
            renames[spelled[0]] = name
    return renames


def text_column(series: pd.Series) -> pd.Series:
    """A column as stripped ``str`` with ``""`` for missing values."""
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def clean_ids(
    series: pd.Series,
    rows: np.ndarray,
    *,
    error_cls: type[DataError],
    file: object,
    column: str,
    unique: bool,
) -> pd.Series:
    """:func:`~fashion_reco.ids.normalise_ids`, raising ``error_cls`` at the first missing id and, with ``unique``,
    the first repeat (naming the row where it was first seen)."""
    what = column.replace("_", " ")
    ids = normalise_ids(series)
    row = first_row(ids == MISSING_ID, rows)
    if row is not None:
        raise error_cls(
            f"empty {what} (blank, NaN, None and null are missing values)", file=file, row=row, column=column
        )
    if unique:
        dup = ids.duplicated(keep="first").to_numpy()
        if dup.any():
            pos = int(np.argmax(dup))
            first = int(np.argmax((ids == ids.iloc[pos]).to_numpy()))
            raise error_cls(
                f"duplicate {what} {ids.iloc[pos]!r} (first seen in row {int(rows[first])})",
                file=file,
                row=int(rows[pos]),
                column=column,
            )
    return ids


def first_row(mask: np.ndarray | pd.Series, rows: np.ndarray) -> int | None:
    """The data-row number of the first ``True`` in ``mask`` (None when there is none)."""
    values = np.asarray(mask, dtype=bool)
    if not values.any():
        return None
    return int(rows[int(np.argmax(values))])


_TS_MIN, _TS_MAX = pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s")
_OFFSET_TAIL = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def bad_timestamp_reason(value: object) -> str:
    """Why a value :func:`parse_timestamps` marked bad was refused: out of pandas' range, or not a date at all."""
    text = str(value).strip()
    candidate = _OFFSET_TAIL.sub("", text.replace(" ", "T", 1))
    try:
        stamp = np.datetime64(candidate, "s")
    except ValueError:
        stamp = None
    if stamp is None:
        try:
            seconds = float(text)
        except ValueError:
            return "unparseable timestamp"
        if not np.isfinite(seconds):
            return "unparseable timestamp"
        stamp = np.datetime64(int(seconds), "s") if abs(seconds) < 2**62 else None
    if stamp is not None and not np.isnat(stamp):
        return f"timestamp outside the supported range ({_TS_MIN.date()} .. {_TS_MAX.date()}):"
    return "unparseable timestamp"


def parse_timestamps(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse a column into tz-naive UTC ``datetime64[ns]``; returns ``(timestamps, bad)`` where ``bad`` marks
    non-empty values that could not be parsed. Empty values are ``NaT`` and not ``bad``.

    Accepted: datetime columns (tz-aware ones are converted to UTC), ISO 8601 text with or without offset (naive
    text is taken as UTC), other common date spellings (parsed element-wise as a fallback), and numbers or
    numeric text as Unix epoch seconds.
    """
    series = pd.Series(values, copy=False)
    index = series.index
    try:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            parsed = series.dt.tz_convert("UTC").dt.tz_localize(None)
            return parsed.astype("datetime64[ns]"), np.zeros(len(series), dtype=bool)
        if pd.api.types.is_datetime64_dtype(series.dtype):
            return series.astype("datetime64[ns]"), np.zeros(len(series), dtype=bool)
    except (ValueError, OverflowError, TypeError):
        pass
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        numbers = pd.to_numeric(series, errors="coerce").astype(np.float64)
        parsed = _from_epoch(numbers)
        bad = (parsed.isna() & numbers.notna()).to_numpy()
        return parsed, bad
    text = series.astype(object).where(series.notna(), "")
    if pd.api.types.infer_dtype(text, skipna=False) not in ("string", "empty"):
        text = text.astype(str)
    parsed = pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    empty = (text == "").to_numpy()
    todo = ~empty
    # numeric text is Unix seconds; a column whose first values are not numbers skips this pass (to_numeric is
    # slow on text that is not numeric) and only its leftovers are checked below
    sample = todo & (np.cumsum(todo) <= 1000)
    if _epoch_seconds(text, sample, parsed).any():
        todo &= ~_epoch_seconds(text, todo, parsed)
    if todo.any():
        head = text[todo][:1000]
        fast = None if head.str.contains(_OFFSET_RE).any() else _iso_without_offsets(text[todo])
        if fast is not None:
            parsed[todo] = fast
        retry = todo & parsed.isna().to_numpy()
        if retry.any():
            retry &= ~_epoch_seconds(text, retry, parsed)
        if retry.any():
            stripped = text[retry].str.strip()
            empty[retry] = (stripped == "").to_numpy()
            # pandas' ISO 8601 parser lets one element's UTC offset leak into the naive elements after it
            # ("…T12:00+02:00" then "…09:00" gives 07:00), so text with and without offsets is parsed apart
            aware = stripped.str.contains(_OFFSET_RE).to_numpy()
            for group in (aware, ~aware):
                if group.any():
                    parsed[stripped.index[group]] = _to_datetime(stripped[group], "ISO8601")
            again = retry & ~empty & parsed.isna().to_numpy()
            if again.any():
                parsed[again] = _to_datetime(text[again].str.strip(), "mixed")
    bad = ~empty & parsed.isna().to_numpy()
    return parsed, bad


def _epoch_seconds(text: pd.Series, where: np.ndarray, parsed: pd.Series) -> np.ndarray:
    """Among the positions ``where``, mark the numeric values of ``text`` and write them into ``parsed`` as Unix
    seconds; returns the full-length mask of those positions."""
    numeric = np.zeros(len(text), dtype=bool)
    if where.any():
        numbers = pd.to_numeric(text[where], errors="coerce")
        found = numbers.notna().to_numpy()
        numeric[np.flatnonzero(where)[found]] = True
        if found.any():
            parsed[numeric] = _from_epoch(numbers[found].astype(np.float64)).to_numpy()
    return numeric


def _iso_without_offsets(text: pd.Series) -> pd.Series | None:
    """Fast path: ISO 8601 text none of which carries a UTC offset, parsed in one call. None when any element has
    an offset (pandas then returns a tz-aware column or warns about mixed offsets): the caller parses those apart."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            result = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (Warning, ValueError, OverflowError, TypeError):
            return None
    if not pd.api.types.is_datetime64_dtype(result.dtype) or isinstance(result.dtype, pd.DatetimeTZDtype):
        return None
    return result.astype("datetime64[ns]")


def _from_epoch(seconds: pd.Series) -> pd.Series:
    finite = np.isfinite(seconds.to_numpy()) & (np.abs(seconds.to_numpy()) < 9.2e9)
    out = pd.Series(pd.NaT, index=seconds.index, dtype="datetime64[ns]")
    if finite.any():
        out[finite] = pd.to_datetime(seconds[finite], unit="s", errors="coerce")
    return out


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format=fmt)
        except (ValueError, OverflowError, TypeError):
            if fmt != "mixed":
                return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
            parsed = text.map(_one_timestamp)
            parsed = pd.to_datetime(parsed, utc=True, errors="coerce")
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")


def _one_timestamp(value: str) -> pd.Timestamp | None:
    try:
        return pd.to_datetime(value, utc=True)
    except (ValueError, OverflowError, TypeError):
        return None
