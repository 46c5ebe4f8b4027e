"""model layer: ResNet18 transfer learning, 512-d image embeddings, save/load with verification, ONNX export.

Public names are imported lazily (``from fashion_reco.model import ImageModel``) so importing the package is cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ImageModel": "image_model",
    "EmbedResult": "image_model",
    "ClassificationMetrics": "metrics",
    "classification_metrics": "metrics",
    "build_resnet18": "network",
    "embedding_trunk": "network",
    "resolve_weights": "weights",
    "ResolvedWeights": "weights",
    "train_classifier": "training",
    "train_head_on_embeddings": "training",
    "TrainResult": "training",
    "export_onnx": "onnx_export",
    "OnnxEmbedder": "onnx_export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"fashion_reco.model.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fashion_reco.model' has no attribute {name!r}")
