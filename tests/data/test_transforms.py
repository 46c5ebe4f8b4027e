"""PreprocessSpec: construction from config and torchvision weights, the transforms, and the metadata round trip."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights

from fashion_reco.config import ModelConfig
from fashion_reco.data.transforms import PreprocessSpec


def test_from_model_config() -> None:
    spec = PreprocessSpec.from_model_config(ModelConfig(image_size=128))
    assert (spec.image_size, spec.resize_size) == (128, 146)
    assert spec.mean == (0.485, 0.456, 0.406)
    assert PreprocessSpec.from_model_config(ModelConfig(image_size=96, resize_size=100)).resize_size == 100


def test_from_weights_reads_the_preset() -> None:
    spec = PreprocessSpec.from_weights(ResNet18_Weights.IMAGENET1K_V1)
    assert (spec.image_size, spec.resize_size, spec.interpolation) == (224, 256, "bilinear")
    assert spec.std == pytest.approx((0.229, 0.224, 0.225))


def test_eval_transform_geometry_and_normalisation() -> None:
    spec = PreprocessSpec(image_size=32, resize_size=40)
    image = Image.new("RGB", (80, 50), (124, 116, 104))  # ~ the ImageNet mean colour
    out = spec.eval_transform()(image)
    assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == (3, 32, 32)
    assert out.abs().max() < 0.02
    white = spec.eval_transform()(Image.new("RGB", (50, 80), (255, 255, 255)))
    expected = torch.tensor([(1 - m) / s for m, s in zip(spec.mean, spec.std, strict=True)])
    torch.testing.assert_close(white.mean(dim=(1, 2)), expected, atol=1e-4, rtol=0)
    geometry = spec.geometry_transform()(image)
    assert geometry.dtype == torch.uint8 and geometry.shape == (3, 32, 32)


def test_train_transform_is_random_but_seeded() -> None:
    spec = PreprocessSpec(image_size=32, resize_size=37)
    image = Image.effect_noise((64, 48), 40).convert("RGB")
    transform = spec.train_transform()
    torch.manual_seed(1)
    a = transform(image)
    torch.manual_seed(1)
    b = transform(image)
    c = transform(image)
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert PreprocessSpec(image_size=32, resize_size=37, jitter=0).train_transform()(image).shape == (
        3,
        32,
        32,
    )


def test_dict_round_trip_is_json() -> None:
    spec = PreprocessSpec.from_weights(ResNet18_Weights.DEFAULT)
    data = json.loads(json.dumps(spec.to_dict()))
    assert PreprocessSpec.from_dict(data) == spec
    with pytest.raises(ValueError):
        PreprocessSpec.from_dict({**data, "surprise": 1})


def test_invalid_specs() -> None:
    with pytest.raises(ValueError, match="resize_size"):
        PreprocessSpec(image_size=64, resize_size=32)
    with pytest.raises(ValueError):
        PreprocessSpec(std=(0.2, 0.0, 0.2))


def test_batched_normalisation_equals_the_per_image_transforms_bit_for_bit() -> None:
    """Workers ship uint8 geometry; normalise_batch on the whole batch gives exactly eval/train_transform's output."""
    spec = PreprocessSpec(image_size=32, resize_size=37)
    images = [Image.effect_noise((64 + 7 * i, 48), 40 + i).convert("RGB") for i in range(5)]
    per_image = torch.stack([spec.eval_transform()(im) for im in images])
    pixels = torch.stack([spec.geometry_transform()(im) for im in images])
    assert pixels.dtype == torch.uint8
    assert torch.equal(spec.normalise_batch(pixels), per_image)
    torch.manual_seed(7)
    augmented = spec.train_transform()(images[0])
    torch.manual_seed(7)
    assert torch.equal(spec.normalise_batch(spec.train_geometry()(images[0])), augmented)
    assert spec.normalise_batch(per_image) is per_image  # float input is taken as normalised already
