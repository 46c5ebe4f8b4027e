"""Training and evaluation batches drawn from a :class:`~fashion_reco.data.dataset.PixelCache`, augmented in batches.

With every photo decoded once into memory, an epoch costs no JPEG decoding and no per-image transform: a training
batch is one gather of the cached pixels and three batched ops —

* **random resized crop** (:func:`random_resized_crops`): per photo an area share in ``spec.crop_scale`` of the kept
  region and a log-uniform aspect ratio in [3/4, 4/3] (torchvision's ``RandomResizedCrop`` parameters; a box too
  large for the region is clamped to it instead of torchvision's ten redraws), resampled to ``image_size`` by
  ``torchvision.ops.roi_align`` (bilinear, 2×2 samples per output pixel, so downscaling averages like antialiasing);
* **horizontal flip** of a random half;
* **colour jitter** (:func:`colour_jitter`): brightness, saturation and hue as one per-photo 3×3 colour matrix (hue a
  rotation of the YIQ chroma plane, saturation a scaling of it — YIQ's Y is torchvision's grayscale), then contrast
  around each photo's mean gray; one clamp at the end (torchvision clamps after each of its four ops and draws
  their order at random).

Evaluation batches are the exact eval crops (:meth:`PixelCache.centre_crops`), so validation figures during training
match what the streaming pipeline computes. Randomness comes from one seeded ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler
from torchvision.ops import roi_align

from fashion_reco.data.dataset import BadImage, ImageBatch, PixelCache
from fashion_reco.data.transforms import PreprocessSpec

__all__ = ["CachedBatches", "colour_jitter", "random_resized_crops"]

_RATIO = (3 / 4, 4 / 3)
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _uniform(shape: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low


def random_resized_crops(
    cache: PixelCache,
    positions: torch.Tensor,
    out_size: int,
    scale: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """Float ``[B, 3, out, out]`` (0–255) random resized crops of the cached photos at ``positions``."""
    sizes = cache.sizes[positions].to(torch.float64)
    height, width = sizes[:, 0], sizes[:, 1]
    count = int(positions.shape[0])
    area = height * width * _uniform(count, scale[0], scale[1], generator)
    ratio = torch.exp(_uniform(count, math.log(_RATIO[0]), math.log(_RATIO[1]), generator))
    crop_w = torch.minimum(torch.sqrt(area * ratio), width)
    crop_h = torch.minimum(torch.sqrt(area / ratio), height)
    left = torch.rand(count, generator=generator, dtype=torch.float64) * (width - crop_w)
    top = torch.rand(count, generator=generator, dtype=torch.float64) * (height - crop_h)
    boxes = torch.stack(
        [torch.arange(count, dtype=torch.float64), left, top, left + crop_w, top + crop_h], dim=1
    ).to(torch.float32)
    pixels = cache.pixels[positions].to(torch.float32)
    return roi_align(pixels, boxes, output_size=out_size, sampling_ratio=2, aligned=True)


def colour_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation factors in ``1 ± strength`` and a hue shift in ``± strength / 10`` turns,
    per photo, on float ``[B, 3, H, W]`` 0–255 pixels (clamped to 0–255)."""
    count = images.shape[0]
    brightness = _uniform(count, 1 - strength, 1 + strength, generator)
    contrast = _uniform(count, 1 - strength, 1 + strength, generator)
    saturation = _uniform(count, 1 - strength, 1 + strength, generator)
    angle = _uniform(count, -strength / 10, strength / 10, generator) * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    chroma = torch.zeros((count, 3, 3), dtype=torch.float64)
    chroma[:, 0, 0] = 1.0
    chroma[:, 1, 1], chroma[:, 1, 2] = cos * saturation, -sin * saturation
    chroma[:, 2, 1], chroma[:, 2, 2] = sin * saturation, cos * saturation
    matrix = (brightness[:, None, None] * (_YIQ_TO_RGB @ chroma @ _RGB_TO_YIQ)).to(images.dtype)
    flat = images.reshape(count, 3, -1)
    mixed = torch.bmm(matrix, flat)
    luma = _RGB_TO_YIQ[0].to(images.dtype)
    gray = (luma @ mixed.mean(dim=2).t())[:, None, None]  # each photo's mean gray (the mean is linear)
    factor = contrast.to(images.dtype)[:, None, None]
    return mixed.sub_(gray).mul_(factor).add_(gray).clamp_(0, 255).view_as(images)


class CachedBatches:
    """Batches over cache entries ``positions`` (one per photo of a split), like an ``ImageLoader`` over them.

    Yields :class:`ImageBatch` es whose ``indices`` are positions within the split (bad photos missing, listed in
    :attr:`failures`): with ``train`` the images are augmented float32, already normalised; otherwise the exact
    uint8 eval crops. ``sampler`` (indices within the split) or ``shuffle`` order a training epoch, ``generator``
    drives shuffling and augmentation.
    """

    def __init__(
        self,
        cache: PixelCache,
        positions: Sequence[int] | np.ndarray,
        spec: PreprocessSpec,
        *,
        labels: Sequence[int] | np.ndarray | None = None,
        batch_size: int = 64,
        train: bool = False,
        augment: bool = True,
        sampler: Sampler[int] | None = None,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        self.cache = cache
        self.positions = torch.as_tensor(np.asarray(positions, dtype=np.int64))
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.spec = spec
        self.batch_size = batch_size
        self.train = train
        self.augment = augment
        self.sampler = sampler
        self.shuffle = shuffle
        self.generator = generator or torch.Generator().manual_seed(0)
        self.drop_last = drop_last
        valid = cache.valid[self.positions]
        self._good = torch.nonzero(valid).flatten()
        by_entry = {bad.index: bad for bad in cache.failures}
        bad = torch.nonzero(~valid).flatten().tolist()  # only the bad photos are visited
        self.failures: list[BadImage] = [
            BadImage(i, by_entry[p].file, by_entry[p].reason)
            for i, p in zip(bad, self.positions[bad].tolist(), strict=True)
        ]

    def _order(self) -> torch.Tensor:
        if self.sampler is not None:
            order = torch.as_tensor(list(self.sampler), dtype=torch.int64)
            return order[self.cache.valid[self.positions[order]]]
        if self.shuffle:
            return self._good[torch.randperm(self._good.numel(), generator=self.generator)]
        return self._good

    def __len__(self) -> int:
        count = len(self.sampler) if self.sampler is not None else int(self._good.numel())  # type: ignore[arg-type]
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def _images(self, entries: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        if not self.train or not self.augment:
            return self.cache.centre_crops(entries)
        images = random_resized_crops(self.cache, entries, spec.image_size, spec.crop_scale, self.generator)
        flip = torch.rand(images.shape[0], generator=self.generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        if spec.jitter > 0:
            images = colour_jitter(images, spec.jitter, self.generator)
        mean = torch.tensor(spec.mean, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=images.dtype).view(1, 3, 1, 1)
        return images.mul_(1.0 / 255).sub_(mean).div_(std)

    def __iter__(self) -> Iterator[ImageBatch]:
        order = self._order()
        stop = order.numel() - (order.numel() % self.batch_size if self.drop_last else 0)
        for begin in range(0, stop, self.batch_size):
            chosen = order[begin : begin + self.batch_size]
            if not chosen.numel():
                continue
            labels = None if self.labels is None else self.labels[chosen]
            yield ImageBatch(self._images(self.positions[chosen]), labels, chosen)
