"""``ImageModel``: the fine-tuned ResNet18 with its classes and preprocessing, as one saveable object.

Embeddings are the cosine head's normalised layer (the global-average-pooled 512-d features, standardised and
L2-normalised: exactly what the loss shaped; see :mod:`fashion_reco.model.network`) or, for a linear head, the pooled
features L2-normalised; float32, computed
under ``torch.inference_mode()`` in channels-last memory format, optionally through ``torch.compile``. Inputs may be
paths, ``bytes``, binary file objects, ``PIL.Image`` objects, or a ``Catalogue`` (its ``image_paths``); paths are
decoded in DataLoader worker processes so decoding overlaps the network's compute.

**Bad images.** With ``policy.on_bad == "raise"`` the first bad image raises :class:`ImageError` naming it. With
``"skip"`` (the default), :meth:`ImageModel.embed` still raises unless the caller asks for the failures with
``return_failed=True`` — an array silently shorter than its input would misalign every downstream join. With
``return_failed=True`` it returns an :class:`EmbedResult` ``(embeddings, indices, failed)``: one row per *usable*
input, ``indices`` their positions in the input, ``failed`` the :class:`BadImage` records (position, file, reason).
:meth:`ImageModel.predict` returns a DataFrame indexed by input position, so it simply leaves bad images out.

**Artefact layout** (``save(dir)``)::

    dir/weights-<sha12>.safetensors   the network's state_dict (content-addressed)
    dir/metadata.json                  classes, preprocessing, architecture, head, metrics, history, weights sha256 + name

Format version 2 added ``head`` (``{"type": "cosine", "scale": 16.0, "margin": 0.0}`` or ``{"type": "linear"}``);
version-1 files (no ``head``: a linear head) still load. A library that only knows version 1 refuses version-2 files
with an error saying to upgrade, instead of failing on the unexpected head tensors.

Both go through the library's one artefact writer (:mod:`fashion_reco.artefacts`): ``metadata.json`` is the
manifest, written last and atomically, so a process killed at any moment leaves the previous model loadable;
weights files the new metadata no longer names are removed after the switch. ``load(dir)`` checks the metadata
structure and the weights' sha256 and shapes, and raises :class:`ArtefactError` naming the faulty file.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeAlias, cast, overload

import numpy as np
import pandas as pd
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torchvision.models import ResNet
from tqdm.auto import tqdm

from fashion_reco._version import __version__
from fashion_reco.artefacts import ArtefactReader, ArtefactWriter
from fashion_reco.columns import Columns
from fashion_reco.config import DataConfig, ModelConfig, config_error
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.dataset import BadImage, default_num_workers, make_loader, single_threaded_torch
from fashion_reco.data.images import ImagePolicy, ImageSource, load_image
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ArtefactError, ImageError, ModelError
from fashion_reco.model.metrics import ClassificationMetrics
from fashion_reco.model.network import (
    EMBEDDING_DIM,
    HEADS,
    EmbeddingHead,
    build_resnet18,
    default_device,
    head_spec,
)
from fashion_reco.model.threads import torch_threads
from fashion_reco.model.weights import resolve_weights

__all__ = ["ARTEFACT_FORMAT", "EmbedResult", "ImageModel", "ImageModelMetadata"]

log = logging.getLogger(__name__)

ARTEFACT_FORMAT = "fashion-reco/image-model"
FORMAT_VERSION = 2
METADATA_FILE = "metadata.json"
_WEIGHTS_RE = re.compile(r"^weights-[0-9a-f]{12}\.safetensors$")
SUPPORTED_ARCHITECTURES = ("resnet18",)
WHAT = "image model"


def _with_weights_entry(document: dict[str, Any]) -> dict[str, Any]:
    """Artefacts saved before the shared artefact writer name their weights only in weights_file/weights_sha256."""
    if "files" not in document and isinstance(document.get("weights_file"), str):
        sha = document.get("weights_sha256")
        document = {
            **document,
            "files": {"weights": {"file": document["weights_file"], "sha256": sha, "kind": "bytes"}},
        }
    return document


class EmbedResult(NamedTuple):
    """``embed(..., return_failed=True)``: rows for the usable inputs only, their input positions, and the failures."""

    embeddings: np.ndarray  # float32 [n_ok, 512], L2-normalised
    indices: np.ndarray  # int64 [n_ok], positions in the input
    failed: list[BadImage]  # position, file and reason of each unusable input


class ImageModelMetadata(BaseModel):
    """The structure of ``metadata.json``."""

    model_config = ConfigDict(extra="allow")

    format: str
    format_version: int
    architecture: str
    embedding_dim: int
    classes: list[str] = Field(min_length=1)
    preprocess: dict[str, Any]
    head: dict[str, Any] = Field(default_factory=lambda: {"type": "linear"})
    weights_file: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    library_version: str = "unknown"
    created_at: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    history: list[dict[str, Any]] = Field(default_factory=list)
    training: dict[str, Any] = Field(default_factory=dict)


def _json_safe(value: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python, recursively (metadata must be strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, BaseModel):
        return _json_safe(value.model_dump(mode="json"))
    return value


#: What the model reads images from: a catalogue (its photos, in catalogue order), one image source, or many.
ImageInputs: TypeAlias = Catalogue | ImageSource | Sequence[ImageSource]


def _as_sources(sources: ImageInputs) -> list[ImageSource]:
    if isinstance(sources, Catalogue):
        return list(sources.image_paths)
    if isinstance(sources, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)):
        return [sources]
    return list(sources)


class ImageModel:
    """ResNet18 fine-tuned on a catalogue's classes: embeddings, predictions, save/load."""

    def __init__(
        self,
        net: ResNet,
        classes: Sequence[str],
        preprocess: PreprocessSpec,
        *,
        config: ModelConfig | None = None,
        metrics: dict[str, ClassificationMetrics] | None = None,
        history: list[dict[str, Any]] | None = None,
        training: dict[str, Any] | None = None,
        policy: ImagePolicy | None = None,
    ) -> None:
        if net.fc.out_features != len(classes):
            raise ModelError(
                f"network has {net.fc.out_features} outputs but {len(classes)} classes were given"
            )
        self.device = default_device()
        self.net = net.eval().to(self.device)
        self.classes = [str(c) for c in classes]
        self.preprocess = preprocess
        self.config = config or ModelConfig(
            image_size=preprocess.image_size, resize_size=preprocess.resize_size
        )
        self.metrics: dict[str, ClassificationMetrics] = dict(metrics or {})
        self.history = list(history or [])
        self.training = dict(training or {})
        self.policy = policy or ImagePolicy()
        self.embedding_dim = EMBEDDING_DIM
        self._module: torch.nn.Module | None = None
        self._compiled_for: int | None = None
        self._channels_last = False
        self.channels_last = self.config.channels_last

    # -- construction -------------------------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        catalogue: Catalogue,
        config: ModelConfig | None = None,
        *,
        data_config: DataConfig | None = None,
        progress: bool = True,
        num_workers: int | None = None,
    ) -> ImageModel:
        """Fine-tune on ``catalogue`` (see :func:`fashion_reco.model.training.train_classifier`)."""
        from fashion_reco.model.training import train_classifier

        config = config or ModelConfig()
        data_config = data_config or DataConfig()
        result = train_classifier(
            catalogue, config, data_config=data_config, num_workers=num_workers, progress=progress
        )
        training = {
            "best_epoch": result.best_epoch,
            "stopped_reason": result.stopped_reason,
            "seconds": round(result.seconds, 2),
            "n_train": result.n_train,
            "n_validation": result.n_validation,
            "n_test": result.n_test,
            "failed_images": [{"file": b.file, "reason": b.reason} for b in result.failed_images],
            "embedding_mean_cosine": result.embedding_mean_cosine,
            "collapse_threshold": config.effective_collapse_threshold,
            "collapsed": result.collapsed,
        }
        return cls(
            result.net,
            result.classes,
            result.preprocess,
            config=config,
            metrics=result.metrics,
            history=result.history,
            training=training,
            policy=ImagePolicy.from_data_config(data_config),
        )

    @classmethod
    def untrained(cls, classes: Sequence[str], config: ModelConfig | None = None) -> ImageModel:
        """A model with ``config.weights`` (random when None) and a fresh head for ``classes``; nothing is trained."""
        config = config or ModelConfig()
        classes = [str(c) for c in classes]
        if not classes:
            raise ModelError("need at least one class")
        resolved = resolve_weights(config.weights)
        net = build_resnet18(
            len(classes),
            weights=resolved,
            head=config.head,
            scale=config.cosine_scale,
            margin=config.angular_margin,
        )
        return cls(
            net, classes, PreprocessSpec.from_model_config(config, weights=resolved.enum), config=config
        )

    def get_config(self) -> ModelConfig:
        """A copy of the configuration this model was built and trained with (saved in its metadata)."""
        return self.config.model_copy(deep=True)

    @classmethod
    def from_config(cls, config: ModelConfig | Mapping[str, object], classes: Sequence[str]) -> ImageModel:
        """An untrained model for ``classes`` built as ``config`` says (a :class:`ModelConfig` or its dict)."""
        if not isinstance(config, ModelConfig):
            try:
                config = ModelConfig.model_validate(dict(config))
            except ValidationError as exc:
                raise config_error(exc) from None
        return cls.untrained(classes, config)

    # -- inference ----------------------------------------------------------------------------------------------------

    @property
    def channels_last(self) -> bool:
        return self._channels_last

    @channels_last.setter
    def channels_last(self, value: bool) -> None:
        value = bool(value)
        if value != self._channels_last or self._module is None:
            fmt = torch.channels_last if value else torch.contiguous_format
            self.net = self.net.to(memory_format=fmt)
            self._channels_last = value
            self._module = None

    def _embedding_module(self, batch_size: int) -> torch.nn.Module:
        """Trunk + head in eval mode; compiled (static shapes, per batch size) when ``config.compile``."""
        if self._module is None or (self.config.compile and self._compiled_for != batch_size):
            module: torch.nn.Module = EmbeddingHead(self.net).eval()
            if self.config.compile:
                module = cast(torch.nn.Module, torch.compile(module, dynamic=False))  # an OptimizedModule
                self._compiled_for = batch_size
            self._module = module
        return self._module

    def _forward(self, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = images.shape[0]
        if (
            self.config.compile and n < batch_size
        ):  # pad to one static shape: no recompilation for the last batch
            pad = images.new_zeros((batch_size - n, *images.shape[1:]))
            images = torch.cat([images, pad])
        images = self.preprocess.normalise_batch(images.to(self.device, non_blocking=True))
        if self._channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        embeddings, logits = self._embedding_module(batch_size)(images)
        return embeddings[:n].float().cpu(), logits[:n].float().cpu()

    def _run(
        self,
        sources: ImageInputs,
        *,
        batch_size: int,
        num_workers: int | None,
        progress: bool,
        policy: ImagePolicy | None,
        want_logits: bool,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[BadImage]]:
        items = _as_sources(sources)
        n = len(items)
        embeddings = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        logits = np.zeros((n, len(self.classes)), dtype=np.float32) if want_logits else None
        ok = np.zeros(n, dtype=bool)
        if n == 0:
            return embeddings, logits, ok, []
        loader = make_loader(
            items,
            self.preprocess,
            batch_size=batch_size,
            num_workers=default_num_workers() if num_workers is None else num_workers,
            policy=policy or self.policy,
        )
        self.net.eval()
        with torch_threads(self.config.num_threads), torch.inference_mode():
            for batch in tqdm(loader, desc="embedding", unit="batch", disable=not progress, leave=False):
                emb, out = self._forward(batch.images, batch_size)
                idx = batch.indices.numpy()
                embeddings[idx] = emb.numpy()
                if logits is not None:
                    logits[idx] = out.numpy()
                ok[idx] = True
        return embeddings, logits, ok, list(loader.failures)

    @overload
    def embed(
        self,
        sources: ImageInputs,
        *,
        batch_size: int = ...,
        num_workers: int | None = ...,
        progress: bool = ...,
        policy: ImagePolicy | None = ...,
        return_failed: Literal[False] = ...,
    ) -> np.ndarray: ...

    @overload
    def embed(
        self,
        sources: ImageInputs,
        *,
        batch_size: int = ...,
        num_workers: int | None = ...,
        progress: bool = ...,
        policy: ImagePolicy | None = ...,
        return_failed: Literal[True],
    ) -> EmbedResult: ...

    def embed(
        self,
        sources: ImageInputs,
        *,
        batch_size: int = 64,
        num_workers: int | None = None,
        progress: bool = False,
        policy: ImagePolicy | None = None,
        return_failed: bool = False,
    ) -> np.ndarray | EmbedResult:
        """512-d float32 L2-normalised embeddings, one row per input in input order.

        Raises :class:`ImageError` naming the file if any input is unusable, unless ``return_failed=True``, which
        returns an :class:`EmbedResult` with rows for the usable inputs only (see the module docstring).
        """
        embeddings, _, ok, failed = self._run(
            sources,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            policy=policy,
            want_logits=False,
        )
        return self._finish(embeddings, ok, failed, return_failed)

    @overload
    def embed_bytes(
        self,
        blobs: Sequence[bytes],
        *,
        batch_size: int = ...,
        policy: ImagePolicy | None = ...,
        return_failed: Literal[False] = ...,
    ) -> np.ndarray: ...

    @overload
    def embed_bytes(
        self,
        blobs: Sequence[bytes],
        *,
        batch_size: int = ...,
        policy: ImagePolicy | None = ...,
        return_failed: Literal[True],
    ) -> EmbedResult: ...

    def embed_bytes(
        self,
        blobs: Sequence[bytes],
        *,
        batch_size: int = 64,
        policy: ImagePolicy | None = None,
        return_failed: bool = False,
    ) -> np.ndarray | EmbedResult:
        """Embeddings of encoded images (JPEG/PNG/... bytes), decoded in this process (no DataLoader, no workers).

        The same pixels and numerics as :meth:`embed`; for the Snowflake UDF, which receives image bytes in batches.
        """
        policy = policy or self.policy
        transform = self.preprocess.geometry_transform()
        side = self.preprocess.resize_size
        n = len(blobs)
        embeddings = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        failed: list[BadImage] = []
        self.net.eval()
        with torch_threads(self.config.num_threads), torch.inference_mode():
            for start in range(0, n, batch_size):
                tensors, positions = [], []
                with single_threaded_torch():  # decode + small tensor ops: see single_threaded_torch
                    for i in range(start, min(n, start + batch_size)):
                        name = f"<bytes>[{i}]"
                        try:
                            image = load_image(blobs[i], policy, name=name, target_side=side)
                            tensors.append(transform(image))
                            positions.append(i)
                        except ImageError as exc:
                            if policy.on_bad == "raise":
                                raise
                            failed.append(BadImage(i, name, exc.reason))
                    batch = torch.stack(tensors) if tensors else None
                if batch is not None:
                    emb, _ = self._forward(batch, batch_size)
                    embeddings[positions] = emb.numpy()
                    ok[positions] = True
        return self._finish(embeddings, ok, failed, return_failed)

    @staticmethod
    def _finish(
        embeddings: np.ndarray, ok: np.ndarray, failed: list[BadImage], return_failed: bool
    ) -> np.ndarray | EmbedResult:
        if return_failed:
            indices = np.flatnonzero(ok).astype(np.int64)
            return EmbedResult(embeddings[indices], indices, failed)
        if failed:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise ImageError(
                f"{first.reason}{more}; {len(failed)} of {len(ok)} images are unusable — clean them "
                "(fashion_reco.data.images.validate_images) or call embed(..., return_failed=True)",
                file=first.file,
            )
        return embeddings

    def predict(
        self,
        sources: ImageInputs,
        *,
        batch_size: int = 64,
        num_workers: int | None = None,
        policy: ImagePolicy | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Predicted ``label`` and its softmax ``score`` per input, indexed by input position.

        Unusable images are left out (their position is missing from the index) unless the policy says raise. For a
        ``Catalogue`` an ``item_id`` column is added.
        """
        _, logits, ok, failed = self._run(
            sources,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            policy=policy,
            want_logits=True,
        )
        if logits is None:  # pragma: no cover - want_logits=True always fills it
            raise ModelError("internal error: no logits")
        for bad in failed:
            log.warning("no prediction for %s: %s", bad.file, bad.reason)
        positions = np.flatnonzero(ok)
        probs = torch.softmax(torch.from_numpy(logits[positions]), dim=1).numpy()
        best = probs.argmax(1) if len(positions) else np.zeros(0, dtype=np.int64)
        frame = pd.DataFrame(
            {
                Columns.LABEL: np.asarray(self.classes, dtype=object)[best],
                Columns.SCORE: probs[np.arange(len(positions)), best].astype(np.float64),
            },
            index=pd.Index(positions, name="position"),
        )
        if isinstance(sources, Catalogue):
            frame.insert(0, Columns.ITEM_ID, np.asarray(sources.item_ids)[positions])
        return frame

    # -- persistence --------------------------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the artefact (see the module docstring) through the one artefact writer; returns the directory."""
        from safetensors.torch import save as save_safetensors

        writer = ArtefactWriter(
            directory, manifest=METADATA_FILE, format=ARTEFACT_FORMAT, version=FORMAT_VERSION, what=WHAT
        )
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        entry = writer.add_bytes(
            "weights", save_safetensors(state, metadata={"format": ARTEFACT_FORMAT}), suffix=".safetensors"
        )
        metadata = ImageModelMetadata(
            format=ARTEFACT_FORMAT,
            format_version=FORMAT_VERSION,
            architecture=self.config.architecture,
            embedding_dim=self.embedding_dim,
            classes=self.classes,
            preprocess=self.preprocess.to_dict(),
            head=head_spec(self.net),
            weights_file=entry["file"],
            weights_sha256=entry["sha256"],
            library_version=__version__,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            config=self.config.model_dump(mode="json"),
            metrics={k: v.model_dump(mode="json") for k, v in self.metrics.items()},
            history=self.history,
            training=self.training,
        )
        meta = _json_safe(metadata.model_dump(mode="json"))
        return writer.commit({k: v for k, v in meta.items() if k not in ("format", "format_version")})

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ImageModel:
        """Load and verify an artefact written by :meth:`save`; raises :class:`ArtefactError` naming the bad file."""
        from safetensors.torch import load as load_safetensors

        reader = ArtefactReader.open(
            directory,
            manifest=METADATA_FILE,
            format=ARTEFACT_FORMAT,
            version=FORMAT_VERSION,
            what=WHAT,
            upgrade=_with_weights_entry,
        )
        meta_path = reader.manifest_path
        try:
            meta = ImageModelMetadata.model_validate(reader.meta)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ArtefactError(f"invalid metadata: {first['msg']}", file=meta_path, key=where) from None
        if meta.architecture not in SUPPORTED_ARCHITECTURES:
            raise ArtefactError(
                f"unknown architecture {meta.architecture!r}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}",
                file=meta_path,
            )
        if meta.embedding_dim != EMBEDDING_DIM:
            raise ArtefactError(
                f"embedding_dim {meta.embedding_dim} but resnet18 gives {EMBEDDING_DIM}", file=meta_path
            )
        if not _WEIGHTS_RE.match(meta.weights_file) or meta.weights_file[8:20] != meta.weights_sha256[:12]:
            raise ArtefactError(
                f"weights_file {meta.weights_file!r} is not weights-<sha12>.safetensors", file=meta_path
            )
        entry = reader.files.get("weights", {})
        if entry.get("file") != meta.weights_file or entry.get("sha256") != meta.weights_sha256:
            raise ArtefactError(
                "weights_file / weights_sha256 disagree with the file table", file=meta_path, key="files"
            )
        try:
            preprocess = PreprocessSpec.from_dict(meta.preprocess)
        except (ValidationError, TypeError, ValueError) as exc:
            msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ArtefactError(f"invalid preprocess spec: {msg}", file=meta_path, key="preprocess") from None

        weights_path = reader.file_of("weights")
        state = reader.decode("weights", "bytes", load_safetensors)
        head = meta.head if meta.format_version >= 2 else {"type": "linear"}
        if head.get("type") not in HEADS:
            raise ArtefactError(
                f"unknown head type {head.get('type')!r}; supported: {', '.join(HEADS)}",
                file=meta_path,
                key="head",
            )
        with torch.device("meta"):  # shapes only: no time spent on a random init that is overwritten anyway
            try:
                net = build_resnet18(
                    len(meta.classes),
                    head=str(head["type"]),
                    scale=float(head.get("scale", 16.0)),
                    margin=float(head.get("margin", 0.0)),
                )
            except (ModelError, TypeError, ValueError) as exc:
                raise ArtefactError(f"invalid head {head}: {exc}", file=meta_path, key="head") from None
        own = net.state_dict()
        missing = sorted(own.keys() - state.keys())
        unexpected = sorted(state.keys() - own.keys())
        wrong = sorted(
            f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
            for k in own.keys() & state.keys()
            if state[k].shape != own[k].shape
        )
        if missing or unexpected or wrong:
            parts = [
                f"missing tensors {missing[:3]}" if missing else "",
                f"unexpected tensors {unexpected[:3]}" if unexpected else "",
            ]
            parts.append(f"wrong shapes {wrong[:3]}" if wrong else "")
            raise ArtefactError(
                f"weights do not fit a {meta.architecture} with a {head['type']} head of {len(meta.classes)} classes: "
                + "; ".join(p for p in parts if p),
                file=weights_path,
            )
        net.load_state_dict(state, assign=True)
        known = set(ModelConfig.model_fields)
        try:
            config = ModelConfig(**{k: v for k, v in meta.config.items() if k in known})
        except ValidationError:
            log.warning("%s: saved config is not valid for this version; using defaults", meta_path)
            config = ModelConfig(image_size=preprocess.image_size, resize_size=preprocess.resize_size)
        metrics = {}
        for split, value in meta.metrics.items():
            try:
                metrics[split] = ClassificationMetrics.model_validate(value)
            except ValidationError:
                log.warning("%s: ignoring unreadable metrics for split %r", meta_path, split)
        return cls(
            net,
            meta.classes,
            preprocess,
            config=config,
            metrics=metrics,
            history=meta.history,
            training=meta.training,
        )

    @property
    def collapsed(self) -> bool:
        """True when training flagged the embeddings as collapsed (nearly identical; see ``training``)."""
        return bool(self.training.get("collapsed", False))

    def __repr__(self) -> str:
        return (
            f"ImageModel(resnet18, {head_spec(self.net)['type']} head, {len(self.classes)} classes, "
            f"{self.preprocess.image_size} px, "
            f"embedding_dim={self.embedding_dim})"
        )
