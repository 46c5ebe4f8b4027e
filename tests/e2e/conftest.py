"""One small but real pipeline shared by the end-to-end tests: real photos, a briefly trained ResNet18, a seeded
synthetic clickstream, the fitted blend — and a saved bundle the CLI tests reuse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fashion_reco import FashionRecommender, RecommenderConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.datasets import load_clothing
from fashion_reco.data.synthetic import generate_clickstream, generate_customers


def small_config(data_root: Path) -> RecommenderConfig:
    """64 px, one head epoch and one fine-tune epoch on 400 photos: seconds, not minutes, on 2 cores."""
    return RecommenderConfig(
        data={"root": data_root, "num_workers": 1},
        model={
            "image_size": 64,
            "head_epochs": 1,
            "finetune_epochs": 1,
            "max_train_images": 400,
            "augment": False,
            "batch_size": 32,
        },
        blend={"test_days": 7},
    )


@pytest.fixture(scope="session")
def e2e_catalogue(data_root: Path) -> Catalogue:
    """600 real photos: every test photo plus a stratified share of train/validation (all 10 classes)."""
    full = load_clothing(data_root)
    items = full.to_frame()
    groups = items.groupby(["label", "split"])
    limit = groups["item_id"].transform("size").floordiv(6).clip(lower=3)
    return full.subset(items.loc[groups.cumcount() < limit, "item_id"])


@pytest.fixture(scope="session")
def fitted(data_root: Path, e2e_catalogue: Catalogue) -> dict:
    cfg = small_config(data_root)
    reco = FashionRecommender(cfg)
    reco.train(e2e_catalogue, progress=False)
    embeddings = reco.embed(e2e_catalogue, progress=False)
    customers = generate_customers(e2e_catalogue, n=120, seed=3)
    clicks = generate_clickstream(e2e_catalogue, customers, item_embeddings=embeddings, seed=3)
    train, test = clicks.split_by_time(cfg.blend.test_days)
    reco.fit(e2e_catalogue, train, customers, item_embeddings=embeddings, progress=False)
    return {"reco": reco, "train": train, "test": test, "customers": customers, "embeddings": embeddings}


@pytest.fixture(scope="session")
def saved_bundle(fitted: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "reco"
    fitted["reco"].save(path)
    return path


@pytest.fixture(scope="session")
def csv_files(fitted: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("csv")
    out = {}
    for name in ("train", "test"):
        out[name] = folder / f"{name}.csv"
        fitted[name].frame.to_csv(out[name], index=False)
    out["customers"] = folder / "customers.csv"
    fitted["customers"].frame.to_csv(out["customers"], index=False)
    return out


def ids_frame(frame: pd.DataFrame, column: str) -> list[str]:
    return frame[column].astype(str).tolist()
