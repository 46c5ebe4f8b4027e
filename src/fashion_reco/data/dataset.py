"""A torch ``Dataset`` over image sources and a ``DataLoader`` factory that survives bad images.

Decoding happens in :class:`ImageDataset.__getitem__`, i.e. inside DataLoader worker processes when
``num_workers > 0``, so JPEG decoding and resizing overlap the network's compute in the main process. Batches carry
uint8 pixels (resized and cropped, or augmented); the consumer normalises a whole batch at once with
:meth:`PreprocessSpec.normalise_batch` on its device (a quarter of the bytes through the workers' shared memory).

A bad image never kills a batch: the dataset returns a :class:`BadImage` marker instead of a tensor, the collate
function drops it (its index is then missing from :attr:`ImageBatch.indices`) and records it in
:attr:`ImageBatch.failed`. The loader returned by :func:`make_loader` (an :class:`ImageLoader`, a ``DataLoader``
subclass) collects those failures in :attr:`ImageLoader.failures`, or raises the :class:`ImageError` in the main
process when ``policy.on_bad == "raise"``; batches left empty are skipped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from torchvision.transforms import v2

from fashion_reco.data.images import ImagePolicy, ImageSource, describe_source, load_image
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ImageError

__all__ = [
    "BadImage",
    "ImageBatch",
    "ImageDataset",
    "ImageLoader",
    "PixelCache",
    "collate_images",
    "default_num_workers",
    "make_loader",
    "single_threaded_torch",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BadImage:
    """An input that could not be used: its position in the sources, its name, and why."""

    index: int
    file: str
    reason: str

    def to_error(self) -> ImageError:
        return ImageError(self.reason, file=self.file)


@dataclass
class ImageBatch:
    """One batch: ``images`` uint8 ``[B, 3, H, W]`` (not yet normalised), ``labels`` int64 ``[B]`` or None, ``indices`` int64 ``[B]``
    (positions in the sources; bad images are missing), ``failed`` the images dropped from this batch."""

    images: torch.Tensor
    labels: torch.Tensor | None
    indices: torch.Tensor
    failed: list[BadImage] = field(default_factory=list)

    def pin_memory(self) -> ImageBatch:  # called by DataLoader(pin_memory=True)
        return ImageBatch(
            self.images.pin_memory(),
            None if self.labels is None else self.labels.pin_memory(),
            self.indices.pin_memory(),
            self.failed,
        )

    def __len__(self) -> int:
        return int(self.indices.shape[0])


class ImageDataset(Dataset):
    """``sources[i]`` decoded with :func:`load_image`, transformed; returns ``(tensor, label, i)`` or a :class:`BadImage`.

    ``sources`` may mix paths, ``bytes``, file objects and ``PIL.Image`` objects. ``labels`` are integer class
    indices (or None). With ``policy.on_bad == "raise"`` the dataset still returns the marker: the loader raises in
    the main process, where the :class:`ImageError` keeps its ``file`` attribute.
    """

    def __init__(
        self,
        sources: Sequence[ImageSource],
        labels: Sequence[int] | None = None,
        transform: Callable[[Any], torch.Tensor] | None = None,
        policy: ImagePolicy | None = None,
        target_side: int | None = None,
    ) -> None:
        if labels is not None and len(labels) != len(sources):
            raise ValueError(f"{len(labels)} labels for {len(sources)} sources")
        self.sources = list(sources)
        self.labels = None if labels is None else [int(v) for v in labels]
        self.transform = transform or PreprocessSpec().geometry_transform()
        self.policy = policy or ImagePolicy()
        self.target_side = target_side

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int] | BadImage:
        source = self.sources[index]
        name = (
            describe_source(source)
            if isinstance(source, (str, os.PathLike))
            else describe_source(source, index)
        )
        in_worker = get_worker_info() is not None
        try:
            with contextlib.nullcontext() if in_worker else single_threaded_torch():
                image = load_image(source, self.policy, name=name, target_side=self.target_side)
                tensor = self.transform(image)
        except ImageError as exc:
            return BadImage(index, name, exc.reason)
        return tensor, (-1 if self.labels is None else self.labels[index]), index


class collate_images:
    """Stack good samples into an :class:`ImageBatch`, dropping and recording :class:`BadImage` markers."""

    def __init__(self, image_size: int, with_labels: bool) -> None:
        self.image_size = image_size
        self.with_labels = with_labels

    def __call__(self, samples: list[Any]) -> ImageBatch:
        good = [s for s in samples if not isinstance(s, BadImage)]
        failed = [s for s in samples if isinstance(s, BadImage)]
        if good:
            images = torch.stack([s[0] for s in good])
        else:
            images = torch.empty((0, 3, self.image_size, self.image_size), dtype=torch.uint8)
        labels = torch.tensor([s[1] for s in good], dtype=torch.int64) if self.with_labels else None
        indices = torch.tensor([s[2] for s in good], dtype=torch.int64)
        return ImageBatch(images, labels, indices, failed)


class ImageLoader(DataLoader):
    """``DataLoader`` yielding :class:`ImageBatch`; records dropped images in :attr:`failures` or raises per policy."""

    def __init__(self, dataset: ImageDataset, *args: Any, **kwargs: Any) -> None:
        super().__init__(dataset, *args, **kwargs)
        self.policy = dataset.policy
        self.failures: list[BadImage] = []

    def __iter__(self) -> Iterator[ImageBatch]:  # type: ignore[override]
        self.failures = []
        for batch in super().__iter__():
            if batch.failed:
                if self.policy.on_bad == "raise":
                    raise batch.failed[0].to_error()
                for bad in batch.failed:
                    log.debug("skipping image %s: %s", bad.file, bad.reason)
                self.failures.extend(batch.failed)
            if len(batch):
                yield batch


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch ops on one intra-op thread for the duration (restored after; a few microseconds to switch).

    Preprocessing one image is a handful of small tensor ops (resize, scale, normalise). On torch's multi-threaded
    pool each of them pays a parallel-region hand-off, which on a busy or oversubscribed machine (2 cores, a decoding
    worker, a neighbour process) costs milliseconds instead of microseconds: measured 40-80 ms per image instead of
    ~4 ms. DataLoader workers are single-threaded already; this gives in-process decoding the same footing.
    """
    saved = torch.get_num_threads()
    if saved == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def default_num_workers() -> int:
    """Decoding workers worth starting here: none on a single core, else up to 4 but never all the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 1 else min(4, max(1, cores // 2))


def make_loader(
    sources: Sequence[ImageSource],
    spec: PreprocessSpec,
    *,
    labels: Sequence[int] | None = None,
    train: bool = False,
    batch_size: int = 64,
    num_workers: int | None = None,
    policy: ImagePolicy | None = None,
    sampler: Sampler[int] | None = None,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    persistent_workers: bool | None = None,
    drop_last: bool = False,
) -> ImageLoader:
    """A DataLoader over ``sources`` with ``spec``'s train or eval geometry, yielding uint8 :class:`ImageBatch` es.

    * ``num_workers``: decoding processes (default :func:`default_num_workers`); in-memory sources (bytes, PIL images,
      file objects) are decoded in-process since shipping them to workers costs more than decoding them.
    * ``pin_memory`` only when CUDA is available; ``persistent_workers`` defaults to True for training loaders with
      workers (they are iterated once per epoch) and False otherwise.
    * ``generator`` seeds shuffling / sampling and the per-worker augmentation seeds (reproducible training).
    """
    if sampler is not None and shuffle:
        raise ValueError("pass either sampler or shuffle=True, not both")
    transform = spec.train_geometry() if train else spec.geometry_transform()
    dataset = ImageDataset(
        sources, labels=labels, transform=transform, policy=policy, target_side=spec.resize_size
    )
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if any(not isinstance(s, (str, os.PathLike)) for s in dataset.sources):
        workers = 0
    workers = min(workers, -(-len(dataset) // batch_size))  # never more workers than batches
    if persistent_workers is None:
        persistent_workers = train
    cuda = torch.cuda.is_available()
    return ImageLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_images(spec.image_size, labels is not None),
        pin_memory=cuda,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=bool(persistent_workers and workers > 0),
        prefetch_factor=2 if workers > 0 else None,
    )


# -- decoded pixels kept in memory across epochs ------------------------------------------------------------------------

#: Longest kept side over the shorter one in a :class:`PixelCache` entry (RandomResizedCrop's widest aspect ratio).
CACHE_ASPECT = 4 / 3


class _CacheEntryTransform:
    """PIL image -> ``(uint8 [3, h, w], top, left)``: shorter side resized to ``side``, the longer centre-cropped to
    at most ``side × CACHE_ASPECT``; ``top, left`` place the eval centre crop inside it exactly where
    :meth:`PreprocessSpec.geometry_transform` puts it in the uncropped resize."""

    def __init__(self, spec: PreprocessSpec) -> None:
        self.resize = v2.Resize(spec.resize_size, interpolation=spec._mode, antialias=spec.antialias)
        self.to_image = v2.ToImage()
        self.longest = PixelCache.longest_side(spec)
        self.crop = spec.image_size

    def __call__(self, image: Any) -> tuple[torch.Tensor, int, int]:
        pixels = self.resize(self.to_image(image)).as_subclass(torch.Tensor)
        height, width = int(pixels.shape[-2]), int(pixels.shape[-1])
        kept_h, kept_w = min(height, self.longest), min(width, self.longest)
        top0, left0 = round((height - kept_h) / 2.0), round((width - kept_w) / 2.0)
        top = round((height - self.crop) / 2.0) - top0  # torchvision's centre-crop anchor, shifted
        left = round((width - self.crop) / 2.0) - left0
        return pixels[:, top0 : top0 + kept_h, left0 : left0 + kept_w].contiguous(), top, left


def _keep_samples(samples: list[Any]) -> list[Any]:
    """Collate that keeps a batch as its list of samples (entries differ in shape)."""
    return samples


@dataclass(frozen=True)
class PixelCache:
    """Decoded, pre-downscaled uint8 photos in memory, so that training decodes each photo once, not every epoch.

    Entry ``i`` is photo ``i`` with its shorter side resized to ``spec.resize_size`` (the eval resize, same op) and
    its longer side centre-cropped to at most :data:`CACHE_ASPECT` times that, stored top-left in a square canvas
    ``pixels[i, :, :h, :w]`` (``sizes[i] = (h, w)``). :meth:`centre_crops` returns exactly the pixels of
    :meth:`PreprocessSpec.geometry_transform` (the eval geometry); training crops are drawn from the kept region by
    batched tensor ops (:mod:`fashion_reco.model.pixel_batches`). Memory: ``n × 3 × L²`` bytes with
    ``L = ceil(resize_size × 4/3)`` — 28 KB per photo at 64 px (106 MB for 3,781 photos), 349 KB at 224 px; see
    :meth:`estimate_bytes`. Photos that fail to decode are ``valid[i] == False`` and listed in ``failures``.
    """

    pixels: torch.Tensor
    sizes: torch.Tensor
    centres: torch.Tensor
    valid: torch.Tensor
    failures: tuple[BadImage, ...]
    image_size: int

    @staticmethod
    def longest_side(spec: PreprocessSpec) -> int:
        """Side of the square canvas: the longest kept side of an entry."""
        return math.ceil(spec.resize_size * CACHE_ASPECT)

    @classmethod
    def estimate_bytes(cls, count: int, spec: PreprocessSpec) -> int:
        """Bytes the cache of ``count`` photos takes (an upper bound known before decoding anything)."""
        return count * 3 * cls.longest_side(spec) ** 2

    @property
    def nbytes(self) -> int:
        """Bytes held by the pixel canvas."""
        return int(self.pixels.numel())

    def __len__(self) -> int:
        return int(self.valid.shape[0])

    @classmethod
    def build(
        cls,
        sources: Sequence[ImageSource],
        spec: PreprocessSpec,
        *,
        policy: ImagePolicy | None = None,
        num_workers: int | None = None,
        batch_size: int = 64,
    ) -> PixelCache:
        """Decode ``sources`` once (in ``num_workers`` processes, like :func:`make_loader`) into a cache.

        Bad images are recorded in ``failures`` (``valid`` False), or raise their :class:`ImageError` with
        ``policy.on_bad == "raise"``.
        """
        policy = policy or ImagePolicy()
        dataset = ImageDataset(
            sources,
            transform=_CacheEntryTransform(spec),  # type: ignore[arg-type]  # entries are (pixels, top, left)
            policy=policy,
            target_side=spec.resize_size,
        )
        workers = default_num_workers() if num_workers is None else int(num_workers)
        if any(not isinstance(s, (str, os.PathLike)) for s in dataset.sources):
            workers = 0
        workers = min(workers, -(-len(dataset) // batch_size))
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=_keep_samples,
            prefetch_factor=2 if workers > 0 else None,
        )
        side = cls.longest_side(spec)
        count = len(dataset)
        pixels = torch.zeros((count, 3, side, side), dtype=torch.uint8)
        sizes = torch.zeros((count, 2), dtype=torch.int64)
        centres = torch.zeros((count, 2), dtype=torch.int64)
        valid = torch.zeros(count, dtype=torch.bool)
        failures: list[BadImage] = []
        for samples in loader:
            for sample in samples:
                if isinstance(sample, BadImage):
                    if policy.on_bad == "raise":
                        raise sample.to_error()
                    log.debug("skipping image %s: %s", sample.file, sample.reason)
                    failures.append(sample)
                    continue
                (entry, top, left), _, i = sample
                height, width = int(entry.shape[-2]), int(entry.shape[-1])
                pixels[i, :, :height, :width] = entry
                sizes[i] = torch.tensor((height, width))
                centres[i] = torch.tensor((top, left))
                valid[i] = True
        return cls(pixels, sizes, centres, valid, tuple(failures), spec.image_size)

    def centre_crops(self, positions: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, 3, S, S]`` eval crops of the entries at ``positions`` (valid ones), one gather for the batch."""
        crop = self.image_size
        offsets = torch.arange(crop)
        rows = (self.centres[positions, 0, None] + offsets)[:, None, :, None]  # [B, 1, S, 1]
        cols = (self.centres[positions, 1, None] + offsets)[:, None, None, :]  # [B, 1, 1, S]
        batch = positions[:, None, None, None]
        channels = torch.arange(3)[None, :, None, None]
        return self.pixels[batch, channels, rows, cols]
