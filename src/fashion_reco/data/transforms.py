"""Preprocessing that travels with the model: one :class:`PreprocessSpec`, saved in the model's metadata.

``eval_transform()`` is torchvision's classification preset (resize the shorter side, centre crop, scale to float,
normalise), ``train_transform()`` adds the usual light augmentation (random resized crop, horizontal flip, colour
jitter). Both are built with ``torchvision.transforms.v2``, take an RGB ``PIL.Image`` (from
:func:`fashion_reco.data.images.load_image`) and return a float32 ``[3, image_size, image_size]`` tensor.

Each is split in two for the batched pipeline: a per-image *geometry* part on uint8 pixels (``geometry_transform`` /
``train_geometry``, run where photos are decoded) and :meth:`PreprocessSpec.normalise_batch`, one vectorised op over a
whole uint8 batch on the device that runs the network. Decoding workers then ship a quarter of the bytes and skip two
per-image float passes; ``eval_transform(img)`` equals ``normalise_batch(geometry_transform(img))`` bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torchvision.models import WeightsEnum
from torchvision.transforms import InterpolationMode, v2

from fashion_reco.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig

__all__ = ["PreprocessSpec"]


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    """Three per-channel values as floats (torchvision presets hold lists)."""
    first, second, third = (float(v) for v in values)
    return first, second, third


Interpolation = Literal["nearest", "bilinear", "bicubic"]


class PreprocessSpec(BaseModel):
    """Input geometry and normalisation of the image network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(224, ge=8, description="Side of the square centre crop fed to the network.")
    resize_size: int = Field(256, ge=8, description="Shorter side after resizing, before the crop.")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: Interpolation = "bilinear"
    antialias: bool = True
    # Augmentation strength for train_transform (not used at inference).
    crop_scale: tuple[float, float] = (0.35, 1.0)
    jitter: float = Field(0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> PreprocessSpec:
        if self.resize_size < self.image_size:
            raise ValueError(f"resize_size ({self.resize_size}) must be >= image_size ({self.image_size})")
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        return self

    @classmethod
    def from_model_config(cls, config: ModelConfig, *, weights: WeightsEnum | None = None) -> PreprocessSpec:
        """From a :class:`~fashion_reco.config.ModelConfig` (``image_size``, ``effective_resize_size``); ``mean``
        and ``std`` are the configuration's when set, else those of the pretrained ``weights``' own transforms,
        else ImageNet's."""
        if config.mean is not None and config.std is not None:
            mean, std = config.mean, config.std
        elif weights is not None:
            preset = weights.transforms()
            mean, std = _triple(preset.mean), _triple(preset.std)
        else:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        return cls(image_size=config.image_size, resize_size=config.effective_resize_size, mean=mean, std=std)

    @classmethod
    def from_weights(cls, weights: WeightsEnum) -> PreprocessSpec:
        """From a torchvision weights enum member (e.g. ``ResNet18_Weights.IMAGENET1K_V1``): its ``transforms()`` preset."""
        preset = weights.transforms()
        crop = preset.crop_size[0] if isinstance(preset.crop_size, (list, tuple)) else preset.crop_size
        resize = (
            preset.resize_size[0] if isinstance(preset.resize_size, (list, tuple)) else preset.resize_size
        )
        interpolation = preset.interpolation
        name = interpolation.value if isinstance(interpolation, InterpolationMode) else str(interpolation)
        return cls(
            image_size=int(crop),
            resize_size=int(resize),
            mean=_triple(preset.mean),
            std=_triple(preset.std),
            interpolation=name,  # type: ignore[arg-type]
            antialias=bool(getattr(preset, "antialias", True)),
        )

    # -- transforms ---------------------------------------------------------------------------------------------------

    @property
    def _mode(self) -> InterpolationMode:
        return InterpolationMode(self.interpolation)

    def geometry_transform(self) -> v2.Compose:
        """PIL image -> uint8 ``[3, S, S]`` tensor (resize shorter side, centre crop); no scaling or normalisation."""
        return v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(self.resize_size, interpolation=self._mode, antialias=self.antialias),
                v2.CenterCrop(self.image_size),
                v2.ToPureTensor(),
            ]
        )

    def normalise_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 pixels ``[..., 3, H, W]`` (any device) -> float32 normalised, the same ops as the per-image tail.

        Float input is taken to be normalised already and returned unchanged.
        """
        if images.dtype != torch.uint8:
            return images
        mean = torch.tensor(self.mean, dtype=torch.float32, device=images.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=images.device).view(3, 1, 1)
        return images.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)

    def normalise(self) -> v2.Normalize:
        """Float ``[0, 1]`` tensor -> normalised tensor (the last step of both transforms)."""
        return v2.Normalize(mean=list(self.mean), std=list(self.std))

    def eval_transform(self) -> v2.Compose:
        """Deterministic inference preprocessing: resize shorter side -> centre crop -> float32 -> normalise."""
        return v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(self.resize_size, interpolation=self._mode, antialias=self.antialias),
                v2.CenterCrop(self.image_size),
                v2.ToDtype(torch.float32, scale=True),
                self.normalise(),
                v2.ToPureTensor(),
            ]
        )

    def train_geometry(self) -> v2.Compose:
        """Training augmentation on uint8 pixels: random resized crop -> horizontal flip -> colour jitter.

        Randomness comes from torch's global generator, which a seeded DataLoader seeds per worker.
        """
        steps: list[Any] = [
            v2.ToImage(),
            v2.RandomResizedCrop(
                self.image_size, scale=self.crop_scale, interpolation=self._mode, antialias=self.antialias
            ),
            v2.RandomHorizontalFlip(),
        ]
        if self.jitter > 0:
            steps.append(
                v2.ColorJitter(
                    brightness=self.jitter, contrast=self.jitter, saturation=self.jitter, hue=self.jitter / 10
                )
            )
        steps.append(v2.ToPureTensor())
        return v2.Compose(steps)

    def train_transform(self) -> v2.Compose:
        """Training augmentation (:meth:`train_geometry`) -> float32 -> normalise, for one image."""
        return v2.Compose([self.train_geometry(), v2.ToDtype(torch.float32, scale=True), self.normalise()])

    # -- metadata -----------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in the model's ``metadata.json``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls.model_validate(data)
