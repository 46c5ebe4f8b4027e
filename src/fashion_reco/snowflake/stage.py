"""Upload artefact directories to an internal stage, idempotently, and read them back for verification.

A model directory goes to ``@<stage>/models/<fingerprint>/<file>``, where the fingerprint is a hash of every file's
name and SHA-256: re-running a deploy of the same model writes the same files to the same place (``overwrite=True``),
and a different model never mixes its files with an older one's. Files are uploaded uncompressed
(``auto_compress=False``) so that a UDF can import them by their own names.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from fashion_reco.atomic import sha256_file
from fashion_reco.errors import IdentifierError, SnowflakeError
from fashion_reco.snowflake.identifiers import stage_location, validate_stage_path

if TYPE_CHECKING:
    from snowflake.snowpark import Session

    from fashion_reco.snowflake.backend import WarehouseBackend

__all__ = [
    "StagedFile",
    "artefact_fingerprint",
    "download_stage_files",
    "local_files",
    "stage_model",
    "upload_directory",
    "upload_model",
    "verify_staged",
]

log = logging.getLogger(__name__)


class StagedFile(BaseModel):
    """One uploaded file: where it is on the stage, its relative name, size and SHA-256."""

    model_config = ConfigDict(frozen=True)

    location: str
    name: str
    size: int
    sha256: str


def local_files(directory: str | Path) -> list[Path]:
    """Every regular file under ``directory`` (recursively, sorted), skipping hidden files such as atomic temps."""
    root = Path(directory)
    if not root.is_dir():
        raise SnowflakeError("artefact directory not found", file=root)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise SnowflakeError("artefact directory is empty: nothing to upload", file=root)
    return files


def artefact_fingerprint(directory: str | Path) -> str:
    """First 12 hex digits of a SHA-256 over every file's relative name and content hash."""
    root = Path(directory)
    digest = hashlib.sha256()
    for path in local_files(root):
        digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()[:12]


def upload_directory(
    session: Session, directory: str | Path, stage: str, prefix: str = ""
) -> list[StagedFile]:
    """PUT every file of ``directory`` under ``@stage/prefix/`` (sub-folders kept), uncompressed, overwriting."""
    root = Path(directory)
    uploaded: list[StagedFile] = []
    for path in local_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            validate_stage_path(relative)
        except IdentifierError:
            raise SnowflakeError(
                "file name cannot be staged safely (use letters, digits, '_', '-', '.')", file=path
            ) from None
        folder = "/".join(
            part for part in (prefix.strip("/"), str(Path(relative).parent)) if part not in ("", ".")
        )
        target = stage_location(stage, folder)
        try:
            results = session.file.put(str(path), target, auto_compress=False, overwrite=True)
        except Exception as exc:
            raise SnowflakeError(f"upload to {target} failed: {exc}", file=path) from None
        statuses = {r.status for r in results}
        if not statuses <= {"UPLOADED", "SKIPPED"}:
            raise SnowflakeError(f"upload to {target} failed: {results}", file=path)
        uploaded.append(
            StagedFile(
                location=f"{target}/{path.name}",
                name=relative,
                size=path.stat().st_size,
                sha256=sha256_file(path),
            )
        )
        log.debug("staged %s → %s", path, target)
    return uploaded


def upload_model(
    session: Session, model_dir: str | Path, stage: str, *, backend: WarehouseBackend | None = None
) -> list[str]:
    """Create the stage when missing and upload the model directory; returns the staged file locations."""
    return [f.location for f in stage_model(session, model_dir, stage, backend=backend)]


def stage_model(
    session: Session, model_dir: str | Path, stage: str, *, backend: WarehouseBackend | None = None
) -> list[StagedFile]:
    """Like :func:`upload_model` but returns sizes and checksums too."""
    from fashion_reco.snowflake.backend import backend_for

    canonical = (backend or backend_for(session)).ensure_stage(stage)
    prefix = f"models/{artefact_fingerprint(model_dir)}"
    return upload_directory(session, model_dir, canonical, prefix)


def download_stage_files(session: Session, location: str, dest: str | Path | None = None) -> dict[str, str]:
    """GET everything under a stage location into ``dest`` (a temp dir when omitted) → {file name: sha256}.

    ``session.file.list`` does not work in local testing; downloading and hashing works everywhere.
    """
    if dest is None:
        with tempfile.TemporaryDirectory(prefix="fashion-reco-stage-") as tmp:
            return download_stage_files(session, location, tmp)
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    try:
        session.file.get(location, str(target))
    except Exception as exc:
        raise SnowflakeError(f"download of {location} failed: {exc}", key=location) from None
    return {
        p.relative_to(target).as_posix(): sha256_file(p) for p in sorted(target.rglob("*")) if p.is_file()
    }


def verify_staged(session: Session, staged: list[StagedFile]) -> None:
    """Download every staged file back and compare its SHA-256 with the local one; raises on any difference."""
    with tempfile.TemporaryDirectory(prefix="fashion-reco-verify-") as tmp:
        for index, item in enumerate(staged):
            got = download_stage_files(session, item.location, Path(tmp) / str(index))
            digest = got.get(Path(item.name).name)
            if digest is None:
                raise SnowflakeError("staged file is missing after upload", key=item.location)
            if digest != item.sha256:
                raise SnowflakeError(
                    f"staged file differs from the local one (sha256 {digest[:12]} != {item.sha256[:12]})",
                    key=item.location,
                )
