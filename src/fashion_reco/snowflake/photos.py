"""Catalogue photos on a stage, named by content hash, with a directory table; the UDF reads them there.

Photo bytes never travel inside SQL statements. :func:`photo_rows` hashes every catalogue photo and names it
``photos/<sha256>.<ext>`` on the photo stage; :func:`upload_photos` PUTs them with one wildcard ``PUT`` (``PARALLEL``
threads, ``OVERWRITE = FALSE``): a photo already on the stage has the same name and is skipped, so re-running uploads
only new or changed photos, and two items with the same photo share one file. The stage has a directory table
(``DIRECTORY = (ENABLE = TRUE)``, refreshed after each upload) so SQL can list what is there, and the PHOTOS table maps
``ITEM_ID`` to ``RELATIVE_PATH``. The embedding UDF's file variant reads each photo from its scoped URL
(``BUILD_SCOPED_FILE_URL(@stage, RELATIVE_PATH)``) with ``SnowflakeFile``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel, ConfigDict

from fashion_reco.atomic import sha256_file
from fashion_reco.columns import Columns
from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.identifiers import quote_identifier, stage_location, validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import Column, Session

    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.snowflake.backend import WarehouseBackend

__all__ = [
    "PHOTO_FOLDER",
    "PhotoUpload",
    "photo_rows",
    "photo_stage_sql",
    "refresh_stage_sql",
    "scoped_url",
    "upload_photos",
]

log = logging.getLogger(__name__)

PHOTO_FOLDER = "photos"
_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class PhotoUpload(BaseModel):
    """What one photo upload did."""

    model_config = ConfigDict(frozen=True)

    stage: str
    files: int  # distinct photos (by content) asked for
    uploaded: int
    skipped: int  # already on the stage under the same content-hash name


def photo_rows(catalogue: Catalogue | pd.DataFrame) -> pd.DataFrame:
    """PHOTOS rows ``ITEM_ID, RELATIVE_PATH, IMAGE_SHA256, SIZE_BYTES`` plus ``SOURCE`` (the local file, not stored).

    Items without a local ``image_path`` are left out; an unreadable file raises naming the file, row and item.
    """
    items = catalogue if isinstance(catalogue, pd.DataFrame) else getattr(catalogue, "items", None)
    if not isinstance(items, pd.DataFrame) or Columns.ITEM_ID not in items.columns:
        raise SnowflakeError("catalogue must be a Catalogue (or a frame with item_id)", key="catalogue")
    paths = items.get(Columns.IMAGE_PATH, pd.Series([None] * len(items), index=items.index))
    rows = []
    for row, (item_id, path) in enumerate(zip(items[Columns.ITEM_ID], paths, strict=True), start=1):
        if path is None or (isinstance(path, float) and pd.isna(path)):
            continue
        source = Path(str(path))
        suffix = source.suffix.lower()
        if suffix not in _SUFFIXES:
            raise SnowflakeError(
                f"not a photo file type that can be staged ({suffix or 'no suffix'})",
                file=source,
                row=row,
                item_id=str(item_id),
            )
        try:
            digest, size = sha256_file(source), source.stat().st_size
        except OSError as exc:
            raise SnowflakeError(
                f"cannot read image: {exc.strerror}", file=source, row=row, item_id=str(item_id)
            ) from None
        rows.append((str(item_id), f"{PHOTO_FOLDER}/{digest}{suffix}", digest, size, str(source)))
    return pd.DataFrame(rows, columns=["ITEM_ID", "RELATIVE_PATH", "IMAGE_SHA256", "SIZE_BYTES", "SOURCE"])


def photo_stage_sql(stage: str) -> str:
    """``CREATE STAGE IF NOT EXISTS`` with a directory table and server-side encryption (what scoped URLs need)."""
    return (
        f"CREATE STAGE IF NOT EXISTS {quote_identifier(stage.removeprefix('@'), 'stage')} "
        "DIRECTORY = (ENABLE = TRUE) ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE') COMMENT = 'fashion-reco catalogue photos'"
    )


def refresh_stage_sql(stage: str) -> str:
    """``ALTER STAGE … REFRESH``: bring the directory table up to date after an upload."""
    return f"ALTER STAGE {quote_identifier(stage.removeprefix('@'), 'stage')} REFRESH"


def upload_photos(
    session: Session,
    rows: pd.DataFrame,
    stage: str,
    *,
    parallel: int = 8,
    backend: WarehouseBackend | None = None,
) -> PhotoUpload:
    """PUT the distinct photos of ``rows`` (from :func:`photo_rows`) to ``@stage/photos/`` in one parallel PUT.

    The files are linked (or copied) under their content-hash names into a temporary folder first, so the PUT's
    wildcard picks exactly them; ``OVERWRITE = FALSE`` skips those already staged.
    """
    from fashion_reco.snowflake.backend import backend_for

    backend = backend or backend_for(session)
    canonical = validate_identifier(stage.removeprefix("@"), "stage")
    if not backend.is_local:
        backend.run_sql(photo_stage_sql(canonical))
    distinct = rows.drop_duplicates("RELATIVE_PATH")
    if distinct.empty:
        return PhotoUpload(stage=canonical, files=0, uploaded=0, skipped=0)
    target = stage_location(canonical, PHOTO_FOLDER)
    with tempfile.TemporaryDirectory(prefix="fashion-reco-photos-") as tmp:
        for relative, source in zip(distinct["RELATIVE_PATH"], distinct["SOURCE"], strict=True):
            link = Path(tmp) / Path(relative).name
            try:
                os.link(source, link)
            except OSError:
                shutil.copyfile(source, link)
        try:
            results = session.file.put(
                str(Path(tmp) / "*"), target, auto_compress=False, overwrite=False, parallel=parallel
            )
        except Exception as exc:
            raise SnowflakeError(
                f"photo upload to {target} failed: {type(exc).__name__}", key=target
            ) from None
    statuses = [r.status for r in results]
    failed = [r.source for r in results if r.status not in ("UPLOADED", "SKIPPED")]
    if failed:
        raise SnowflakeError(f"{len(failed)} photo(s) failed to upload, first: {failed[0]}", key=target)
    if not backend.is_local:
        backend.run_sql(refresh_stage_sql(canonical))
    report = PhotoUpload(
        stage=canonical,
        files=len(distinct),
        uploaded=statuses.count("UPLOADED"),
        skipped=statuses.count("SKIPPED"),
    )
    log.info("photos on %s: %d uploaded, %d already there", target, report.uploaded, report.skipped)
    return report


def scoped_url(stage: str, column: str, *, local: bool) -> Column:
    """The Snowpark column ``BUILD_SCOPED_FILE_URL(@stage, column)``; in local testing the ``@stage/path`` string
    (which ``SnowflakeFile`` opens there)."""
    from snowflake.snowpark import functions as F

    canonical = validate_identifier(stage.removeprefix("@"), "stage")
    name = validate_identifier(column, "column")
    if local:
        return F.concat(F.lit(f"@{canonical}/"), F.col(name))
    stage_sql = ".".join(f'"{p}"' for p in canonical.split("."))
    return F.sql_expr(f'BUILD_SCOPED_FILE_URL(@{stage_sql}, "{name}")')
