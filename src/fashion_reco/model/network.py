"""ResNet18 the torchvision way, with a new classification head for the catalogue's own classes."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet, resnet18

from fashion_reco.config import EMBEDDING_DIM  # re-exported: the one home is fashion_reco.config
from fashion_reco.errors import ModelError, WeightsUnavailableError
from fashion_reco.model.weights import ResolvedWeights, WeightsLike, resolve_weights

__all__ = [
    "DEVICE_ENV",
    "EMBEDDING_DIM",
    "EmbeddingHead",
    "backbone_parameters",
    "build_resnet18",
    "default_device",
    "embedding_trunk",
]

DEVICE_ENV = "FASHION_RECO_DEVICE"

_HEAD_PREFIX = "fc."


def default_device() -> torch.device:
    """``$FASHION_RECO_DEVICE`` when set (``cpu``, ``cuda``, ``cuda:1``...), else CUDA when available, else CPU."""
    name = os.environ.get(DEVICE_ENV, "").strip()
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_resnet18(
    num_classes: int, weights: WeightsLike | ResolvedWeights = None, *, allow_download: bool | None = None
) -> ResNet:
    """torchvision ResNet18 with a ``num_classes``-way ``fc`` head.

    ``weights`` is anything :func:`fashion_reco.model.weights.resolve_weights` accepts. The backbone (every layer but
    ``fc``) is loaded strictly from the weights; the head is always freshly initialised unless the weights file
    already has a head of exactly ``num_classes`` outputs (a model fine-tuned on the same classes).
    """
    if num_classes < 1:
        raise ModelError(f"num_classes must be >= 1, got {num_classes}")
    resolved = (
        weights
        if isinstance(weights, ResolvedWeights)
        else resolve_weights(weights, allow_download=allow_download)
    )
    net = resnet18(weights=None, num_classes=num_classes)
    state = resolved.state_dict()
    if state is not None:
        load_backbone(net, state, source=resolved.description, file=resolved.path)
    return net


def load_backbone(net: ResNet, state: dict[str, torch.Tensor], *, source: str, file: Any = None) -> None:
    """Load every non-head tensor of ``state`` into ``net`` strictly; keep the head if its shape matches."""
    own = net.state_dict()
    backbone = {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIX)}
    expected = {k for k in own if not k.startswith(_HEAD_PREFIX)}
    missing = sorted(expected - backbone.keys())
    unexpected = sorted(backbone.keys() - expected)
    wrong = sorted(k for k in expected & backbone.keys() if tuple(backbone[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing[:5]}" if missing else "",
                f"unexpected {unexpected[:5]}" if unexpected else "",
                f"wrong shapes {wrong[:5]}" if wrong else "",
            )
            if part
        )
        raise WeightsUnavailableError(f"{source} is not a ResNet18 state_dict: {detail}", file=file)
    head = {k: v for k, v in state.items() if k.startswith(_HEAD_PREFIX)}
    if head.keys() == {"fc.weight", "fc.bias"} and all(head[k].shape == own[k].shape for k in head):
        backbone.update(head)
    net.load_state_dict(backbone, strict=False)


def embedding_trunk(net: ResNet) -> nn.Sequential:
    """Everything up to the global-average-pooled 512-d features (shares parameters with ``net``)."""
    return nn.Sequential(
        net.conv1,
        net.bn1,
        net.relu,
        net.maxpool,
        net.layer1,
        net.layer2,
        net.layer3,
        net.layer4,
        net.avgpool,
        nn.Flatten(1),
    )


def backbone_parameters(net: ResNet) -> list[nn.Parameter]:
    """All parameters except the ``fc`` head."""
    return [p for name, p in net.named_parameters() if not name.startswith(_HEAD_PREFIX)]


class EmbeddingHead(nn.Module):
    """Trunk + classifier in one pass: returns ``(L2-normalised embeddings, logits)``."""

    def __init__(self, net: ResNet) -> None:
        super().__init__()
        self.trunk = embedding_trunk(net)
        self.fc = net.fc

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return nn.functional.normalize(features, dim=1), self.fc(features)
