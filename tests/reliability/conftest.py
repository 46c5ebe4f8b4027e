"""A tiny fitted recommender in seconds (bundled sample photos, an untrained 32 px ResNet18, a seeded synthetic
clickstream) for the bundle, fit and kill tests of this folder."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
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
def fit_tiny_fn() -> object:
    """:func:`fit_tiny` for test modules (conftest functions are not importable without a package)."""
    return fit_tiny


@pytest.fixture(scope="session")
def tiny_reco(tiny_model: ImageModel, tiny_catalogue: Catalogue, tiny_world: dict) -> FashionRecommender:
    return fit_tiny(tiny_model, tiny_catalogue, tiny_world)


@pytest.fixture(scope="session")
def saved_template(tiny_reco: FashionRecommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_reco.save(tmp_path_factory.mktemp("template") / "bundle")


@pytest.fixture()
def saved(saved_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of one saved bundle (copying is much faster than a save, which fsyncs every file)."""
    return Path(shutil.copytree(saved_template, tmp_path / "bundle"))


def kill_during_saves(
    launcher: subprocess.Popen[str], rounds: int, seed: int, after_kill: Callable[[], None]
) -> None:
    """Drive a fork/kill/reap launcher: each round a fresh child starts saving and is SIGKILLed at a random moment
    within about two and a half saves (however fast this machine's disk is); ``after_kill`` checks the target."""
    assert launcher.stdin is not None and launcher.stdout is not None
    rng = random.Random(seed)
    try:
        ready, save_seconds = launcher.stdout.readline().split()
        assert ready == "ready"
        horizon = 2.5 * max(float(save_seconds), 0.05)
        for round_ in range(rounds):
            launcher.stdin.write(f"fork {round_ + 1}\n")
            launcher.stdin.flush()
            pid = int(launcher.stdout.readline())
            time.sleep(rng.uniform(0.0, horizon))
            os.kill(pid, signal.SIGKILL)
            launcher.stdin.write(f"reap {pid}\n")
            launcher.stdin.flush()
            assert launcher.stdout.readline().strip() == "reaped"
            after_kill()
    finally:
        if launcher.poll() is None:
            launcher.stdin.write("quit\n")
            launcher.stdin.flush()
            try:
                launcher.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                launcher.kill()


@pytest.fixture(scope="session")
def kill_during_saves_fn() -> object:
    """:func:`kill_during_saves` for test modules (conftest functions are not importable without a package)."""
    return kill_during_saves
