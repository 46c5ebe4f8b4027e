"""Shared fixtures: where the real data lives, and skips with a clear reason only when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from fashion_reco.config import default_data_root

os.environ.setdefault("TQDM_DISABLE", "1")

# Locally hypothesis explores new examples on every run (that is how it finds bugs); CI replays a fixed,
# seed-derived set so a merge is judged on the code, not on which random examples that run happened to draw.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """``$FASHION_RECO_DATA`` or ``../shared/data``; skips the test when the folder is absent (CI always has it)."""
    root = default_data_root().resolve()
    if not (root / "clothing" / "labels.csv").is_file():
        pytest.skip(f"real data not found at {root} (set FASHION_RECO_DATA to the shared data folder)")
    return root


@pytest.fixture(scope="session")
def clothing_dir(data_root: Path) -> Path:
    return data_root / "clothing"


@pytest.fixture(scope="session")
def clothing_labels(clothing_dir: Path) -> pd.DataFrame:
    """The real labels.csv: file, label, original_split, image_id, width, height, ..."""
    return pd.read_csv(clothing_dir / "labels.csv")


@pytest.fixture(scope="session")
def online_retail_csv(data_root: Path) -> Path:
    path = data_root / "online_retail" / "online_retail_first10k.csv"
    if not path.is_file():
        pytest.skip(f"real purchase log not found at {path}")
    return path


@pytest.fixture(scope="session")
def few_photos(clothing_dir: Path, clothing_labels: pd.DataFrame) -> list[Path]:
    """Three real photos per class (30 files), stable order."""
    picked = clothing_labels.sort_values("image_id").groupby("label", sort=True).head(3)
    return [clothing_dir / f for f in picked["file"]]
