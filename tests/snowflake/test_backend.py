"""The warehouse backends: real local-testing execution, and the account backend's SQL and UDF arguments."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from snowflake.snowpark import functions as F
from snowflake.snowpark.types import (
    ArrayType,
    BinaryType,
    DoubleType,
    FloatType,
    LongType,
    PandasSeriesType,
    StringType,
    StructField,
    StructType,
    VectorType,
)

from fashion_reco.errors import IdentifierError, SnowflakeError
from fashion_reco.snowflake.backend import (
    AccountBackend,
    LocalTestingBackend,
    UdfSpec,
    WarehouseBackend,
    backend_for,
    emulated_cosine_similarity,
    table_ddl,
    vector_function_sql,
)

SCHEMA = StructType(
    [
        StructField("ITEM_ID", StringType(), nullable=False),
        StructField("EMBEDDING", VectorType(float, 512), nullable=False),
        StructField("RANK", LongType()),
    ]
)


def _spec(**overrides: Any) -> UdfSpec:
    def batch(images: pd.Series) -> pd.Series:
        return images

    def row(image: bytes) -> list[float]:
        return [0.0] * 512

    values: dict[str, Any] = {
        "name": "fashion_reco_embed_image",
        "batch_handler": batch,
        "row_handler": row,
        "imports": ("@FASHION_RECO_MODELS/models/abc/metadata.json",),
        "code_imports": ("@FASHION_RECO_MODELS/code/def/fashion_reco-def.zip",),
        "packages": ("torch==2.4.0", "pandas"),
        "max_batch_size": 32,
        "udf_stage": "FASHION_RECO_MODELS",
    }
    values.update(overrides)
    return UdfSpec(**values)


@pytest.fixture(params=["local", "account"])
def backend(request: pytest.FixtureRequest, local_session, recording_session) -> WarehouseBackend:
    return (
        LocalTestingBackend(local_session) if request.param == "local" else AccountBackend(recording_session)
    )


def test_backend_for_picks_local_for_a_local_session(local_session, recording_session) -> None:
    assert isinstance(backend_for(local_session), LocalTestingBackend)
    assert isinstance(backend_for(recording_session), AccountBackend)  # anything not local is an account


def test_table_ddl_declares_real_vector_columns_and_quotes_everything() -> None:
    assert table_ddl("reco.public.embeddings", SCHEMA) == (
        'CREATE TABLE IF NOT EXISTS "RECO"."PUBLIC"."EMBEDDINGS" ("ITEM_ID" VARCHAR NOT NULL, '
        '"EMBEDDING" VECTOR(FLOAT, 512) NOT NULL, "RANK" NUMBER(38, 0))'
    )


def test_both_backends_validate_names_before_doing_anything(backend: WarehouseBackend) -> None:
    with pytest.raises(IdentifierError):
        backend.ensure_stage("models; DROP STAGE x")
    with pytest.raises(IdentifierError):
        backend.create_table('bad"name', SCHEMA)
    with pytest.raises(IdentifierError):
        backend.register_udf(_spec(name="embed image"))
    if isinstance(backend, AccountBackend):
        assert backend.session.statements == [] and backend.session.registered == []


def test_both_backends_return_the_canonical_stage_name(backend: WarehouseBackend) -> None:
    assert backend.ensure_stage("@fashion_reco_models") == "FASHION_RECO_MODELS"


def test_account_backend_sql_text(recording_session) -> None:
    session = recording_session
    backend = AccountBackend(session)
    backend.ensure_stage("db.sch.models")
    backend.create_table("T_EMB", SCHEMA)
    backend.run_sql("SELECT 1")
    assert session.statements == [
        'CREATE STAGE IF NOT EXISTS "DB"."SCH"."MODELS" ENCRYPTION = (TYPE = \'SNOWFLAKE_SSE\') '
        "COMMENT = 'fashion-reco model artefacts'",
        table_ddl("T_EMB", SCHEMA),
        "SELECT 1",
    ]


def test_account_backend_registers_a_permanent_vectorised_array_udf_and_a_vector_sql_function(
    recording_session,
) -> None:
    session = recording_session
    spec = _spec()
    assert AccountBackend(session).register_udf(spec) == "udf:FASHION_RECO_EMBED_IMAGE_ARRAY"
    (kwargs,) = session.registered
    assert kwargs["func"] is spec.batch_handler
    assert kwargs["name"] == "FASHION_RECO_EMBED_IMAGE_ARRAY"
    assert kwargs["input_types"] == [PandasSeriesType(BinaryType())]
    # the documented way: a vectorised UDF returns ARRAY, a SQL function casts it to VECTOR
    assert kwargs["return_type"] == PandasSeriesType(ArrayType(FloatType()))
    assert kwargs["max_batch_size"] == 32
    assert kwargs["is_permanent"] is True and kwargs["replace"] is True and kwargs["immutable"] is True
    assert kwargs["copy_grants"] is True  # readers keep USAGE across redeploys
    assert kwargs["stage_location"] == "@FASHION_RECO_MODELS/udf"
    assert kwargs["imports"] == [
        "@FASHION_RECO_MODELS/models/abc/metadata.json",
        "@FASHION_RECO_MODELS/code/def/fashion_reco-def.zip",
    ]
    assert kwargs["packages"] == ["torch==2.4.0", "pandas"]
    assert "artifact_repository" not in kwargs
    assert session.statements == [
        'CREATE OR REPLACE FUNCTION "FASHION_RECO_EMBED_IMAGE"("IMAGE" BINARY)\n'
        "  COPY GRANTS\n"
        "  RETURNS VECTOR(FLOAT, 512)\n"
        "  IMMUTABLE\n"
        "  COMMENT = 'fashion-reco image embedding as VECTOR (casts the vectorised ARRAY UDF)'\n"
        '  AS \'CAST("FASHION_RECO_EMBED_IMAGE_ARRAY"("IMAGE") AS VECTOR(FLOAT, 512))\''
    ]
    with pytest.raises(SnowflakeError, match="needs a stage"):
        AccountBackend(session).register_udf(_spec(udf_stage=None))


def test_account_backend_passes_the_artifact_repository_and_the_file_variant(recording_session) -> None:
    spec = _spec(artifact_repository="snowflake.snowpark.pypi_shared_repository", input_type="string")
    kwargs = AccountBackend(recording_session).udf_arguments(spec)
    assert kwargs["artifact_repository"] == "SNOWFLAKE.SNOWPARK.PYPI_SHARED_REPOSITORY"
    assert kwargs["input_types"] == [PandasSeriesType(StringType())]
    sql = vector_function_sql("db.sch.embed_file", 512, "string")
    assert sql.startswith(
        'CREATE OR REPLACE FUNCTION "DB"."SCH"."EMBED_FILE"("FILE_URL" VARCHAR)\n  COPY GRANTS'
    )
    assert '"DB"."SCH"."EMBED_FILE_ARRAY"("FILE_URL")' in sql
    with pytest.raises(IdentifierError):
        vector_function_sql("embed; DROP TABLE X", 512)


def test_account_backend_casts_to_vector(recording_session) -> None:
    from snowflake.snowpark._internal.analyzer.unary_expression import Cast

    expression = AccountBackend(recording_session).as_vector(F.col("E"), 512)._expression
    assert isinstance(expression, Cast) and expression.to == VectorType(float, 512)


def test_local_backend_cannot_run_sql_text(local_session) -> None:
    with pytest.raises(SnowflakeError, match="local testing"):
        LocalTestingBackend(local_session).run_sql("SELECT 1")


def test_local_backend_creates_tables_once_with_array_for_vector(local_session) -> None:
    backend = LocalTestingBackend(local_session)
    backend.create_table("BACKEND_T", SCHEMA)
    local_session.create_dataframe(
        [["a", [1.0, 2.0], 1]],
        schema=StructType(
            [
                StructField("ITEM_ID", StringType()),
                StructField("EMBEDDING", ArrayType(DoubleType())),
                StructField("RANK", LongType()),
            ]
        ),
    ).write.save_as_table("BACKEND_T", mode="append")
    backend.create_table("BACKEND_T", SCHEMA)  # exists: rows are kept
    table = local_session.table("BACKEND_T")
    assert table.count() == 1
    assert isinstance(table.schema["EMBEDDING"].datatype, ArrayType)
    assert backend.as_vector(F.col("EMBEDDING"), 512) is not None


def test_local_backend_registers_a_scalar_udf_with_staged_imports(local_session) -> None:
    spec = _spec()
    kwargs = LocalTestingBackend(local_session).udf_arguments(spec)
    assert kwargs["func"] is spec.row_handler
    assert kwargs["input_types"] == [BinaryType()]
    assert kwargs["return_type"] == VectorType(float, 512)
    assert kwargs["name"] == "FASHION_RECO_EMBED_IMAGE"
    assert kwargs["imports"] == ["@FASHION_RECO_MODELS/models/abc/metadata.json"]
    assert "is_permanent" not in kwargs and "max_batch_size" not in kwargs


def test_emulated_cosine_similarity_matches_numpy_and_keeps_nulls() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    left = [list(r) for r in a]
    right = [json.dumps(r.tolist()) for r in b]  # local testing hands ARRAY values over as JSON text
    left[2] = None
    got = emulated_cosine_similarity(left, right)
    want = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.isnan(got[2])
    np.testing.assert_allclose(np.delete(got, 2), np.delete(want, 2), rtol=1e-12)


def test_vector_cosine_similarity_runs_in_a_local_dataframe_query(local_session) -> None:
    LocalTestingBackend(local_session)
    frame = local_session.create_dataframe(
        [["x", [1.0, 0.0], [1.0, 0.0]], ["y", [1.0, 0.0], [0.0, 2.0]], ["z", [3.0, 4.0], [4.0, 3.0]]],
        schema=StructType(
            [
                StructField("ID", StringType()),
                StructField("A", ArrayType(DoubleType())),
                StructField("B", ArrayType(DoubleType())),
            ]
        ),
    )
    rows = (
        frame.filter(F.col("ID") != "x")
        .select("ID", F.call_function("VECTOR_COSINE_SIMILARITY", F.col("A"), F.col("B")).alias("S"))
        .sort("ID")
        .collect()
    )
    assert [(r["ID"], round(r["S"], 6)) for r in rows] == [("y", 0.0), ("z", 0.96)]


def test_account_writes_large_sources_through_write_pandas_not_bound_values(recording_session) -> None:
    """10,000 embeddings are ~100 MB as bound values; they go through write_pandas (PUT + COPY) instead."""
    from fashion_reco.snowflake.backend import INLINE_BYTES, estimated_bytes
    from fashion_reco.snowflake.tables import TABLES, embedding_rows

    calls: list[tuple[str, dict[str, Any]]] = []
    recording_session.create_dataframe = lambda rows, schema=None: calls.append(("bound", {"n": len(rows)}))
    recording_session.write_pandas = lambda frame, name, **kw: calls.append(
        ("write_pandas", {"name": name, **kw})
    )
    backend = AccountBackend(recording_session)
    schema = TABLES["IMAGE_EMBEDDINGS"].schema
    small = embedding_rows(["a", "b"], np.zeros((2, 512)))
    big = embedding_rows(
        [f"i{n}" for n in range(10_000)], np.random.default_rng(0).normal(size=(10_000, 512))
    )
    assert estimated_bytes(small) < INLINE_BYTES < 1_000_000 < estimated_bytes(big)
    backend.source_frame(small, [], schema)
    backend.source_frame(big, [], schema)
    assert calls[0] == ("bound", {"n": 0})
    kind, args = calls[1]
    assert kind == "write_pandas" and args["table_type"] == "temporary" and args["auto_create_table"] is True
    assert args["name"].startswith("FASHION_RECO_SOURCE_") and args["use_logical_type"] is True
