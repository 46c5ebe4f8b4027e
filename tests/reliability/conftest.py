"""A tiny fitted recommender in seconds (bundled sample photos, an untrained 32 px ResNet18, a seeded synthetic
clickstream) for the bundle, fit and kill tests of this folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashion_reco import FashionRecommender, RecommenderConfig
from fashion_reco.config import ModelConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.datasets import sample_catalogue
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.model.image_model import ImageModel


def tiny_config() -> RecommenderConfig:
    return RecommenderConfig(data={"num_workers": 0, "batch_size": 16}, model={"image_size": 32})


@pytest.fixture(scope="session")
def tiny_catalogue() -> Catalogue:
    full = sample_catalogue()
    items = full.to_frame()
    return full.subset(items.groupby("label").head(3)["item_id"])


@pytest.fixture(scope="session")
def tiny_model(tiny_catalogue: Catalogue) -> ImageModel:
    import torch

    torch.manual_seed(0)
    return ImageModel.untrained(tiny_catalogue.classes, ModelConfig(image_size=32))


@pytest.fixture(scope="session")
def tiny_world(tiny_catalogue: Catalogue) -> dict:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(len(tiny_catalogue), 8)).astype(np.float32)
    customers = generate_customers(tiny_catalogue, n=20, seed=1)
    clicks = generate_clickstream(tiny_catalogue, customers, item_embeddings=embeddings, seed=1)
    return {"embeddings": embeddings, "customers": customers, "clicks": clicks}


def fit_tiny(model: ImageModel, catalogue: Catalogue, world: dict, **kwargs: object) -> FashionRecommender:
    reco = FashionRecommender(tiny_config(), image_model=model)
    return reco.fit(
        catalogue,
        world["clicks"],
        world["customers"],
        item_embeddings=world["embeddings"],
        progress=False,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def tiny_reco(tiny_model: ImageModel, tiny_catalogue: Catalogue, tiny_world: dict) -> FashionRecommender:
    return fit_tiny(tiny_model, tiny_catalogue, tiny_world)


@pytest.fixture()
def saved(tiny_reco: FashionRecommender, tmp_path: Path) -> Path:
    return tiny_reco.save(tmp_path / "bundle")
