"""The warehouse tables: declared schemas, conversions from the library's frames, and keyed (idempotent) writes.

Every table is ``<table_prefix><NAME>`` (``FASHION_RECO_CATALOGUE`` by default). Writes are upserts by key with
``Table.merge`` (``WHEN MATCHED THEN UPDATE`` / ``WHEN NOT MATCHED THEN INSERT``), which both a real account and the
local testing engine run, so re-running a deploy never duplicates a row. ``RECOMMENDATIONS`` is replaced per customer
(the customer's old list is deleted, then the new one inserted) so that a shorter new list leaves no stale ranks.

=================  =================================  ==========================================================
table              key                                columns
=================  =================================  ==========================================================
CATALOGUE          ITEM_ID                            LABEL, IMAGE_PATH, IMAGE_URI, SPLIT, PRICE, ATTRIBUTES (VARIANT)
IMAGES             ITEM_ID                            IMAGE (BINARY), IMAGE_SHA256 (optional: deploy stages photos)
PHOTOS             ITEM_ID                            RELATIVE_PATH (on the photo stage), IMAGE_SHA256, SIZE_BYTES
IMAGE_EMBEDDINGS   ITEM_ID                            EMBEDDING (VECTOR(FLOAT, 512); ARRAY locally), MODEL_SHA
CUSTOMERS          CUSTOMER_ID                        AGE_BAND, GENDER, PREFERRED_LABELS, SIGNUP_DATE, ATTRIBUTES
CUSTOMER_PROFILES  CUSTOMER_ID                        EMBEDDING (as IMAGE_EMBEDDINGS), N_EVENTS
CLICKSTREAM        EVENT_ID                           CUSTOMER_ID, ITEM_ID, EVENT_TYPE, TIMESTAMP, QUANTITY, PRICE
RECOMMENDATIONS    CUSTOMER_ID, RANK (per customer)   ITEM_ID, SCORE, REASON, GENERATED_AT
=================  =================================  ==========================================================

``PRICE`` (FLOAT, NULL when unknown) carries what the ranker's price features read: on CATALOGUE the catalogue's
numeric ``price`` column (a text one, e.g. ``"12.99 EUR"``, stays in ATTRIBUTES, as local fitting skips it), on
CLICKSTREAM each event's price as the library reads it — the log's ``price`` column, else its ``unit_price`` one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from snowflake.snowpark.types import (
    ArrayType,
    BinaryType,
    DateType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampTimeZone,
    TimestampType,
    VariantType,
    VectorType,
)

from fashion_reco.columns import Columns
from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.identifiers import validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import Session

    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.snowflake.backend import WarehouseBackend

__all__ = [
    "EMBEDDING_DIM",
    "TABLES",
    "TableSpec",
    "WriteResult",
    "catalogue_rows",
    "clickstream_rows",
    "customers_rows",
    "embedding_rows",
    "image_rows",
    "recommendation_rows",
    "table_name",
    "write_table",
]

EMBEDDING_DIM = 512


@dataclass(frozen=True)
class TableSpec:
    """A declared table: base name, Snowpark schema, merge keys and (optionally) the columns it is replaced by.

    ``added``: nullable columns declared after the table's first release; a write adds them to an older table.
    """

    base: str
    schema: StructType
    keys: tuple[str, ...]
    replace_by: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]


def _specs() -> dict[str, TableSpec]:
    def schema(*fields: tuple[str, Any, bool]) -> StructType:
        return StructType([StructField(name, datatype, nullable) for name, datatype, nullable in fields])

    text, ts = StringType(), TimestampType(TimestampTimeZone.NTZ)
    specs = [
        TableSpec(
            "CATALOGUE",
            schema(
                ("ITEM_ID", text, False),
                ("LABEL", text, True),
                ("IMAGE_PATH", text, True),
                ("IMAGE_URI", text, True),
                ("SPLIT", text, True),
                ("PRICE", DoubleType(), True),
                ("ATTRIBUTES", VariantType(), True),
            ),
            ("ITEM_ID",),
            added=("PRICE",),
        ),
        TableSpec(
            "IMAGES",
            schema(("ITEM_ID", text, False), ("IMAGE", BinaryType(), False), ("IMAGE_SHA256", text, False)),
            ("ITEM_ID",),
        ),
        TableSpec(
            "PHOTOS",
            schema(
                ("ITEM_ID", text, False),
                ("RELATIVE_PATH", text, False),
                ("IMAGE_SHA256", text, False),
                ("SIZE_BYTES", LongType(), True),
            ),
            ("ITEM_ID",),
        ),
        TableSpec(
            "IMAGE_EMBEDDINGS",
            schema(
                ("ITEM_ID", text, False),
                ("EMBEDDING", VectorType(float, EMBEDDING_DIM), False),
                ("MODEL_SHA", text, True),
            ),
            ("ITEM_ID",),
        ),
        TableSpec(
            "CUSTOMERS",
            schema(
                ("CUSTOMER_ID", text, False),
                ("AGE_BAND", text, True),
                ("GENDER", text, True),
                ("PREFERRED_LABELS", text, True),
                ("SIGNUP_DATE", DateType(), True),
                ("ATTRIBUTES", VariantType(), True),
            ),
            ("CUSTOMER_ID",),
        ),
        TableSpec(
            "CUSTOMER_PROFILES",
            schema(
                ("CUSTOMER_ID", text, False),
                ("EMBEDDING", VectorType(float, EMBEDDING_DIM), False),
                ("N_EVENTS", LongType(), True),
            ),
            ("CUSTOMER_ID",),
        ),
        TableSpec(
            "CLICKSTREAM",
            schema(
                ("EVENT_ID", text, False),
                ("CUSTOMER_ID", text, False),
                ("ITEM_ID", text, False),
                ("EVENT_TYPE", text, False),
                ("TIMESTAMP", ts, False),
                ("QUANTITY", DoubleType(), True),
                ("PRICE", DoubleType(), True),
            ),
            ("EVENT_ID",),
            added=("PRICE",),
        ),
        TableSpec(
            "RECOMMENDATIONS",
            schema(
                ("CUSTOMER_ID", text, False),
                ("ITEM_ID", text, False),
                ("SCORE", DoubleType(), False),
                ("RANK", LongType(), False),
                ("REASON", text, True),
                ("GENERATED_AT", ts, False),
            ),
            ("CUSTOMER_ID", "RANK"),
            replace_by=("CUSTOMER_ID",),
        ),
    ]
    return {spec.base: spec for spec in specs}


TABLES: dict[str, TableSpec] = _specs()


def table_name(base: str, prefix: str = "FASHION_RECO_") -> str:
    """``prefix + base`` validated as a table identifier (canonical upper case)."""
    return validate_identifier(f"{prefix}{base}", "table")


class WriteResult(BaseModel):
    """What one keyed write did."""

    table: str
    inserted: int
    updated: int
    deleted: int
    rows: int


# -- frame conversions ----------------------------------------------------------------------------------------------
def _frame(obj: Any, attribute: str) -> pd.DataFrame:
    frame = obj if isinstance(obj, pd.DataFrame) else getattr(obj, attribute, obj)
    if not isinstance(frame, pd.DataFrame):
        raise SnowflakeError(
            f"expected a DataFrame (or an object with .{attribute}), got {type(obj).__name__}"
        )
    return frame


def _clean(value: Any) -> Any:
    """A JSON/Snowflake-friendly Python scalar (NaN/NaT → None, numpy → Python)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _text(value: Any) -> str | None:
    value = _clean(value)
    return None if value is None else str(value)


def _attribute_column(column: pd.Series) -> np.ndarray:
    """One extra column as JSON-friendly Python values (``None`` where missing), converted column-wise."""
    missing = column.isna().to_numpy()
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column):
        values = np.asarray(column.astype(object), dtype=object)
        values[~missing] = [v.isoformat() for v in pd.DatetimeIndex(column[~missing]).to_pydatetime()]
    elif pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = np.empty(len(column), dtype=object)
        values[:] = column.astype(object).where(~missing, None).tolist()  # numpy scalars → Python
    else:
        cleaned = [_clean(v) for v in column.to_numpy(dtype=object)]
        values = np.empty(len(column), dtype=object)
        values[:] = [
            v.isoformat()
            if isinstance(v, dt.datetime | dt.date)
            else v
            if v is None or isinstance(v, bool | int | float | str)
            else str(v)
            for v in cleaned
        ]
    values[missing] = None
    return values


def _attributes(frame: pd.DataFrame, known: set[str]) -> list[dict[str, Any] | None]:
    """Per row, the non-missing values of ``frame``'s columns outside ``known`` (``None``: nothing extra).

    Built column by column (no per-row Series); the dicts keep the frame's column order.
    """
    extra = [c for c in frame.columns if c not in known]
    if not extra:
        return [None] * len(frame)
    keys = [str(c) for c in extra]
    columns = [_attribute_column(frame[c]) for c in extra]
    present = np.column_stack([col != None for col in columns])  # noqa: E711 - elementwise on object arrays
    rows: list[dict[str, Any] | None] = []
    for values, mask in zip(zip(*columns, strict=True), present, strict=True):
        rows.append({k: v for k, v, m in zip(keys, values, mask, strict=True) if m} if mask.any() else None)
    return rows


def _prices(values: np.ndarray | None, n: int) -> list[float | None]:
    """Floats for a DOUBLE column, ``None`` where missing (or no column at all)."""
    if values is None:
        return [None] * n
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def catalogue_rows(catalogue: Catalogue | pd.DataFrame) -> pd.DataFrame:
    """CATALOGUE rows from a ``Catalogue`` (or its ``items`` frame); extra attribute columns go to ATTRIBUTES.

    A numeric ``price`` column fills PRICE (what ``FitContext.from_catalogue`` gives the ranker); a text one stays
    an attribute.
    """
    items = _frame(catalogue, "items")
    known = {Columns.ITEM_ID, Columns.LABEL, Columns.IMAGE_PATH, Columns.IMAGE_URI, Columns.SPLIT}
    price = None
    if Columns.PRICE in items.columns and pd.api.types.is_numeric_dtype(items[Columns.PRICE]):
        price = items[Columns.PRICE].to_numpy(np.float64)
        known.add(Columns.PRICE)
    return pd.DataFrame(
        {
            "ITEM_ID": [str(v) for v in items[Columns.ITEM_ID]],
            "LABEL": [_text(v) for v in items.get(Columns.LABEL, [None] * len(items))],
            "IMAGE_PATH": [_text(v) for v in items.get(Columns.IMAGE_PATH, [None] * len(items))],
            "IMAGE_URI": [_text(v) for v in items.get(Columns.IMAGE_URI, [None] * len(items))],
            "SPLIT": [_text(v) for v in items.get(Columns.SPLIT, [None] * len(items))],
            "PRICE": _prices(price, len(items)),
            "ATTRIBUTES": _attributes(items, known),
        }
    )


def image_rows(catalogue: Catalogue | pd.DataFrame) -> pd.DataFrame:
    """IMAGES rows: every item with a local ``image_path`` and its file's bytes (items without one are left out)."""
    items = _frame(catalogue, "items")
    ids, blobs, digests = [], [], []
    paths = items.get(Columns.IMAGE_PATH, pd.Series([None] * len(items), index=items.index))
    for row, (item_id, path) in enumerate(zip(items[Columns.ITEM_ID], paths, strict=True), start=1):
        if _clean(path) is None:
            continue
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SnowflakeError(
                f"cannot read image: {exc.strerror}", file=path, row=row, item_id=str(item_id)
            ) from None
        ids.append(str(item_id))
        blobs.append(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return pd.DataFrame({"ITEM_ID": ids, "IMAGE": blobs, "IMAGE_SHA256": digests})


def embedding_rows(
    item_ids: Sequence[Any], embeddings: np.ndarray, model_sha: str | None = None
) -> pd.DataFrame:
    """IMAGE_EMBEDDINGS rows from ids and an ``[N, 512]`` array in the same order."""
    matrix = np.asarray(embeddings)
    if matrix.ndim != 2 or matrix.shape[1] != EMBEDDING_DIM:
        raise SnowflakeError(
            f"embeddings must have shape [N, {EMBEDDING_DIM}], got {list(matrix.shape)}", key="embeddings"
        )
    if matrix.shape[0] != len(item_ids):
        raise SnowflakeError(f"{matrix.shape[0]} embeddings for {len(item_ids)} items", key="embeddings")
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0]) + 1
        raise SnowflakeError(
            "embedding has a NaN or infinite value", key="embeddings", row=row, item_id=str(item_ids[row - 1])
        )
    vectors = matrix.astype(np.float64).tolist()
    return pd.DataFrame(
        {"ITEM_ID": [str(i) for i in item_ids], "EMBEDDING": vectors, "MODEL_SHA": [model_sha] * len(vectors)}
    )


def customers_rows(customers: Customers | pd.DataFrame) -> pd.DataFrame:
    """CUSTOMERS rows from a ``Customers`` (or its ``frame``); extra columns go to ATTRIBUTES."""
    frame = _frame(customers, "frame")
    if Columns.CUSTOMER_ID not in frame.columns and frame.index.name == Columns.CUSTOMER_ID:
        frame = frame.reset_index()
    known = {Columns.CUSTOMER_ID, "age_band", "gender", "preferred_labels", "signup_date"}

    def column(name: str) -> list[Any]:
        return list(frame[name]) if name in frame.columns else [None] * len(frame)

    signup = [_clean(v) for v in column("signup_date")]
    return pd.DataFrame(
        {
            "CUSTOMER_ID": [str(v) for v in frame[Columns.CUSTOMER_ID]],
            "AGE_BAND": [_text(v) for v in column("age_band")],
            "GENDER": [_text(v) for v in column("gender")],
            "PREFERRED_LABELS": [_text(v) for v in column("preferred_labels")],
            "SIGNUP_DATE": [pd.Timestamp(v).date() if v is not None else None for v in signup],
            "ATTRIBUTES": _attributes(frame, known),
        }
    )


def clickstream_rows(interactions: Interactions | pd.DataFrame) -> pd.DataFrame:
    """CLICKSTREAM rows from ``Interactions`` (or its ``frame``).

    PRICE is each event's price as the library reads it (``event_prices``: the ``price`` column, else
    ``unit_price``; NULL where missing, negative or not a number). ``EVENT_ID`` is a hash of (customer, item, event type, timestamp, occurrence number): stable across re-runs, and
    genuine repeats of the same event at the same instant stay distinct rows.
    """
    from fashion_reco.recommend.eventlog import event_prices

    frame = _frame(interactions, "frame")
    keys = [Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP]
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise SnowflakeError("interactions lack a required column", column=missing[0])
    timestamps = pd.to_datetime(frame[Columns.TIMESTAMP])
    base = pd.DataFrame(
        {
            "CUSTOMER_ID": frame[Columns.CUSTOMER_ID].astype(str).to_numpy(),
            "ITEM_ID": frame[Columns.ITEM_ID].astype(str).to_numpy(),
            "EVENT_TYPE": frame[Columns.EVENT_TYPE].astype(str).to_numpy(),
            "TIMESTAMP": timestamps.to_numpy(),
        }
    )
    occurrence = base.groupby(list(base.columns), sort=False).cumcount().to_numpy()
    stamps = timestamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").to_numpy()
    event_ids = [
        hashlib.sha1(f"{c}\0{i}\0{e}\0{t}\0{n}".encode(), usedforsecurity=False).hexdigest()
        for c, i, e, t, n in zip(
            base["CUSTOMER_ID"], base["ITEM_ID"], base["EVENT_TYPE"], stamps, occurrence, strict=True
        )
    ]
    quantity = frame["quantity"] if "quantity" in frame.columns else pd.Series([None] * len(frame))
    return pd.DataFrame(
        {
            "EVENT_ID": event_ids,
            **{c: base[c] for c in ("CUSTOMER_ID", "ITEM_ID", "EVENT_TYPE")},
            "TIMESTAMP": [t.to_pydatetime() for t in timestamps],
            "QUANTITY": [None if _clean(q) is None else float(q) for q in quantity],
            "PRICE": _prices(event_prices(frame), len(frame)),
        }
    )


def recommendation_rows(
    recommendations: pd.DataFrame, generated_at: dt.datetime | None = None
) -> pd.DataFrame:
    """RECOMMENDATIONS rows from ``customer_id, item_id, score, rank, reason`` (GENERATED_AT: now, UTC, naive)."""
    missing = [
        c
        for c in (Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.SCORE, Columns.RANK)
        if c not in recommendations.columns
    ]
    if missing:
        raise SnowflakeError("recommendations lack a required column", column=missing[0])
    stamp = (generated_at or dt.datetime.now(dt.timezone.utc)).replace(tzinfo=None, microsecond=0)
    reason = (
        recommendations[Columns.REASON]
        if Columns.REASON in recommendations.columns
        else [None] * len(recommendations)
    )
    return pd.DataFrame(
        {
            "CUSTOMER_ID": recommendations[Columns.CUSTOMER_ID].astype(str).to_numpy(),
            "ITEM_ID": recommendations[Columns.ITEM_ID].astype(str).to_numpy(),
            "SCORE": recommendations[Columns.SCORE].astype(float).to_numpy(),
            "RANK": recommendations[Columns.RANK].astype(int).to_numpy(),
            "REASON": [_text(r) for r in reason],
            "GENERATED_AT": [stamp] * len(recommendations),
        }
    )


# -- keyed writes ---------------------------------------------------------------------------------------------------
def _check_rows(name: str, frame: pd.DataFrame, spec: TableSpec) -> None:
    unknown = [c for c in frame.columns if c not in spec.columns]
    if unknown:
        raise SnowflakeError(f"column not in the declared schema of {name}", column=unknown[0])
    for field in spec.schema.fields:
        if field.name not in frame.columns:
            if not field.nullable:
                raise SnowflakeError(f"required column missing for {name}", column=field.name)
            continue
        nulls = frame[field.name].map(
            lambda v: _clean(v) is None if not isinstance(v, list | bytes) else False
        )
        if not field.nullable and bool(nulls.any()):
            raise SnowflakeError(
                f"empty value in a required column of {name}",
                column=field.name,
                row=int(np.flatnonzero(nulls.to_numpy())[0]) + 1,
            )
    duplicated = frame.duplicated(list(spec.keys), keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        raise SnowflakeError(
            f"duplicate key {tuple(frame.iloc[row - 1][list(spec.keys)])} for {name}",
            column=", ".join(spec.keys),
            row=row,
        )


# Snowpark local testing evaluates MERGE and DELETE … USING as a cross product of target and source rows in memory
# (30,000 × 30,000 rows needs > 20 GB) and inserts row by row. Above these sizes a local write rebuilds the table.
LOCAL_MERGE_MAX_PAIRS = 250_000
LOCAL_MERGE_MAX_ROWS = 2_000


def write_table(
    session: Session,
    name: str,
    df: pd.DataFrame,
    keys: Sequence[str] | None = None,
    *,
    spec: TableSpec | str | None = None,
    backend: WarehouseBackend | None = None,
) -> WriteResult:
    """Upsert ``df`` into table ``name`` by ``keys`` (creating it from the declared schema when missing, and adding
    the spec's ``added`` columns to a table an older release created).

    ``spec`` is a :class:`TableSpec` or a declared base name (``"CATALOGUE"``…); by default it is looked up from
    the end of ``name``. Rows whose key exists are updated, the others inserted; a spec with ``replace_by`` first
    deletes the target rows of every group (e.g. customer) present in ``df``.

    On an account (and for small local tables) this is ``Table.merge``; a large write in local testing rebuilds
    the table from the keyed union instead (same result, without the local engine's quadratic merge).
    """
    from fashion_reco.snowflake.backend import backend_for

    target_name = validate_identifier(name, "table")
    if spec is None:
        matches = [s for base, s in TABLES.items() if target_name.split(".")[-1].endswith(base)]
        if not matches:
            raise SnowflakeError("no declared schema for this table: pass spec=", key=target_name)
        spec = max(matches, key=lambda s: len(s.base))
    elif isinstance(spec, str):
        spec = TABLES[spec]
    if keys is not None and tuple(k.upper() for k in keys) != spec.keys:
        spec = TableSpec(
            spec.base,
            spec.schema,
            tuple(validate_identifier(k, "column") for k in keys),
            spec.replace_by,
            spec.added,
        )
    frame = df.rename(columns={c: validate_identifier(str(c), "column") for c in df.columns})
    _check_rows(target_name, frame, spec)
    backend = backend or backend_for(session)
    backend.create_table(target_name, spec.schema)
    if spec.added:
        backend.add_columns(target_name, [f for f in spec.schema.fields if f.name in spec.added])
    target = session.table(target_name)
    if frame.empty:
        return WriteResult(table=target_name, inserted=0, updated=0, deleted=0, rows=target.count())
    if backend.is_local and (
        len(frame) > LOCAL_MERGE_MAX_ROWS or target.count() * len(frame) > LOCAL_MERGE_MAX_PAIRS
    ):
        return _rebuild_locally(session, target_name, frame, spec)
    return _merge(session, backend, target_name, frame, spec)


def _python_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[list[Any]]:
    return [
        [_clean(v) if not isinstance(v, list | bytes | bytearray | dict) else v for v in record]
        for record in frame[list(columns)].itertuples(index=False, name=None)
    ]


def _source_schema(spec: TableSpec, columns: Sequence[str]) -> StructType:
    """The declared schema of ``columns`` with VECTOR as ARRAY of doubles (how rows travel from the client)."""
    from fashion_reco.snowflake.backend import arrays_for_vectors

    return arrays_for_vectors(spec.schema, columns, nullable=True)


def _merge(
    session: Session, backend: WarehouseBackend, name: str, frame: pd.DataFrame, spec: TableSpec
) -> WriteResult:
    """``DELETE … USING`` (for ``replace_by``) then ``MERGE`` — one statement each, atomic in the warehouse."""
    from snowflake.snowpark.functions import when_matched, when_not_matched

    target = session.table(name)
    fields = [f for f in spec.schema.fields if f.name in frame.columns]
    columns = [f.name for f in fields]
    source = backend.source_frame(frame[columns], _python_rows(frame, columns), _source_schema(spec, columns))
    values = {
        f.name: backend.as_vector(source[f.name], f.datatype.dimension)
        if isinstance(f.datatype, VectorType)
        else source[f.name]
        for f in fields
    }
    deleted = 0
    if spec.replace_by:
        groups = source.select(*spec.replace_by).distinct()
        condition = None
        for column in spec.replace_by:
            clause = target[column] == groups[column]
            condition = clause if condition is None else condition & clause
        deleted = target.delete(condition, groups).rows_deleted
    join = None
    for key in spec.keys:
        clause = target[key] == source[key]
        join = clause if join is None else join & clause
    if join is None:  # pragma: no cover - every declared table has a key
        raise SnowflakeError("a keyed write needs at least one key column", key=name)
    update = {c: v for c, v in values.items() if c not in spec.keys}
    actions: list[Any] = [when_matched().update(update)] if update else []
    actions.append(when_not_matched().insert(values))
    result = target.merge(source, join, actions)
    return WriteResult(
        table=name,
        inserted=result.rows_inserted,
        updated=result.rows_updated,
        deleted=deleted,
        rows=target.count(),
    )


def _rebuild_locally(session: Session, name: str, frame: pd.DataFrame, spec: TableSpec) -> WriteResult:
    """Local testing only: read the table, take the keyed union with ``frame`` in pandas, overwrite the table."""
    table = session.table(name)
    columns = spec.columns
    existing = pd.DataFrame([row.as_dict() for row in table.collect()], columns=columns)
    # ARRAY / VARIANT values come back as JSON text: decode them so they are written back as the same values.
    for field in _source_schema(spec, columns).fields:
        if isinstance(field.datatype, ArrayType | VariantType | MapType):
            existing[field.name] = [json.loads(v) if isinstance(v, str) else v for v in existing[field.name]]
    incoming = frame.reindex(columns=columns)

    def key_set(data: pd.DataFrame, keys: Sequence[str]) -> pd.MultiIndex:
        return pd.MultiIndex.from_frame(data[list(keys)].astype(str))

    deleted = updated = 0
    if spec.replace_by:
        dropped = key_set(existing, spec.replace_by).isin(key_set(incoming, spec.replace_by))
        deleted = int(dropped.sum())
        existing = existing[~dropped]
    matched = key_set(existing, spec.keys).isin(key_set(incoming, spec.keys))
    updated = int(matched.sum())
    kept = existing[~matched]
    rows = _python_rows(kept, columns) + _python_rows(incoming, columns)
    session.create_dataframe(rows, schema=_source_schema(spec, columns)).write.save_as_table(
        name, mode="overwrite"
    )
    return WriteResult(
        table=name, inserted=len(incoming) - updated, updated=updated, deleted=deleted, rows=len(rows)
    )
