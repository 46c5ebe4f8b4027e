"""Errors name what is at fault; atomic writes never leave a torn or half-written file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fashion_reco.atomic import atomic_open, atomic_write_bytes, atomic_write_text, sha256_file
from fashion_reco.errors import CatalogueError, FashionRecoError, UnknownIdError


def test_error_message_names_file_row_and_column() -> None:
    err = CatalogueError("duplicate item id", file="manifest.csv", row=7, column="item_id")
    assert str(err) == "manifest.csv, row 7, column 'item_id': duplicate item id"
    assert (err.file, err.row, err.column) == ("manifest.csv", 7, "item_id")
    assert isinstance(err, FashionRecoError)


def test_unknown_id_error_is_a_keyerror_with_a_readable_message() -> None:
    err = UnknownIdError("never seen in training", item_id="sku-1")
    assert isinstance(err, KeyError)
    assert str(err) == "item id 'sku-1': never seen in training"


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as handle:
        handle.write(b"partial new content")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.bin"]


def test_atomic_open_refuses_read_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError), atomic_open(tmp_path / "x", "rb"):
        pass


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    payload = os.urandom(3 << 20)
    atomic_write_bytes(tmp_path / "p", payload)
    assert sha256_file(tmp_path / "p") == hashlib.sha256(payload).hexdigest()


def test_atomic_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import stat

    plain = tmp_path / "plain.html"
    plain.write_text("<p>hi</p>")  # what open() gives under this process's umask
    atomic_write_text(tmp_path / "shared.html", "<p>hi</p>")
    assert stat.S_IMODE((tmp_path / "shared.html").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
