"""model layer: ResNet18 transfer learning, 512-d image embeddings, save/load with verification, ONNX export.

Public names are imported lazily (``from fashion_reco.model import ImageModel``) so importing the package is cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

# The precise types for checkers and editors; at run time each name is imported on first use.
if TYPE_CHECKING:
    from fashion_reco.model.image_model import EmbedResult, ImageModel
    from fashion_reco.model.metrics import ClassificationMetrics, classification_metrics
    from fashion_reco.model.network import build_resnet18, embedding_trunk
    from fashion_reco.model.onnx_export import OnnxEmbedder, export_onnx
    from fashion_reco.model.training import TrainResult, train_classifier, train_head_on_embeddings
    from fashion_reco.model.weights import ResolvedWeights, resolve_weights

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

__all__ = [
    "ClassificationMetrics",
    "EmbedResult",
    "ImageModel",
    "OnnxEmbedder",
    "ResolvedWeights",
    "TrainResult",
    "build_resnet18",
    "classification_metrics",
    "embedding_trunk",
    "export_onnx",
    "resolve_weights",
    "train_classifier",
    "train_head_on_embeddings",
]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(f"fashion_reco.model.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fashion_reco.model' has no attribute {name!r}")
