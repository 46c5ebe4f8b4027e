"""ImageDataset / make_loader: batches, dropped bad images, raising per policy, workers, reproducible shuffling."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from fashion_reco.data.dataset import ImageBatch, ImageDataset, default_num_workers, make_loader
from fashion_reco.data.images import ImagePolicy
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ImageError

SPEC = PreprocessSpec(image_size=32, resize_size=37)


@pytest.fixture()
def mixed(tmp_path: Path, few_photos: list[Path]) -> list[str]:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    paths = [str(p) for p in few_photos[:9]]
    paths.insert(4, str(bad))
    return paths


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_images_are_dropped_and_reported(mixed: list[str], workers: int) -> None:
    loader = make_loader(mixed, SPEC, labels=list(range(10)), batch_size=4, num_workers=workers)
    batches = list(loader)
    assert all(isinstance(b, ImageBatch) for b in batches)
    indices = torch.cat([b.indices for b in batches]).tolist()
    assert indices == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    labels = torch.cat([b.labels for b in batches if b.labels is not None]).tolist()
    assert labels == indices
    assert batches[0].images.shape == (4, 3, 32, 32) and batches[0].images.dtype == torch.uint8
    assert [(f.index, Path(f.file).name) for f in loader.failures] == [(4, "broken.jpg")]
    assert "cannot decode" in loader.failures[0].reason or "not an image" in loader.failures[0].reason
    assert loader.num_workers == workers and loader.pin_memory == torch.cuda.is_available()


def test_raise_policy_raises_in_the_main_process(mixed: list[str]) -> None:
    loader = make_loader(mixed, SPEC, batch_size=4, num_workers=1, policy=ImagePolicy(on_bad="raise"))
    with pytest.raises(ImageError) as info:
        list(loader)
    assert Path(info.value.file).name == "broken.jpg"


def test_all_bad_batch_is_skipped(tmp_path: Path, few_photos: list[Path]) -> None:
    bad = [tmp_path / f"bad{i}.jpg" for i in range(3)]
    for path in bad:
        path.write_bytes(b"")
    loader = make_loader([*bad, few_photos[0]], SPEC, batch_size=3, num_workers=0)
    batches = list(loader)
    assert len(batches) == 1 and batches[0].indices.tolist() == [3] and batches[0].labels is None
    assert len(loader.failures) == 3


def test_in_memory_sources_decode_in_process(few_photos: list[Path]) -> None:
    data = few_photos[0].read_bytes()
    sources = [data, io.BytesIO(data), Image.open(io.BytesIO(data)), str(few_photos[0])]
    loader = make_loader(sources, SPEC, batch_size=4, num_workers=2)
    assert loader.num_workers == 0
    (batch,) = list(loader)
    for i in (1, 3):  # bytes, file object and path: the same decoder settings, the same pixels
        torch.testing.assert_close(batch.images[i], batch.images[0])
    # an already decoded PIL image is used as given (full scale), the others are DCT-scaled for a 37 px resize:
    difference = (batch.images[2].float() - batch.images[0].float()).abs()
    assert difference.mean() < 1.0 and difference.max() <= 8


def test_training_loader_is_reproducible(few_photos: list[Path]) -> None:
    def run() -> list[torch.Tensor]:
        loader = make_loader(
            few_photos[:12],
            SPEC,
            labels=[0] * 12,
            train=True,
            shuffle=True,
            batch_size=4,
            num_workers=1,
            generator=torch.Generator().manual_seed(3),
        )
        assert loader.persistent_workers
        return [b.images for b in loader] + [b.indices for b in loader]

    first, second = run(), run()
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)


def test_dataset_and_arguments(few_photos: list[Path]) -> None:
    dataset = ImageDataset(few_photos[:2], labels=[1, 0], transform=SPEC.eval_transform())
    tensor, label, index = dataset[1]
    assert tensor.shape == (3, 32, 32) and (label, index) == (0, 1)
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(few_photos[:2], labels=[1])
    with pytest.raises(ValueError, match="sampler"):
        make_loader(few_photos[:2], SPEC, sampler=range(2), shuffle=True)  # type: ignore[arg-type]
    assert make_loader([], SPEC).num_workers == 0
    assert 0 <= default_num_workers() <= 4
