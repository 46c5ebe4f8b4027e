"""The one seam between what Snowpark's local testing engine can do and what only a real account can.

Everything else in this layer (DataFrames, ``Table.merge``, ``session.file.put/get``, scalar UDFs with staged
imports, window functions) runs unchanged on both. A :class:`WarehouseBackend` covers the rest, in seven methods:

=====================  ==========================================  ==============================================
method                 :class:`AccountBackend` (real account)      :class:`LocalTestingBackend` (in process)
=====================  ==========================================  ==============================================
``run_sql``            ``session.sql(text).collect()``             raises: local testing has no SQL parser
``ensure_stage``       ``CREATE STAGE IF NOT EXISTS`` (SSE)        nothing: local stages exist on first ``put``
``create_table``       ``CREATE TABLE IF NOT EXISTS`` DDL with     empty DataFrame saved with ``mode="ignore"``;
                       real ``VECTOR(FLOAT, n)`` columns           VECTOR columns become ARRAY
``add_columns``        ``ALTER TABLE … ADD COLUMN IF NOT EXISTS``  the table rewritten with the new NULL columns
``as_vector``          ``CAST(col AS VECTOR(FLOAT, n))``           the column unchanged (an ARRAY of floats)
``register_udf``       permanent *vectorised* ``<name>_ARRAY``     temporary scalar UDFs ``<name>`` (VECTOR) and
                       (pandas batches, returns ARRAY) + SQL       ``<name>_ARRAY`` (local testing calls UDFs one
                       function ``<name>`` casting to VECTOR;      row at a time) with the same staged imports
                       both ``COPY GRANTS``
``source_frame``       bound values; above ~256 KB ``write_pandas`` ``create_dataframe``
                       into a temporary table (PUT + COPY)
=====================  ==========================================  ==============================================

The local backend also installs an emulation of ``VECTOR_COSINE_SIMILARITY`` (``snowflake.snowpark.mock.patch``)
so that the similarity queries in :mod:`fashion_reco.snowflake.sql` run through the same DataFrame code.
"""

from __future__ import annotations

import json
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.identifiers import quote_identifier, stage_location, validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import Column, DataFrame, Row, Session
    from snowflake.snowpark.types import DataType, StructField, StructType
    from snowflake.snowpark.udf import UserDefinedFunction

__all__ = [
    "AccountBackend",
    "LocalTestingBackend",
    "UdfSpec",
    "WarehouseBackend",
    "array_function_name",
    "arrays_for_vectors",
    "backend_for",
    "estimated_bytes",
    "sql_type",
    "table_ddl",
    "vector_function_sql",
]

log = logging.getLogger(__name__)

# Above this estimated size a write's rows go through write_pandas (stage + COPY), not bound values.
INLINE_BYTES = 256_000


def estimated_bytes(frame: pd.DataFrame) -> int:
    """Rough size of ``frame``'s values as bound parameters: JSON text of a sample of rows, scaled to all rows."""
    if frame.empty:
        return 0
    sample = frame.head(64)
    text = sample.to_json(orient="values", date_format="iso", default_handler=str)
    return int(len(text) / len(sample) * len(frame))


@dataclass(frozen=True)
class UdfSpec:
    """Everything needed to register the embedding UDF, whichever backend does it.

    ``batch_handler`` maps a pandas Series of inputs (image bytes, or staged-file URLs when ``input_type`` is
    ``"string"``) to a Series of 512-float lists (vectorised form); ``row_handler`` maps one input to one list.
    On an account the Python function is ``<name>_ARRAY`` (returns ARRAY) and ``<name>`` is a SQL function casting
    it to ``VECTOR(FLOAT, dim)``; both are replaced with their grants kept (``COPY GRANTS``).
    """

    name: str
    batch_handler: Callable[..., Any]
    row_handler: Callable[[Any], Any]
    imports: tuple[str, ...]  # staged model files (both backends)
    code_imports: tuple[str, ...] = ()  # the library's code for the warehouse (account only; local has it)
    packages: tuple[str, ...] = ()
    dim: int = 512
    max_batch_size: int = 64
    udf_stage: str | None = None  # where a permanent UDF's code lives (account only)
    input_type: Literal["binary", "string"] = "binary"
    artifact_repository: str | None = None
    comment: str = "fashion-reco image embedding (ResNet18, L2-normalised)"


def array_function_name(name: str) -> str:
    """The Python UDF behind the VECTOR function ``name``: ``<name>_ARRAY`` (validated, canonical)."""
    return validate_identifier(f"{validate_identifier(name, 'function')}_ARRAY", "function")


def vector_function_sql(name: str, dim: int, input_type: Literal["binary", "string"] = "binary") -> str:
    """``CREATE OR REPLACE FUNCTION <name>(…) COPY GRANTS RETURNS VECTOR(FLOAT, dim)`` over ``<name>_ARRAY``."""
    function = quote_identifier(name, "function")
    inner = quote_identifier(array_function_name(name), "function")
    argument, sql_input = ('"IMAGE"', "BINARY") if input_type == "binary" else ('"FILE_URL"', "VARCHAR")
    vector = f"VECTOR(FLOAT, {int(dim)})"
    return (
        f"CREATE OR REPLACE FUNCTION {function}({argument} {sql_input})\n"
        f"  COPY GRANTS\n"
        f"  RETURNS {vector}\n"
        "  IMMUTABLE\n"
        "  COMMENT = 'fashion-reco image embedding as VECTOR (casts the vectorised ARRAY UDF)'\n"
        f"  AS 'CAST({inner}({argument}) AS {vector})'"
    )


class WarehouseBackend(ABC):
    """What differs between a real account and the local testing engine (see the module docstring)."""

    is_local: bool = False

    def __init__(self, session: Session) -> None:
        self.session = session

    @abstractmethod
    def run_sql(self, sql: str) -> list[Row]:
        """Execute SQL text and return its rows."""

    @abstractmethod
    def ensure_stage(self, stage: str) -> str:
        """Create the internal stage when missing; returns its canonical (validated, upper-case) name."""

    @abstractmethod
    def create_table(self, name: str, schema: StructType) -> None:
        """Create the table with ``schema`` when missing (existing tables and their rows are kept)."""

    @abstractmethod
    def add_columns(self, name: str, fields: Sequence[StructField]) -> None:
        """Add nullable ``fields`` an existing table lacks (a table created by an older release), rows kept."""

    @abstractmethod
    def as_vector(self, column: Column, dim: int) -> Column:
        """The column as ``VECTOR(FLOAT, dim)`` where the engine has that type."""

    @abstractmethod
    def udf_arguments(self, spec: UdfSpec) -> dict[str, Any]:
        """Keyword arguments of ``session.udf.register`` for the embedding UDF on this engine."""

    def register_udf(self, spec: UdfSpec) -> UserDefinedFunction:
        """Register the embedding UDF (replacing an older one of the same name)."""
        return self.session.udf.register(**self.udf_arguments(spec))

    def source_frame(self, frame: pd.DataFrame, rows: list[list[Any]], schema: StructType) -> DataFrame:
        """The rows to MERGE from, as a Snowpark DataFrame (bound values: fine for small writes)."""
        return self.session.create_dataframe(rows, schema=schema)


def arrays_for_vectors(
    schema: StructType, columns: Sequence[str] | None = None, *, nullable: bool | None = None
) -> StructType:
    """``schema`` (optionally only ``columns``) with every VECTOR column as an ARRAY of doubles: how vectors travel
    from the client, and how local testing stores them. ``nullable`` overrides every field's nullability."""
    from snowflake.snowpark.types import ArrayType, DoubleType, StructField, StructType, VectorType

    return StructType(
        [
            StructField(
                f.name,
                ArrayType(DoubleType()) if isinstance(f.datatype, VectorType) else f.datatype,
                f.nullable if nullable is None else nullable,
            )
            for f in schema.fields
            if columns is None or f.name in columns
        ]
    )


# -- DDL ------------------------------------------------------------------------------------------------------------
def sql_type(datatype: DataType) -> str:
    """Snowflake SQL type for a Snowpark type (the subset this library declares)."""
    from snowflake.snowpark import types as T

    if isinstance(datatype, T.VectorType):
        element = "INT" if getattr(datatype, "element_type", "float") == "int" else "FLOAT"
        return f"VECTOR({element}, {int(datatype.dimension)})"
    simple: list[tuple[type, str]] = [
        (T.StringType, "VARCHAR"),
        (T.BinaryType, "BINARY"),
        (T.BooleanType, "BOOLEAN"),
        (T.DoubleType, "FLOAT"),
        (T.FloatType, "FLOAT"),
        (T.LongType, "NUMBER(38, 0)"),
        (T.IntegerType, "NUMBER(38, 0)"),
        (T.DateType, "DATE"),
        (T.TimestampType, "TIMESTAMP_NTZ"),
        (T.VariantType, "VARIANT"),
        (T.ArrayType, "ARRAY"),
        (T.MapType, "OBJECT"),
    ]
    for cls, name in simple:
        if isinstance(datatype, cls):
            return name
    raise SnowflakeError(f"no SQL type mapping for {datatype!r}", key=type(datatype).__name__)


def table_ddl(name: str, schema: StructType) -> str:
    """``CREATE TABLE IF NOT EXISTS`` text for ``schema`` with every identifier validated and quoted."""
    columns = ", ".join(
        f"{quote_identifier(f.name, 'column')} {sql_type(f.datatype)}{'' if f.nullable else ' NOT NULL'}"
        for f in schema.fields
    )
    return f"CREATE TABLE IF NOT EXISTS {quote_identifier(name, 'table')} ({columns})"


# -- account --------------------------------------------------------------------------------------------------------
class AccountBackend(WarehouseBackend):
    """A real Snowflake account: SQL text, VECTOR columns, permanent vectorised UDFs."""

    is_local = False

    def run_sql(self, sql: str) -> list[Row]:
        log.debug("SQL: %s", sql)
        return self.session.sql(sql).collect()

    def ensure_stage(self, stage: str) -> str:
        canonical = validate_identifier(stage.removeprefix("@"), "stage")
        self.run_sql(
            f"CREATE STAGE IF NOT EXISTS {quote_identifier(canonical, 'stage')} "
            "ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE') COMMENT = 'fashion-reco model artefacts'"
        )
        return canonical

    def create_table(self, name: str, schema: StructType) -> None:
        self.run_sql(table_ddl(name, schema))

    def add_columns(self, name: str, fields: Sequence[StructField]) -> None:
        for field in fields:
            self.run_sql(
                f"ALTER TABLE {quote_identifier(name, 'table')} ADD COLUMN IF NOT EXISTS "
                f"{quote_identifier(field.name, 'column')} {sql_type(field.datatype)}"
            )

    def as_vector(self, column: Column, dim: int) -> Column:
        from snowflake.snowpark.types import VectorType

        return column.cast(VectorType(float, dim))

    def udf_arguments(self, spec: UdfSpec) -> dict[str, Any]:
        """Keyword arguments of ``session.udf.register`` for the permanent vectorised ARRAY UDF (unit-tested)."""
        from snowflake.snowpark.types import ArrayType, BinaryType, FloatType, PandasSeriesType, StringType

        if spec.udf_stage is None:
            raise SnowflakeError("a permanent UDF needs a stage for its code", key=spec.name)
        arguments: dict[str, Any] = {
            "func": spec.batch_handler,
            "name": array_function_name(spec.name),
            "input_types": [PandasSeriesType(BinaryType() if spec.input_type == "binary" else StringType())],
            "return_type": PandasSeriesType(ArrayType(FloatType())),
            "imports": [*spec.imports, *spec.code_imports],
            "packages": list(spec.packages),
            "max_batch_size": spec.max_batch_size,
            "is_permanent": True,
            "stage_location": stage_location(spec.udf_stage, "udf"),
            "replace": True,
            "copy_grants": True,
            "immutable": True,
            "comment": spec.comment,
        }
        if spec.artifact_repository:
            arguments["artifact_repository"] = validate_identifier(spec.artifact_repository, "table")
        return arguments

    def source_frame(self, frame: pd.DataFrame, rows: list[list[Any]], schema: StructType) -> DataFrame:
        """Small writes: bound values. Above :data:`INLINE_BYTES` (estimated), ``write_pandas`` into a temporary
        table (Parquet files PUT to the table stage, then one ``COPY INTO``), so no request carries the rows in its
        statement or bindings (Snowflake advises statements of about 1 MB)."""
        if estimated_bytes(frame) <= INLINE_BYTES:
            return super().source_frame(frame, rows, schema)
        temporary = f"FASHION_RECO_SOURCE_{uuid.uuid4().hex[:12].upper()}"
        return self.session.write_pandas(
            frame.reset_index(drop=True),
            temporary,
            auto_create_table=True,
            table_type="temporary",
            overwrite=True,
            quote_identifiers=True,
            use_logical_type=True,
        )

    def register_udf(self, spec: UdfSpec) -> UserDefinedFunction:
        """Register ``<name>_ARRAY`` (vectorised Python) and ``<name>`` (SQL, casts to VECTOR); grants kept."""
        udf = self.session.udf.register(**self.udf_arguments(spec))
        self.run_sql(vector_function_sql(spec.name, spec.dim, spec.input_type))
        return udf


# -- local testing --------------------------------------------------------------------------------------------------
def _as_matrix(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of vectors (lists, arrays or the JSON text local testing stores ARRAYs as) → matrix, valid mask."""
    valid = np.array(
        [v is not None and not (isinstance(v, float) and np.isnan(v)) for v in values], dtype=bool
    )
    parsed = [json.loads(v) if isinstance(v, str) else v for v, ok in zip(values, valid, strict=True) if ok]
    if not parsed:
        return np.zeros((0, 0)), valid
    return np.asarray(parsed, dtype=np.float64), valid


def emulated_cosine_similarity(left: Sequence[Any], right: Sequence[Any]) -> np.ndarray:
    """Row-wise cosine similarity with SQL NULL semantics (NaN where either side is NULL)."""
    a, valid_a = _as_matrix(list(left))
    b, valid_b = _as_matrix(list(right))
    out = np.full(len(valid_a), np.nan)
    both = valid_a & valid_b
    if both.any():
        a_rows = a[np.flatnonzero(both[valid_a])]
        b_rows = b[np.flatnonzero(both[valid_b])]
        if a_rows.shape[1] != b_rows.shape[1]:
            raise SnowflakeError(
                f"VECTOR_COSINE_SIMILARITY of vectors of different dimension ({a_rows.shape[1]} vs {b_rows.shape[1]})"
            )
        norms = np.linalg.norm(a_rows, axis=1) * np.linalg.norm(b_rows, axis=1)
        out[both] = np.einsum("ij,ij->i", a_rows, b_rows) / np.where(norms == 0, np.nan, norms)
    return out


_PATCHED = False


def _install_local_emulations() -> None:
    """Register ``VECTOR_COSINE_SIMILARITY`` with Snowpark's local testing function registry (process-wide, once)."""
    global _PATCHED
    if _PATCHED:
        return
    from snowflake.snowpark.mock import ColumnEmulator, ColumnType, patch
    from snowflake.snowpark.types import DoubleType

    def _vector_cosine_similarity(left, right):  # annotated below
        scores = emulated_cosine_similarity(left.tolist(), right.tolist())
        return ColumnEmulator(scores, index=left.index, sf_type=ColumnType(DoubleType(), True))

    # Snowpark reads the hints with get_type_hints(); give it the classes themselves, not postponed strings.
    _vector_cosine_similarity.__annotations__ = {
        "left": ColumnEmulator,
        "right": ColumnEmulator,
        "return": ColumnEmulator,
    }
    patch("vector_cosine_similarity")(_vector_cosine_similarity)
    _PATCHED = True


class LocalTestingBackend(WarehouseBackend):
    """Snowpark's in-process local testing engine."""

    is_local = True

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        _install_local_emulations()

    def run_sql(self, sql: str) -> list[Row]:
        raise SnowflakeError(
            "SQL text cannot run in a Snowpark local testing session (it has no SQL engine); "
            "use the DataFrame form of this query or connect to an account (snowflake.mode = 'account')",
            key="snowflake.mode",
        )

    def ensure_stage(self, stage: str) -> str:
        return validate_identifier(stage.removeprefix("@"), "stage")

    def create_table(self, name: str, schema: StructType) -> None:
        self.session.create_dataframe([], schema=arrays_for_vectors(schema)).write.save_as_table(
            validate_identifier(name, "table"), mode="ignore"
        )

    def add_columns(self, name: str, fields: Sequence[StructField]) -> None:
        from snowflake.snowpark.types import ArrayType, MapType, StructField, StructType, VariantType

        canonical = validate_identifier(name, "table")
        table = self.session.table(canonical)
        have = {f.name.strip('"').upper() for f in table.schema.fields}
        missing = [f for f in fields if f.name.upper() not in have]
        if not missing:
            return
        # no ALTER TABLE locally: rewrite the (small) table with the new columns at the end, all NULL
        old = [StructField(f.name.strip('"'), f.datatype, True) for f in table.schema.fields]
        nested = [isinstance(f.datatype, ArrayType | VariantType | MapType) for f in old]
        rows = [
            [json.loads(v) if n and isinstance(v, str) else v for v, n in zip(row, nested, strict=True)]
            + [None] * len(missing)
            for row in table.collect()
        ]
        schema = StructType([*old, *(StructField(f.name, f.datatype, True) for f in missing)])
        self.session.create_dataframe(rows, schema=schema).write.save_as_table(canonical, mode="overwrite")

    def as_vector(self, column: Column, dim: int) -> Column:
        return column

    def udf_arguments(self, spec: UdfSpec) -> dict[str, Any]:
        """Keyword arguments of ``session.udf.register`` for the temporary scalar UDF (VECTOR-typed ``<name>``)."""
        from snowflake.snowpark.types import BinaryType, StringType, VectorType

        return {
            "func": spec.row_handler,
            "name": validate_identifier(spec.name, "function"),
            "input_types": [BinaryType() if spec.input_type == "binary" else StringType()],
            "return_type": VectorType(float, spec.dim),
            "imports": list(spec.imports),
            "replace": True,
        }

    def register_udf(self, spec: UdfSpec) -> UserDefinedFunction:
        """Register ``<name>`` (VECTOR) and ``<name>_ARRAY`` (ARRAY), both scalar: local testing calls per row."""
        from snowflake.snowpark.types import ArrayType, FloatType

        arguments = self.udf_arguments(spec)
        self.session.udf.register(
            **{**arguments, "name": array_function_name(spec.name), "return_type": ArrayType(FloatType())}
        )
        return self.session.udf.register(**arguments)


def backend_for(session: Session) -> WarehouseBackend:
    """The backend matching ``session``: local testing or a real account."""
    from fashion_reco.snowflake.session import is_local_session

    return LocalTestingBackend(session) if is_local_session(session) else AccountBackend(session)
