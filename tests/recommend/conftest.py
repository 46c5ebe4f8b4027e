"""Fixtures for the recommend layer: small in-code catalogues, stand-in embeddings, synthetic and real logs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco.data.synthetic import generate_dataset
from fashion_reco.recommend.base import FitContext


def standin_embeddings(labels: np.ndarray, *, dim: int = 512, styles: int = 4, seed: int = 0) -> np.ndarray:
    """Label-clustered random unit vectors: label centre + one of ``styles`` sub-styles + noise (float32)."""
    rng = np.random.default_rng(seed)
    classes, code = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    centre = rng.standard_normal((len(classes), dim))
    sub = rng.standard_normal((len(classes), styles, dim))
    style = rng.integers(0, styles, size=len(code))
    x = centre[code] + 0.8 * sub[code, style] + 0.9 * rng.standard_normal((len(code), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def small_catalogue() -> pd.DataFrame:
    """120 items in 6 labels, built in code (no shared data needed)."""
    labels = np.repeat(["dress", "hat", "pants", "shirt", "shoes", "skirt"], 20)
    return pd.DataFrame({"item_id": [f"i{j:03d}" for j in range(len(labels))], "label": labels})


@pytest.fixture(scope="session")
def small_world(small_catalogue: pd.DataFrame):
    """(customers, interactions, context) over the small catalogue: 150 customers, 30 days."""
    emb = standin_embeddings(small_catalogue["label"].to_numpy(), dim=32, seed=3)
    customers, clicks = generate_dataset(small_catalogue, 150, item_embeddings=emb, days=30, seed=5)
    ctx = FitContext(
        item_ids=small_catalogue["item_id"].to_numpy(),
        item_embeddings=emb,
        item_labels=small_catalogue["label"].to_numpy(),
        customers=customers,
    )
    return customers, clicks, ctx


@pytest.fixture(scope="session")
def clothing_catalogue(clothing_labels: pd.DataFrame) -> pd.DataFrame:
    """The real catalogue's item ids and labels (3,781 items)."""
    return clothing_labels.rename(columns={"image_id": "item_id"})[["item_id", "label"]].reset_index(
        drop=True
    )


@pytest.fixture(scope="session")
def retail_log(online_retail_csv: Path):
    from fashion_reco.data.retail import load_online_retail

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interactions, _ = load_online_retail(online_retail_csv)
    return interactions
