"""Photos on a stage by content hash: one parallel PUT, idempotent, read back by the UDF; statements stay small."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from snowflake.snowpark import functions as F

from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.backend import AccountBackend, LocalTestingBackend
from fashion_reco.snowflake.photos import (
    photo_rows,
    photo_stage_sql,
    refresh_stage_sql,
    scoped_url,
    upload_photos,
)

ONE_MB = 1_000_000


def _catalogue(paths: list[Path], ids: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids or [p.stem for p in paths], "image_path": [str(p) for p in paths]})


def test_rows_name_photos_by_content_hash(twelve_photos: list[Path]) -> None:
    paths = [*twelve_photos[:3], twelve_photos[0]]  # the 4th item reuses the 1st item's photo
    rows = photo_rows(_catalogue(paths, ["a", "b", "c", "d"]))
    digest = hashlib.sha256(twelve_photos[0].read_bytes()).hexdigest()
    assert rows.loc[0, "RELATIVE_PATH"] == f"photos/{digest}.jpg" == rows.loc[3, "RELATIVE_PATH"]
    assert (
        rows.loc[0, "IMAGE_SHA256"] == digest and rows.loc[0, "SIZE_BYTES"] == twelve_photos[0].stat().st_size
    )
    assert list(rows.columns) == ["ITEM_ID", "RELATIVE_PATH", "IMAGE_SHA256", "SIZE_BYTES", "SOURCE"]


def test_rows_name_the_bad_file(tmp_path: Path, twelve_photos: list[Path]) -> None:
    with pytest.raises(SnowflakeError, match="cannot read image") as info:
        photo_rows(_catalogue([twelve_photos[0], tmp_path / "gone.jpg"], ["a", "b"]))
    assert info.value.row == 2 and info.value.item_id == "b" and "gone.jpg" in str(info.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SnowflakeError, match="photo file type"):
        photo_rows(_catalogue([tmp_path / "notes.txt"]))


def test_upload_is_idempotent_and_only_sends_new_content(
    local_session, twelve_photos: list[Path], tmp_path: Path
) -> None:
    backend = LocalTestingBackend(local_session)
    rows = photo_rows(_catalogue([*twelve_photos[:4], twelve_photos[0]]))
    first = upload_photos(local_session, rows, "PHOTO_T_STAGE", parallel=4, backend=backend)
    assert (first.files, first.uploaded, first.skipped) == (4, 4, 0)  # the duplicate photo is one file
    again = upload_photos(local_session, rows, "PHOTO_T_STAGE", parallel=4, backend=backend)
    assert (again.uploaded, again.skipped) == (0, 4)
    changed = tmp_path / "changed.jpg"
    shutil.copyfile(twelve_photos[5], changed)
    more = upload_photos(
        local_session, photo_rows(_catalogue([*twelve_photos[:4], changed])), "PHOTO_T_STAGE"
    )
    assert (more.uploaded, more.skipped) == (1, 4)


def test_staged_photos_are_read_by_path_inside_the_warehouse(
    local_session, twelve_photos: list[Path]
) -> None:
    from snowflake.snowpark.types import LongType, StringType

    rows = photo_rows(_catalogue(twelve_photos[:3]))
    upload_photos(local_session, rows, "PHOTO_R_STAGE")

    def staged_sha(url):  # the same SnowflakeFile read the file UDF does
        from snowflake.snowpark.files import SnowflakeFile

        with SnowflakeFile.open(url, "rb", require_scoped_url=False) as handle:
            return len(handle.read())

    local_session.udf.register(
        staged_sha, name="PHOTO_SIZE", input_types=[StringType()], return_type=LongType(), replace=True
    )
    table = local_session.create_dataframe(rows.drop(columns=["SOURCE"])).cache_result()
    got = table.select(
        "ITEM_ID",
        F.call_function("PHOTO_SIZE", scoped_url("PHOTO_R_STAGE", "RELATIVE_PATH", local=True)).alias("N"),
    ).collect()
    assert {r["ITEM_ID"]: r["N"] for r in got} == dict(zip(rows["ITEM_ID"], rows["SIZE_BYTES"], strict=True))


class _RecordingFiles:
    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put(self, local: str, stage: str, **kwargs: Any) -> list[Any]:
        self.puts.append({"local": local, "stage": stage, **kwargs})
        files = sorted(Path(local).parent.iterdir())
        return [type("R", (), {"source": f.name, "status": "UPLOADED"})() for f in files]


def test_account_upload_is_one_parallel_put_and_small_statements(
    recording_session, twelve_photos: list[Path]
) -> None:
    recording_session.file = _RecordingFiles()
    rows = photo_rows(_catalogue(twelve_photos))
    report = upload_photos(
        recording_session, rows, "reco.public.photos", parallel=16, backend=AccountBackend(recording_session)
    )
    assert report.uploaded == 12
    (put,) = recording_session.file.puts
    assert put["local"].endswith("/*") and put["stage"] == "@RECO.PUBLIC.PHOTOS/photos"
    assert put["parallel"] == 16 and put["overwrite"] is False and put["auto_compress"] is False
    assert recording_session.statements == [
        photo_stage_sql("reco.public.photos"),
        refresh_stage_sql("reco.public.photos"),
    ]
    assert "DIRECTORY = (ENABLE = TRUE)" in recording_session.statements[0]
    assert "SNOWFLAKE_SSE" in recording_session.statements[0]
    assert all(len(s.encode()) < ONE_MB for s in recording_session.statements)
    total = sum(p.stat().st_size for p in twelve_photos)
    assert max(len(s.encode()) for s in recording_session.statements) < total / 100  # bytes never in SQL


def test_account_scoped_url_expression() -> None:
    column = scoped_url("db.sch.photos", "RELATIVE_PATH", local=False)
    assert 'BUILD_SCOPED_FILE_URL(@"DB"."SCH"."PHOTOS", "RELATIVE_PATH")' in str(column._expression.sql)
    with pytest.raises(Exception, match="not a valid"):
        scoped_url("photos; DROP", "RELATIVE_PATH", local=False)


def test_embeddings_from_staged_files_match(
    local_session, tiny_model_dir: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    from fashion_reco.config import SnowflakeConfig
    from fashion_reco.snowflake.deploy import stage_onnx, verify_udf_embeddings
    from fashion_reco.snowflake.tables import write_table
    from fashion_reco.snowflake.udf import register_embedding_udf

    config = SnowflakeConfig(stage="PHOTO_E_STAGE", photo_stage="PHOTO_E_PHOTOS")
    backend = LocalTestingBackend(local_session)
    staged, policy = stage_onnx(local_session, tiny_model_dir, config.stage, backend=backend)
    register_embedding_udf(
        local_session,
        backend,
        model_files=[f.location for f in staged],
        config=config,
        policy=policy,
        name="PHOTO_E_EMBED_FILE",
        input_type="string",
    )
    rows = photo_rows(_catalogue(twelve_photos))
    upload_photos(local_session, rows, config.photo_stage, backend=backend)
    write_table(local_session, "PHOTO_E_PHOTOS_T", rows.drop(columns=["SOURCE"]), spec="PHOTOS")
    expected = dict(zip(rows["ITEM_ID"], local_embeddings, strict=True))
    worst = verify_udf_embeddings(
        local_session,
        "PHOTO_E_PHOTOS_T",
        "PHOTO_E_EMBED_FILE",
        expected,
        1e-5,
        photo_stage=config.photo_stage,
    )
    assert worst <= 1e-5


def test_file_udf_works_with_several_sessions_open(
    local_session, tiny_model_dir: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    """SnowflakeFile asks for *the* active session; with two open, the local handler must use its own session."""
    from fashion_reco.config import SnowflakeConfig
    from fashion_reco.snowflake.deploy import stage_onnx, verify_udf_embeddings
    from fashion_reco.snowflake.session import create_session
    from fashion_reco.snowflake.tables import write_table
    from fashion_reco.snowflake.udf import register_embedding_udf

    other = create_session(SnowflakeConfig(mode="local"))
    try:
        config = SnowflakeConfig(stage="PHOTO_2S_STAGE", photo_stage="PHOTO_2S_PHOTOS")
        backend = LocalTestingBackend(other)
        staged, policy = stage_onnx(other, tiny_model_dir, config.stage, backend=backend)
        register_embedding_udf(
            other,
            backend,
            model_files=[f.location for f in staged],
            config=config,
            policy=policy,
            name="PHOTO_2S_EMBED_FILE",
            input_type="string",
        )
        rows = photo_rows(_catalogue(twelve_photos[:3]))
        upload_photos(other, rows, config.photo_stage, backend=backend)
        write_table(other, "PHOTO_2S_T", rows.drop(columns=["SOURCE"]), spec="PHOTOS")
        expected = dict(zip(rows["ITEM_ID"], local_embeddings[:3], strict=True))
        worst = verify_udf_embeddings(
            other, "PHOTO_2S_T", "PHOTO_2S_EMBED_FILE", expected, 1e-5, photo_stage=config.photo_stage
        )
        assert worst <= 1e-5
    finally:
        other.close()
