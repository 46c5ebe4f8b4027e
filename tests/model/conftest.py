"""Model-layer fixtures: one small untrained ResNet18 (random weights, 64 px) shared by the module's tests."""

from __future__ import annotations

import pytest

from fashion_reco.config import ModelConfig
from fashion_reco.model.image_model import ImageModel

CLASSES = ["dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt"]


@pytest.fixture(scope="module")
def small_model() -> ImageModel:
    import torch

    torch.manual_seed(0)
    return ImageModel.untrained(CLASSES, ModelConfig(image_size=64, weights=None))
