"""ONNX export of the embedding trunk matches torch (L2-normalised outputs within 1e-4), with a dynamic batch axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fashion_reco.model.image_model import ImageModel

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from fashion_reco.model.onnx_export import OnnxEmbedder, export_onnx


def test_onnx_matches_torch(small_model: ImageModel, few_photos: list[Path], tmp_path: Path) -> None:
    target = export_onnx(small_model, tmp_path / "embed.onnx")
    assert target.is_file() and not list(tmp_path.glob(".*.tmp"))
    assert small_model.channels_last, "export must leave the model's memory format alone"
    embedder = OnnxEmbedder(target, num_threads=2)
    assert embedder.classes == small_model.classes and embedder.preprocess == small_model.preprocess
    expected = small_model.embed(few_photos[:9], num_workers=0)
    got = embedder.embed(few_photos[:9], batch_size=4)  # batches of 4, 4 and 1: the batch axis is dynamic
    assert got.shape == (9, 512) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-4
    geometry = small_model.preprocess.geometry_transform()
    from fashion_reco.data.images import load_image

    batch = torch.stack([geometry(load_image(p)) for p in few_photos[:2]]).float() / 255
    assert np.abs(embedder.embed_tensor(batch) - expected[:2]).max() <= 1e-4
