"""Shared Snowflake-layer fixtures: one local testing session for the whole run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from snowflake.snowpark import Session

from fashion_reco.config import ModelConfig, SnowflakeConfig
from fashion_reco.model.image_model import ImageModel
from fashion_reco.snowflake.session import create_session


@pytest.fixture(scope="session")
def local_session() -> Session:
    session = create_session(SnowflakeConfig(mode="local"))
    yield session
    session.close()


class RecordingSession:
    """Stands in for an account session: records SQL text and UDF registrations instead of sending them."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.registered: list[dict[str, Any]] = []
        outer = self

        class _Result:
            def collect(self) -> list[Any]:
                return []

        class _Udf:
            def register(self, **kwargs: Any) -> str:
                outer.registered.append(kwargs)
                return f"udf:{kwargs['name']}"

        self._result = _Result()
        self.udf = _Udf()

    def sql(self, text: str) -> Any:
        self.statements.append(text)
        return self._result


@pytest.fixture
def recording_session() -> RecordingSession:
    """A stand-in for an account session that records SQL text and UDF registrations."""
    return RecordingSession()


@pytest.fixture(scope="session")
def twelve_photos(few_photos: list[Path]) -> list[Path]:
    """Twelve real garment photos from ../shared/data/clothing, spread over the classes."""
    return (few_photos[::3] + few_photos[1::3])[:12]


@pytest.fixture(scope="session")
def tiny_model(twelve_photos: list[Path]) -> ImageModel:
    """An untrained ResNet18 (weights=None) at 64 px: real numerics, test-sized cost."""
    torch.manual_seed(0)
    return ImageModel.untrained(sorted({p.parent.name for p in twelve_photos}), ModelConfig(image_size=64))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model: ImageModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("tiny-model") / "image_model")


@pytest.fixture(scope="session")
def local_embeddings(tiny_model: ImageModel, twelve_photos: list[Path]) -> np.ndarray:
    """The reference: ``ImageModel.embed`` on the photo files."""
    return tiny_model.embed([str(p) for p in twelve_photos], num_workers=0)


@pytest.fixture(scope="session")
def photo_bytes(twelve_photos: list[Path]) -> list[bytes]:
    """The twelve photos' file bytes, as a UDF receives them."""
    return [p.read_bytes() for p in twelve_photos]
