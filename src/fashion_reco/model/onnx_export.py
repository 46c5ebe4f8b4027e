"""Export the embedding trunk to ONNX and run it with onnxruntime (no torch needed at inference).

The exported graph takes ``images``: float32 ``[batch, 3, S, S]`` with values in ``[0, 1]`` (resized and centre
cropped, not normalised) and returns ``embeddings``: float32 ``[batch, 512]``, L2-normalised. The ImageNet
normalisation and the L2 normalisation are inside the graph; the batch axis is dynamic. The preprocessing spec is
stored in the model's ``metadata_props`` (key ``fashion_reco.preprocess``), so :class:`OnnxEmbedder` can also take
image files or bytes directly.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from fashion_reco.atomic import atomic_write_bytes
from fashion_reco.data.dataset import single_threaded_torch
from fashion_reco.data.images import ImagePolicy, ImageSource, load_image
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ModelError
from fashion_reco.model.network import EmbeddingNetwork
from fashion_reco.onnx_session import SPEC_KEY, open_onnx_session

if TYPE_CHECKING:
    from fashion_reco.model.image_model import ImageModel

__all__ = ["OnnxEmbedder", "export_onnx"]

_SPEC_KEY = SPEC_KEY
_CLASSES_KEY = "fashion_reco.classes"


class _NormalisedEmbedding(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, network: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images - self.mean) / self.std)


def export_onnx(image_model: ImageModel, path: str | os.PathLike[str], *, opset: int = 17) -> Path:
    """Write ``image_model``'s embedding trunk (+ normalisation) to ``path`` atomically; returns the path."""
    import onnx

    spec: PreprocessSpec = image_model.preprocess
    # a CPU, contiguous-format copy: the caller's model keeps its device and memory format
    net = copy.deepcopy(image_model.net).cpu().to(memory_format=torch.contiguous_format)
    module = _NormalisedEmbedding(EmbeddingNetwork(net), spec.mean, spec.std).eval()
    example = torch.rand(2, 3, spec.image_size, spec.image_size)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                buffer,  # type: ignore[arg-type]  # the TorchScript exporter (dynamo=False) writes file objects
                input_names=["images"],
                output_names=["embeddings"],
                dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        raise ModelError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in (
        (_SPEC_KEY, json.dumps(spec.to_dict())),
        (_CLASSES_KEY, json.dumps(image_model.classes)),
    ):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    target = Path(path)
    atomic_write_bytes(target, proto.SerializeToString())
    return target


class OnnxEmbedder:
    """Run an exported embedding model with onnxruntime (CPU)."""

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.session, props = open_onnx_session(self.path, num_threads)
        self.preprocess = (
            PreprocessSpec.from_dict(json.loads(props[_SPEC_KEY])) if _SPEC_KEY in props else None
        )
        self.classes = json.loads(props[_CLASSES_KEY]) if _CLASSES_KEY in props else None
        self.input_name = self.session.get_inputs()[0].name

    def embed_tensor(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """``[B, 3, S, S]`` float values in ``[0, 1]`` -> ``[B, 512]`` float32 L2-normalised embeddings."""
        array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        array = np.ascontiguousarray(array, dtype=np.float32)
        return self.session.run(None, {self.input_name: array})[0]

    def embed(
        self, sources: Sequence[ImageSource], *, batch_size: int = 64, policy: ImagePolicy | None = None
    ) -> np.ndarray:
        """Decode, resize and crop ``sources`` per the stored spec, then embed (raises on a bad image)."""
        if self.preprocess is None:
            raise ModelError("this ONNX file carries no preprocessing spec; use embed_tensor", file=self.path)
        geometry = self.preprocess.geometry_transform()
        policy = (policy or ImagePolicy()).model_copy(update={"on_bad": "raise"})
        out = []
        for start in range(0, len(sources), batch_size):
            with single_threaded_torch():
                side = self.preprocess.resize_size
                chunk = [
                    geometry(load_image(s, policy, target_side=side))
                    for s in sources[start : start + batch_size]
                ]
                batch = torch.stack(chunk).float() / 255.0
            out.append(self.embed_tensor(batch))
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)
