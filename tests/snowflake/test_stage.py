"""Stage upload: every file, uncompressed, idempotent, verified by downloading back and hashing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.stage import (
    artefact_fingerprint,
    download_stage_files,
    stage_model,
    upload_directory,
    upload_model,
    verify_staged,
)


def _artefact(folder: Path, weights: bytes = b"\x00\x01weights" * 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(weights).hexdigest()[:12]
    (folder / f"weights-{digest}.safetensors").write_bytes(weights)
    (folder / "metadata.json").write_text(
        json.dumps({"format": "test", "weights": f"weights-{digest}.safetensors"})
    )
    (folder / ".metadata.json.x1y2.tmp").write_text("half-written temp file of an atomic write")
    return folder


def test_model_directory_is_uploaded_whole_and_reads_back_identical(local_session, tmp_path: Path) -> None:
    model = _artefact(tmp_path / "model")
    first = stage_model(local_session, model, "test_stage_models")
    fingerprint = artefact_fingerprint(model)
    assert {f.name for f in first} == {
        "metadata.json",
        next(model.glob("weights-*")).name,
    }  # hidden temp skipped
    assert all(f.location.startswith(f"@TEST_STAGE_MODELS/models/{fingerprint}/") for f in first)
    local = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in model.iterdir()
        if not p.name.startswith(".")
    }
    staged = download_stage_files(
        local_session, f"@TEST_STAGE_MODELS/models/{fingerprint}", tmp_path / "back"
    )
    assert staged == local
    verify_staged(local_session, first)

    again = stage_model(local_session, model, "test_stage_models")  # re-running uploads the same set
    assert again == first
    assert upload_model(local_session, model, "test_stage_models") == [f.location for f in first]
    assert download_stage_files(local_session, f"@TEST_STAGE_MODELS/models/{fingerprint}") == local


def test_a_different_model_goes_to_a_different_prefix(local_session, tmp_path: Path) -> None:
    one = _artefact(tmp_path / "one", b"first" * 100)
    two = _artefact(tmp_path / "two", b"second" * 100)
    assert artefact_fingerprint(one) != artefact_fingerprint(two)
    first, second = (
        stage_model(local_session, one, "TEST_STAGE_B"),
        stage_model(local_session, two, "TEST_STAGE_B"),
    )
    assert {f.location.rsplit("/", 1)[0] for f in first}.isdisjoint(
        {f.location.rsplit("/", 1)[0] for f in second}
    )


def test_any_directory_with_subfolders_can_be_uploaded(local_session, tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "d" / "sub" / "b.txt").write_text("b")
    staged = upload_directory(local_session, tmp_path / "d", "TEST_STAGE_C", "misc/run1")
    assert [f.location for f in staged] == [
        "@TEST_STAGE_C/misc/run1/a.txt",
        "@TEST_STAGE_C/misc/run1/sub/b.txt",
    ]
    verify_staged(local_session, staged)


def test_tampered_stage_content_is_detected(local_session, tmp_path: Path) -> None:
    staged = stage_model(local_session, _artefact(tmp_path / "m", b"abc" * 10), "TEST_STAGE_D")
    forged = [staged[0].model_copy(update={"sha256": "0" * 64})]
    with pytest.raises(SnowflakeError, match="differs from the local one") as info:
        verify_staged(local_session, forged)
    assert info.value.key == staged[0].location


def test_bad_inputs_name_what_is_wrong(local_session, tmp_path: Path) -> None:
    with pytest.raises(SnowflakeError, match="not found") as info:
        upload_model(local_session, tmp_path / "missing", "TEST_STAGE_E")
    assert info.value.file == tmp_path / "missing"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnowflakeError, match="empty"):
        upload_model(local_session, tmp_path / "empty", "TEST_STAGE_E")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "my weights;.bin").write_bytes(b"x")
    with pytest.raises(SnowflakeError, match="cannot be staged") as info:
        upload_model(local_session, odd, "TEST_STAGE_E")
    assert info.value.file == odd / "my weights;.bin"
