"""ImageModel embeddings on real photos: shape, norm, invariance to batch size / input type / memory format, save-load."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashion_reco.config import ModelConfig
from fashion_reco.data.images import ImagePolicy
from fashion_reco.errors import ImageError, ModelError, WeightsUnavailableError
from fashion_reco.model.image_model import EmbedResult, ImageModel


@pytest.fixture(scope="module")
def reference(small_model: ImageModel, few_photos: list[Path]) -> np.ndarray:
    return small_model.embed(few_photos, batch_size=32, num_workers=1)


def test_embeddings_are_512d_float32_unit_norm(reference: np.ndarray, few_photos: list[Path]) -> None:
    assert reference.shape == (len(few_photos), 512) and reference.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(reference).all()
    assert np.abs(reference[0] - reference[-1]).max() > 1e-3, "different photos, different embeddings"


@pytest.mark.parametrize("batch_size", [1, 7])
def test_same_embeddings_across_batch_sizes(
    small_model: ImageModel, few_photos: list[Path], reference: np.ndarray, batch_size: int
) -> None:
    subset = few_photos[:8] if batch_size == 1 else few_photos
    out = small_model.embed(subset, batch_size=batch_size, num_workers=0 if batch_size == 1 else 2)
    np.testing.assert_allclose(out, reference[: len(subset)], atol=1e-5, rtol=0)


def test_every_input_type_gives_the_same_embedding(
    small_model: ImageModel, few_photos: list[Path], reference: np.ndarray, clothing_dir: Path
) -> None:
    from fashion_reco.data.datasets import load_clothing

    photos = few_photos[:4]
    data = [p.read_bytes() for p in photos]
    pil = [Image.open(io.BytesIO(d)) for d in data]
    expected = reference[:4]
    for sources in ([str(p) for p in photos], photos, data, [io.BytesIO(d) for d in data], pil):
        np.testing.assert_allclose(small_model.embed(sources, num_workers=0), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(small_model.embed_bytes(data, batch_size=3), expected, atol=1e-5, rtol=0)
    single = small_model.embed(photos[0])
    assert single.shape == (1, 512)
    catalogue = load_clothing(clothing_dir.parent)
    ids = catalogue.items.set_index("image_path").loc[[str(p) for p in photos], "item_id"].tolist()
    subset = catalogue.subset(ids)
    order = [subset.image_paths.index(str(p)) for p in photos]
    np.testing.assert_allclose(small_model.embed(subset)[order], expected, atol=1e-5, rtol=0)


def test_channels_last_on_and_off_agree(
    small_model: ImageModel, few_photos: list[Path], reference: np.ndarray
) -> None:
    assert small_model.channels_last
    try:
        small_model.channels_last = False
        plain = small_model.embed(few_photos[:8], num_workers=0)
    finally:
        small_model.channels_last = True
    np.testing.assert_allclose(plain, reference[:8], atol=1e-5, rtol=0)


def test_save_load_round_trip(
    small_model: ImageModel, few_photos: list[Path], reference: np.ndarray, tmp_path: Path
) -> None:
    small_model.save(tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    weights = list(tmp_path.glob("weights-*.safetensors"))
    assert [w.name for w in weights] == [meta["weights_file"]]
    assert meta["weights_file"] == f"weights-{meta['weights_sha256'][:12]}.safetensors"
    assert meta["classes"] == small_model.classes and meta["architecture"] == "resnet18"
    assert meta["embedding_dim"] == 512 and meta["preprocess"]["image_size"] == 64
    assert "library_version" in meta and "history" in meta and "metrics" in meta
    loaded = ImageModel.load(tmp_path)
    assert loaded.classes == small_model.classes and loaded.preprocess == small_model.preprocess
    np.testing.assert_allclose(loaded.embed(few_photos, num_workers=0), reference, atol=1e-6, rtol=0)
    # saving again unchanged reuses the file; a changed model replaces it and the old payload is removed
    small_model.save(tmp_path)
    assert [w.name for w in tmp_path.glob("weights-*.safetensors")] == [meta["weights_file"]]
    loaded.net.fc.weight.data += 1
    loaded.save(tmp_path)
    remaining = [w.name for w in tmp_path.glob("weights-*.safetensors")]
    assert len(remaining) == 1 and remaining[0] != meta["weights_file"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_predict(small_model: ImageModel, few_photos: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    frame = small_model.predict([*few_photos[:3], bad, few_photos[3]], num_workers=0)
    assert list(frame.columns) == ["label", "score"]
    assert frame.index.tolist() == [0, 1, 2, 4]
    assert set(frame["label"]) <= set(small_model.classes)
    assert ((frame["score"] > 0) & (frame["score"] <= 1)).all()
    with pytest.raises(ImageError):
        small_model.predict([bad], policy=ImagePolicy(on_bad="raise"))
    assert small_model.predict([]).empty


def test_bad_inputs_raise_or_are_returned(
    small_model: ImageModel, few_photos: list[Path], reference: np.ndarray
) -> None:
    blobs = [few_photos[0].read_bytes(), b"not an image", few_photos[1].read_bytes()]
    with pytest.raises(ImageError, match=r"<bytes>\[1\]"):
        small_model.embed_bytes(blobs)
    result = small_model.embed_bytes(blobs, return_failed=True)
    assert isinstance(result, EmbedResult)
    assert result.indices.tolist() == [0, 2] and [b.index for b in result.failed] == [1]
    np.testing.assert_allclose(result.embeddings, reference[:2], atol=1e-5, rtol=0)
    with pytest.raises(ImageError):
        small_model.embed_bytes(blobs, policy=ImagePolicy(on_bad="raise"), return_failed=True)
    empty = small_model.embed([])
    assert empty.shape == (0, 512)


def test_construction_errors() -> None:
    with pytest.raises(ModelError):
        ImageModel.untrained([])
    with pytest.raises(WeightsUnavailableError):
        ImageModel.untrained(["a", "b"], ModelConfig(weights="NOPE"))
    model = ImageModel.untrained(["a", "b"], ModelConfig(image_size=32))
    with pytest.raises(ModelError, match="outputs"):
        ImageModel(model.net, ["a", "b", "c"], model.preprocess)
    assert "2 classes" in repr(model) and isinstance(model.predict([]), pd.DataFrame)
