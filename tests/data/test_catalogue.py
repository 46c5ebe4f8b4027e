"""Catalogue: folder scans and manifests over real photos, frames, views."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.errors import CatalogueError


@pytest.fixture
def photo_folder(tmp_path: Path, few_photos: list[Path]) -> Path:
    """<tmp>/shop/<label>/<uuid>.jpg as symlinks to 30 real photos, plus things a scan must ignore."""
    root = tmp_path / "shop"
    for photo in few_photos:
        link = root / photo.parent.name / photo.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(photo)
    (root / "dress" / "notes.txt").write_text("not a photo")
    (root / "dress" / ".hidden.jpg").write_bytes(b"x")
    (root / ".cache").mkdir()
    (root / ".cache" / "thumb.jpg").write_bytes(b"x")
    return root


def test_from_folder_over_real_photos(photo_folder: Path, few_photos: list[Path]) -> None:
    catalogue = Catalogue.from_folder(photo_folder)
    assert len(catalogue) == 30
    assert catalogue.classes == sorted({p.parent.name for p in few_photos})
    assert len(catalogue.classes) == 10
    expected = sorted(f"{p.parent.name}/{p.stem}" for p in few_photos)
    assert sorted(catalogue.item_ids) == expected
    frame = catalogue.to_frame()
    assert (frame["label"] == frame["item_id"].str.split("/").str[0]).all()
    assert all(os.path.isabs(p) and Path(p).is_file() for p in catalogue.image_paths)
    assert "split" not in frame.columns and not catalogue.has_splits


def test_from_folder_label_is_first_level_folder_and_suffixes_case_insensitive(
    tmp_path: Path, few_photos: list[Path]
) -> None:
    (tmp_path / "dress" / "summer").mkdir(parents=True)
    (tmp_path / "dress" / "summer" / "a.JPG").symlink_to(few_photos[0])
    (tmp_path / "loose.png").symlink_to(few_photos[1])
    catalogue = Catalogue.from_folder(tmp_path)
    assert dict(zip(catalogue.item_ids, catalogue.labels, strict=True)) == {
        "dress/summer/a": "dress",
        "loose": None,
    }


def test_from_folder_prefers_a_manifest(photo_folder: Path, few_photos: list[Path]) -> None:
    photo = few_photos[0]
    (photo_folder / "manifest.csv").write_text(
        f"item_id,image_path,label\nSKU-1,{photo.parent.name}/{photo.name},{photo.parent.name}\n"
    )
    catalogue = Catalogue.from_folder(photo_folder)
    assert list(catalogue.item_ids) == ["SKU-1"]
    assert catalogue.image_paths == [str(photo_folder / photo.parent.name / photo.name)]


def test_from_folder_errors(tmp_path: Path, few_photos: list[Path]) -> None:
    with pytest.raises(CatalogueError, match="folder not found") as info:
        Catalogue.from_folder(tmp_path / "missing")
    assert info.value.file == tmp_path / "missing"
    with pytest.raises(CatalogueError, match="no images found"):
        Catalogue.from_folder(tmp_path)
    (tmp_path / "a.jpg").symlink_to(few_photos[0])
    (tmp_path / "a.png").symlink_to(few_photos[1])
    with pytest.raises(CatalogueError, match=r"same item id 'a'.*a\.jpg.*a\.png"):
        Catalogue.from_folder(tmp_path)


def test_from_manifest_resolves_paths_and_keeps_attributes(tmp_path: Path, few_photos: list[Path]) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    for photo in few_photos[:3]:
        (images / photo.name).symlink_to(photo)
    manifest = tmp_path / "meta" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "item_id,image_path,image_uri,label,split,price,colour\n"
        f"1001,../imgs/{few_photos[0].name},,dress,train,19.5,red\n"
        f" 1002 ,{images / few_photos[1].name},,,val,20,\n"
        "1003,,s3://bucket/shop/x.jpg,hat,TEST,21,blue\n"
    )
    catalogue = Catalogue.from_manifest(manifest)
    frame = catalogue.to_frame()
    assert list(frame.columns) == ["item_id", "image_path", "image_uri", "label", "split", "price", "colour"]
    assert list(frame["item_id"]) == ["1001", "1002", "1003"]
    assert frame["image_path"].iloc[0] == str(images / few_photos[0].name)  # "meta/../imgs" normalised
    assert frame["image_path"].iloc[2] is None and frame["image_uri"].iloc[2] == "s3://bucket/shop/x.jpg"
    assert catalogue.image_paths[2] == "s3://bucket/shop/x.jpg"
    assert list(frame["split"]) == ["train", "validation", "test"]
    assert list(catalogue.labels) == ["dress", None, "hat"]
    assert catalogue.classes == ["dress", "hat"]
    assert frame["price"].tolist() == [19.5, 20.0, 21.0]
    assert frame["colour"].tolist() == ["red", None, "blue"]
    assert len(catalogue.where_split("validation")) == 1 and len(catalogue.where_split("val")) == 1

    rebased = Catalogue.from_manifest(manifest, base_dir=tmp_path / "meta")
    assert rebased.image_paths == catalogue.image_paths


def test_from_frame_coerces_ids_and_can_skip_file_checks() -> None:
    frame = pd.DataFrame(
        {
            "item_id": [17850.0, 12.0, np.nan],
            "image_path": ["/nowhere/a.jpg", "/nowhere/b.jpg", "/nowhere/c.jpg"],
        }
    )
    with pytest.raises(CatalogueError, match="empty item id") as info:
        Catalogue.from_frame(frame, check_files=False)
    assert (info.value.row, info.value.column) == (3, "item_id")
    catalogue = Catalogue.from_frame(frame.iloc[:2], check_files=False)
    assert list(catalogue.item_ids) == ["17850", "12"]
    assert list(catalogue.labels) == [None, None] and catalogue.classes == []
    with pytest.raises(CatalogueError, match=r"image file not found: /nowhere/a\.jpg") as info:
        Catalogue(frame.iloc[:2])
    assert (info.value.row, info.value.column) == (1, "image_path")


def test_views_subset_split_and_immutability(tmp_path: Path, few_photos: list[Path]) -> None:
    frame = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(6)],
            "image_path": [str(p) for p in few_photos[:6]],
            "label": ["a", "b", "a", "b", "a", None],
            "split": ["train", "train", "validation", "test", "test", "train"],
        }
    )
    catalogue = Catalogue.from_frame(frame)
    assert list(catalogue.subset(["i4", "i0"]).item_ids) == ["i4", "i0"]
    with pytest.raises(CatalogueError, match="1 id\\(s\\) not in the catalogue") as info:
        catalogue.subset(["i0", "nope"])
    assert info.value.item_id == "nope"
    assert list(catalogue.where_split("test").item_ids) == ["i3", "i4"]
    with pytest.raises(CatalogueError, match="unknown split 'holdout'"):
        catalogue.where_split("holdout")
    copy = catalogue.to_frame()
    copy.loc[0, "label"] = "changed"
    ids = catalogue.item_ids
    ids[0] = "changed"
    assert catalogue.labels[0] == "a" and catalogue.item_ids[0] == "i0"
    assert "6 items, 2 classes, train=3, validation=1, test=2" in repr(catalogue)
    no_split = Catalogue.from_frame(frame.drop(columns="split"))
    with pytest.raises(CatalogueError, match="no 'split' column"):
        no_split.where_split("train")


_PATHS = st.tuples(
    st.lists(st.sampled_from(["a", "b", ".", "..", "", "...", "..x"]), min_size=1, max_size=8), st.booleans()
).map(lambda t: ("/" if t[1] else "") + "/".join(t[0]))


@settings(max_examples=40, deadline=None)
@given(st.lists(_PATHS.filter(lambda p: p.strip("/") != ""), min_size=1, max_size=40))
def test_relative_paths_are_normalised_like_normpath(paths: list[str]) -> None:
    frame = pd.DataFrame({"item_id": [f"x{i}" for i in range(len(paths))], "image_path": paths})
    got = Catalogue.from_frame(frame, base_dir="/base/dir", check_files=False).image_paths
    expected = [os.path.normpath(os.path.join("/base/dir", p)) for p in paths]
    assert got == ["/" + e.lstrip("/") for e in expected]  # POSIX normpath keeps a leading "//"; we do not
