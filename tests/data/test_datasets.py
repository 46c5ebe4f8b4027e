"""load_clothing on the real shared photos; the shipped CC0 sample and the tool that builds it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fashion_reco.data.datasets import SAMPLE_DIR, load_clothing, load_labels_csv, sample_catalogue
from fashion_reco.errors import CatalogueError

REPO = Path(__file__).resolve().parents[2]
README_CLASS_COUNTS = {
    "t-shirt": 928,
    "longsleeve": 576,
    "pants": 559,
    "shirt": 345,
    "shoes": 297,
    "dress": 288,
    "shorts": 257,
    "outwear": 246,
    "hat": 149,
    "skirt": 136,
}


def test_load_clothing_real_labels(data_root: Path, clothing_labels: pd.DataFrame) -> None:
    catalogue = load_clothing(data_root)
    frame = catalogue.to_frame()
    assert len(catalogue) == 3781 == len(clothing_labels)
    assert catalogue.classes == sorted(README_CLASS_COUNTS)
    assert frame["label"].value_counts().to_dict() == README_CLASS_COUNTS
    assert frame["split"].value_counts().to_dict() == {"train": 3068, "validation": 341, "test": 372}
    assert list(frame["item_id"]) == clothing_labels["image_id"].astype(str).tolist()
    assert list(frame.columns) == ["item_id", "image_path", "label", "split", "width", "height"]
    assert frame["width"].dtype.kind == "i" and frame["height"].dtype.kind == "i"
    assert (frame["width"] <= 240).all() and (frame["height"] <= 320).all()
    expected_paths = [str((data_root / "clothing" / f).absolute()) for f in clothing_labels["file"]]
    assert [str(Path(p)) for p in catalogue.image_paths] == [str(Path(p)) for p in expected_paths]
    assert all(Path(p).is_absolute() for p in catalogue.image_paths)
    assert len(catalogue.where_split("test")) == 372


def test_load_clothing_default_root_uses_env(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASHION_RECO_DATA", str(data_root))
    assert len(load_clothing()) == 3781


def test_load_clothing_missing_root_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="FASHION_RECO_DATA") as info:
        load_clothing(tmp_path)
    assert info.value.file == tmp_path / "clothing" / "labels.csv"


def test_labels_csv_errors_use_the_files_own_column_names(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(
        "file,label,original_split,image_id,width,height\nimages/a.jpg,dress,train,a,1,2\n"
    )
    with pytest.raises(CatalogueError, match="image file not found") as info:
        load_labels_csv(tmp_path / "labels.csv")
    assert (info.value.row, info.value.column) == (1, "file")


def test_sample_catalogue_is_every_photo_at_low_resolution(
    data_root: Path, clothing_labels: pd.DataFrame
) -> None:
    catalogue = sample_catalogue()
    frame = catalogue.to_frame()
    assert len(catalogue) == len(clothing_labels) == 3781 and len(catalogue.classes) == 10
    per_class_splits = frame.groupby("label")["split"].nunique()
    assert per_class_splits.eq(3).all()
    real = clothing_labels.set_index(clothing_labels["image_id"].astype(str))
    assert (real.loc[frame["item_id"], "label"].to_numpy() == frame["label"].to_numpy()).all()
    assert (real.loc[frame["item_id"], "original_split"].to_numpy() == frame["split"].to_numpy()).all()
    for path, width, height in zip(catalogue.image_paths, frame["width"], frame["height"], strict=True):
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (width, height) and max(image.size) <= 96


def test_sample_folder_size_schema_and_licence() -> None:
    photos = sum(p.stat().st_size for p in (SAMPLE_DIR / "images").rglob("*.jpg"))
    assert photos <= 10 * 1000 * 1000  # the package stays small: at most 10 MB of photos
    labels = pd.read_csv(SAMPLE_DIR / "labels.csv")
    assert list(labels.columns) == ["file", "label", "original_split", "image_id", "width", "height"]
    assert (
        (SAMPLE_DIR / "LICENSE-CC0-1.0.txt").read_text().startswith("Creative Commons Legal Code\n\nCC0 1.0")
    )
    attribution = (SAMPLE_DIR / "ATTRIBUTION.md").read_text()
    for needle in (
        "Clothing dataset (small)",
        "Alexey Grigorev",
        "alexeygrigorev/clothing-dataset-small",
        "CC0 1.0",
    ):
        assert needle in attribution


def test_make_sample_tool_picks_exactly_the_shipped_photos(clothing_labels: pd.DataFrame) -> None:
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "tools" / "make_sample.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    labels = clothing_labels.astype({"image_id": str})
    first, second = tool.pick(labels, 24), tool.pick(labels.sample(frac=1, random_state=3), 24)
    assert first["image_id"].tolist() == second["image_id"].tolist()  # deterministic, input order irrelevant
    assert first["label"].value_counts().eq(24).all()
    assert first.groupby("label")["original_split"].nunique().eq(3).all()
    shipped = pd.read_csv(SAMPLE_DIR / "labels.csv", dtype={"image_id": str})
    everything = tool.pick(labels.sample(frac=1, random_state=4), None)
    assert everything["image_id"].tolist() == shipped["image_id"].tolist()
    # 3 per split, the other 15 by largest remainder: 12.3 / 1.2 / 1.5 -> 12 / 1 / 2
    assert tool.allocate({"train": 100, "validation": 10, "test": 12}, 24) == {
        "train": 15,
        "validation": 4,
        "test": 5,
    }
