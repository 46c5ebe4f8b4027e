"""The in-memory pixel cache and the batched augmentation training draws from it, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import WeightedRandomSampler

from fashion_reco.config import ModelConfig
from fashion_reco.data.dataset import PixelCache, make_loader
from fashion_reco.data.images import ImagePolicy
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ImageError
from fashion_reco.model.pixel_batches import CachedBatches, colour_jitter, random_resized_crops
from fashion_reco.model.training import train_classifier

SPEC = PreprocessSpec(image_size=32, resize_size=37)


@pytest.fixture(scope="module")
def sources(few_photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twelve real photos with a corrupt file at position 5."""
    bad = tmp_path_factory.mktemp("bad") / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    return [*few_photos[:5], bad, *few_photos[5:11]]


@pytest.fixture(scope="module")
def cache(sources: list[Path]) -> PixelCache:
    return PixelCache.build(sources, SPEC, num_workers=0)


def test_cache_eval_crops_equal_the_streaming_eval_geometry_bit_for_bit(
    cache: PixelCache, sources: list[Path]
) -> None:
    streamed = torch.cat([batch.images for batch in make_loader(sources, SPEC, num_workers=0)])
    assert torch.equal(cache.centre_crops(torch.nonzero(cache.valid).flatten()), streamed)
    assert cache.valid.tolist() == [i != 5 for i in range(12)]
    assert [(bad.index, Path(bad.file).name) for bad in cache.failures] == [(5, "broken.jpg")]
    assert cache.nbytes <= PixelCache.estimate_bytes(len(sources), SPEC)
    # shorter side at the eval resize, longer side kept up to 4/3 of it
    kept = cache.sizes[cache.valid]
    assert (kept.min(dim=1).values == SPEC.resize_size).all()
    assert (kept.max(dim=1).values <= PixelCache.longest_side(SPEC)).all()


def test_cache_raises_on_a_bad_photo_when_asked(sources: list[Path]) -> None:
    with pytest.raises(ImageError, match=r"broken\.jpg"):
        PixelCache.build(sources, SPEC, policy=ImagePolicy(on_bad="raise"), num_workers=0)


def test_random_resized_crops_are_seeded_in_range_and_full_crops_keep_colour(cache: PixelCache) -> None:
    positions = torch.tensor([0, 1, 2, 6])
    crops = [
        random_resized_crops(cache, positions, 24, (0.3, 1.0), torch.Generator().manual_seed(1)) for _ in "ab"
    ]
    assert crops[0].shape == (4, 3, 24, 24) and torch.equal(crops[0], crops[1])
    assert 0 <= float(crops[0].min()) and float(crops[0].max()) <= 255
    other = random_resized_crops(cache, positions, 24, (0.3, 1.0), torch.Generator().manual_seed(2))
    assert not torch.equal(crops[0], other)
    # a flat photo stays flat whatever the box
    flat = PixelCache(
        torch.full((1, 3, 10, 10), 77, dtype=torch.uint8),
        torch.tensor([[8, 10]]),
        torch.zeros((1, 2), dtype=torch.int64),
        torch.tensor([True]),
        (),
        8,
    )
    crop = random_resized_crops(
        flat, torch.tensor([0, 0, 0]), 8, (0.1, 1.0), torch.Generator().manual_seed(0)
    )
    assert torch.allclose(crop, torch.full_like(crop, 77.0), atol=1e-3)


def test_colour_jitter_identity_at_zero_and_gray_stays_gray() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((4, 3, 8, 8), generator=generator) * 255
    assert torch.allclose(colour_jitter(images.clone(), 0.0, generator), images, atol=1e-3)
    gray = torch.rand((4, 1, 8, 8), generator=generator).expand(4, 3, 8, 8) * 200 + 20
    jittered = colour_jitter(gray.clone(), 0.4, generator)
    assert torch.allclose(jittered[:, 0], jittered[:, 1], atol=1e-2)  # hue and saturation move chroma only
    assert torch.allclose(jittered[:, 1], jittered[:, 2], atol=1e-2)
    assert not torch.allclose(jittered, gray, atol=1.0)  # brightness and contrast still act


def test_cached_batches_cover_good_photos_once_and_list_the_bad(cache: PixelCache) -> None:
    split = np.arange(3, 12)  # entries 3..11 of the cache: entry 5 (split position 2) is the broken photo
    labels = np.arange(9) % 3
    loader = CachedBatches(
        cache, split, SPEC, labels=labels, batch_size=4, train=True, shuffle=True, generator=torch.Generator()
    )
    batches = list(loader)
    seen = torch.cat([b.indices for b in batches]).tolist()
    assert sorted(seen) == [0, 1, 3, 4, 5, 6, 7, 8] and len(batches) == len(loader) == 2
    assert all(b.images.dtype == torch.float32 and b.images.shape[1:] == (3, 32, 32) for b in batches)
    assert torch.equal(
        torch.cat([b.labels for b in batches if b.labels is not None]), torch.as_tensor(labels[seen])
    )
    assert [(bad.index, Path(bad.file).name) for bad in loader.failures] == [(2, "broken.jpg")]
    dropping = CachedBatches(cache, split, SPEC, batch_size=3, train=True, drop_last=True)
    assert len(dropping) == 2 and all(len(b) == 3 for b in dropping)
    evaluation = CachedBatches(cache, split, SPEC, batch_size=4)
    crops = torch.cat([b.images for b in evaluation])
    in_order = torch.as_tensor(split[[0, 1, 3, 4, 5, 6, 7, 8]])
    assert crops.dtype == torch.uint8 and torch.equal(crops, cache.centre_crops(in_order))
    weights = [0.0] * 8 + [1.0]  # the sampler only ever draws split position 8
    sampled = CachedBatches(
        cache, split, SPEC, batch_size=4, train=True, sampler=WeightedRandomSampler(weights, 9)
    )
    assert set(torch.cat([b.indices for b in sampled]).tolist()) == {8}


@pytest.fixture(scope="module")
def with_broken_photo(few_photos: list[Path], sources: list[Path]) -> pd.DataFrame:
    """The 30 photos (labelled by their class folder) and a corrupt one."""
    rows = [
        {"item_id": f"p{i}", "image_path": str(p), "label": p.parent.name} for i, p in enumerate(few_photos)
    ]
    rows.append({"item_id": "broken", "image_path": str(sources[5]), "label": "dress"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("pixel_cache_mb", [512, 0], ids=["cached", "streamed"])
def test_training_skips_and_lists_a_broken_photo_cached_or_streamed(
    with_broken_photo: pd.DataFrame, pixel_cache_mb: int
) -> None:
    config = ModelConfig(
        image_size=32, finetune_epochs=1, batch_size=8, pixel_cache_mb=pixel_cache_mb, seed=1
    )
    result = train_classifier(with_broken_photo, config, num_workers=0, progress=False)
    assert [Path(bad.file).name for bad in result.failed_images] == ["broken.jpg"]
    assert len(result.history) == 1 and result.history[0]["images"] > 0


def test_training_with_a_broken_photo_raises_when_asked(with_broken_photo: pd.DataFrame) -> None:
    config = ModelConfig(image_size=32, finetune_epochs=1, batch_size=8, seed=1)
    with pytest.raises(ImageError, match=r"broken\.jpg"):
        train_classifier(
            with_broken_photo, config, policy=ImagePolicy(on_bad="raise"), num_workers=0, progress=False
        )


def test_training_streams_when_the_cache_would_exceed_half_the_available_memory(
    with_broken_photo: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fashion_reco.model import training

    monkeypatch.setattr(training, "_available_memory", lambda: 0)
    config = ModelConfig(image_size=32, finetune_epochs=1, batch_size=8, seed=1)
    with caplog.at_level("INFO", logger="fashion_reco.model.training"):
        result = train_classifier(with_broken_photo, config, num_workers=0, progress=False)
    assert "streaming photos from disk every epoch" in caplog.text
    assert "pixel cache" not in caplog.text
    assert [Path(bad.file).name for bad in result.failed_images] == ["broken.jpg"]
