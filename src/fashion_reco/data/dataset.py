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
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from fashion_reco.data.images import ImagePolicy, ImageSource, describe_source, load_image
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ImageError

__all__ = [
    "BadImage",
    "ImageBatch",
    "ImageDataset",
    "ImageLoader",
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
