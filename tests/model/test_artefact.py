"""ImageModel.load refuses every broken artefact with an ArtefactError that names the faulty file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fashion_reco.errors import ArtefactError
from fashion_reco.model.image_model import ImageModel


@pytest.fixture()
def saved(small_model: ImageModel, tmp_path: Path) -> Path:
    small_model.save(tmp_path / "model")
    return tmp_path / "model"


def _meta(path: Path) -> dict:
    return json.loads((path / "metadata.json").read_text())


def _write_meta(path: Path, meta: dict) -> None:
    (path / "metadata.json").write_text(json.dumps(meta))


def _load_error(path: Path) -> ArtefactError:
    with pytest.raises(ArtefactError) as info:
        ImageModel.load(path)
    return info.value


def test_missing_directory_and_metadata(tmp_path: Path, saved: Path) -> None:
    assert _load_error(tmp_path / "nowhere").file == tmp_path / "nowhere"
    (saved / "metadata.json").unlink()
    error = _load_error(saved)
    assert error.file == saved / "metadata.json" and "missing metadata.json" in str(error)


def test_bad_json(saved: Path) -> None:
    (saved / "metadata.json").write_text('{"format": ')
    error = _load_error(saved)
    assert error.file == saved / "metadata.json" and "not valid JSON" in error.reason
    (saved / "metadata.json").write_text("[1, 2]")
    assert "JSON object" in _load_error(saved).reason


def test_missing_key(saved: Path) -> None:
    meta = _meta(saved)
    del meta["classes"]
    _write_meta(saved, meta)
    error = _load_error(saved)
    assert error.key == "classes" and "invalid metadata" in str(error)


def test_missing_weights(saved: Path) -> None:
    weights = saved / _meta(saved)["weights_file"]
    weights.unlink()
    error = _load_error(saved)
    assert error.file == weights and "missing" in error.reason


def test_checksum_mismatch(saved: Path) -> None:
    weights = saved / _meta(saved)["weights_file"]
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    error = _load_error(saved)
    assert error.file == weights and "checksum mismatch" in error.reason


def test_wrong_shapes(saved: Path) -> None:
    meta = _meta(saved)
    meta["classes"] = [*meta["classes"], "scarf"]
    _write_meta(saved, meta)
    error = _load_error(saved)
    assert (
        error.file == saved / meta["weights_file"]
        and "wrong shapes" in error.reason
        and "fc.weight" in error.reason
    )


def test_unknown_architecture_and_format(saved: Path) -> None:
    meta = _meta(saved)
    _write_meta(saved, {**meta, "architecture": "vit_b_16"})
    assert "unknown architecture 'vit_b_16'" in _load_error(saved).reason
    _write_meta(saved, {**meta, "format_version": 99})
    assert "upgrade" in _load_error(saved).reason
    _write_meta(saved, {**meta, "format": "something-else"})
    assert "not an image model" in _load_error(saved).reason
    _write_meta(saved, {**meta, "weights_file": "../../etc/passwd"})
    assert "weights-<sha12>" in _load_error(saved).reason
    _write_meta(saved, {**meta, "embedding_dim": 128})
    assert "embedding_dim" in _load_error(saved).reason
    _write_meta(saved, {**meta, "preprocess": {"image_size": "big"}})
    assert _load_error(saved).key == "preprocess"
