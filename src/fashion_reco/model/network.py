"""ResNet18 the torchvision way, with a new classification head for the catalogue's own classes.

Two heads (``ModelConfig.head``):

* ``"cosine"`` (default): :class:`CosineClassifier`, a normalised-softmax classifier. The pooled 512-d features are
  standardised (``BatchNorm1d``) and L2-normalised into the **embedding**, and the logits are ``scale ·`` cosine to
  L2-normalised class weights, optionally with an additive angular margin on the true class (ArcFace, Deng et al.
  2019). The embedding the library serves is exactly the one the loss shaped, which is what makes classification a
  strong baseline for metric learning (Zhai & Wu 2019, "Classification is a Strong Baseline for Deep Metric
  Learning": NormSoftmax). Standardising first also centres the features: ReLU-pooled features are all positive, so
  their raw cosines sit high (about 0.9) whatever the images.
* ``"linear"``: torchvision's ``nn.Linear`` on the pooled features (format-1 artefacts); the embedding is the pooled
  features L2-normalised, which the loss never saw.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
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
    "HEADS",
    "CosineClassifier",
    "EmbeddingHead",
    "EmbeddingNetwork",
    "backbone_parameters",
    "build_resnet18",
    "default_device",
    "embed_features",
    "embedding_trunk",
    "head_spec",
    "logits_for_training",
]

DEVICE_ENV = "FASHION_RECO_DEVICE"

_HEAD_PREFIX = "fc."
HEADS = ("cosine", "linear")


class CosineClassifier(nn.Module):
    """BatchNorm → L2-normalise (the embedding) → ``scale ·`` cosine to normalised class weights (+ angular margin).

    ``margin`` (radians) is added to the angle of the true class in :meth:`training_logits` only (ArcFace); inference
    logits are plain ``scale · cos``. ``out_features`` mirrors ``nn.Linear`` so code sizing the head works with both.
    """

    def __init__(
        self, in_features: int, num_classes: int, *, scale: float = 16.0, margin: float = 0.0
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ModelError(f"cosine scale must be > 0, got {scale}")
        if not 0.0 <= margin < math.pi / 2:
            raise ModelError(f"angular margin must be in [0, pi/2), got {margin}")
        self.in_features = in_features
        self.out_features = num_classes
        self.scale = float(scale)
        self.margin = float(margin)
        self.norm = nn.BatchNorm1d(in_features)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=in_features**-0.5)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, in]`` → L2-normalised embeddings ``[B, in]`` (what retrieval uses)."""
        return nn.functional.normalize(self.norm(features), dim=1)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine of normalised embeddings to every class weight ``[B, k]``."""
        return embeddings @ nn.functional.normalize(self.weight, dim=1).t()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosine(self.embed(features))

    def training_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits with the additive angular margin on each row's true class (equal to ``forward`` when margin 0)."""
        cos = self.cosine(self.embed(features))
        if self.margin > 0:
            target = cos.gather(1, labels[:, None]).clamp(-1 + 1e-6, 1 - 1e-6)
            shifted = torch.cos(torch.clamp(torch.acos(target) + self.margin, max=math.pi))
            cos = cos.scatter(1, labels[:, None], shifted)
        return self.scale * cos

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale}, margin={self.margin}"


def head_spec(net: ResNet) -> dict[str, Any]:
    """The head as recorded in a saved model: ``{"type": "cosine", "scale": ..., "margin": ...}`` or linear."""
    if isinstance(net.fc, CosineClassifier):
        return {"type": "cosine", "scale": net.fc.scale, "margin": net.fc.margin}
    return {"type": "linear"}


def _make_head(num_classes: int, head: str, scale: float, margin: float) -> nn.Module:
    if head == "cosine":
        return CosineClassifier(EMBEDDING_DIM, num_classes, scale=scale, margin=margin)
    if head == "linear":
        return nn.Linear(EMBEDDING_DIM, num_classes)
    raise ModelError(f"unknown head {head!r}; supported: {', '.join(HEADS)}")


def default_device() -> torch.device:
    """``$FASHION_RECO_DEVICE`` when set (``cpu``, ``cuda``, ``cuda:1``...), else CUDA when available, else CPU."""
    name = os.environ.get(DEVICE_ENV, "").strip()
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_resnet18(
    num_classes: int,
    weights: WeightsLike | ResolvedWeights = None,
    *,
    allow_download: bool | None = None,
    head: str = "linear",
    scale: float = 16.0,
    margin: float = 0.0,
) -> ResNet:
    """torchvision ResNet18 with a ``num_classes``-way ``fc`` head (``head``: ``"linear"`` or ``"cosine"``).

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
    net.fc = _make_head(num_classes, head, scale, margin)
    state = resolved.state_dict()
    if state is not None:
        load_backbone(net, state, source=resolved.description, file=resolved.path)
    return net


def load_backbone(
    net: ResNet, state: dict[str, torch.Tensor], *, source: str, file: Path | None = None
) -> None:
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
    own_head = {k for k in own if k.startswith(_HEAD_PREFIX)}
    if head.keys() == own_head and all(head[k].shape == own[k].shape for k in head):
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


def embed_features(fc: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """The served embedding of pooled ``features``: the cosine head's normalised layer, else the features normalised."""
    if isinstance(fc, CosineClassifier):
        return fc.embed(features)
    return nn.functional.normalize(features, dim=1)


def logits_for_training(net: ResNet, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Training logits of pooled ``features``: with the angular margin when the head is a margin cosine head."""
    if isinstance(net.fc, CosineClassifier):
        return net.fc.training_logits(features, labels)
    return net.fc(features)


class EmbeddingNetwork(nn.Module):
    """Images → served L2-normalised embeddings only (shares parameters with ``net``; for ONNX export)."""

    def __init__(self, net: ResNet) -> None:
        super().__init__()
        self.trunk = embedding_trunk(net)
        self.fc = net.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return embed_features(self.fc, self.trunk(x))


class EmbeddingHead(nn.Module):
    """Trunk + classifier in one pass: returns ``(L2-normalised embeddings, logits)``."""

    def __init__(self, net: ResNet) -> None:
        super().__init__()
        self.trunk = embedding_trunk(net)
        self.fc = net.fc

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        if isinstance(self.fc, CosineClassifier):
            embeddings = self.fc.embed(features)
            return embeddings, self.fc.scale * self.fc.cosine(embeddings)
        return nn.functional.normalize(features, dim=1), self.fc(features)
