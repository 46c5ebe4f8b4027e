"""The torch-free warehouse runtime of the embedding UDF: the ONNX export, onnxruntime, numpy and Pillow.

This module (with ``pixels``, ``data.images`` and ``errors``) is all the UDF imports inside Snowflake when
``snowflake.udf_runtime = "onnx"`` (:func:`build_runtime_zip` stages exactly these files, under a package
``__init__`` that imports nothing). Decoding is :func:`fashion_reco.data.images.load_image` (same EXIF handling,
same JPEG draft scaling), the geometry is :func:`fashion_reco.snowflake.pixels.geometry` (bit-identical to
torchvision's), and the network is the ONNX graph of ``export_onnx`` (ImageNet normalisation and L2 normalisation
inside), so the embeddings equal ``ImageModel.embed`` to ~1e-6.

Handlers are pure functions of pandas Series: image bytes → 512-float lists (:func:`onnx_embed_handler`) or staged
file URLs → 512-float lists (:func:`onnx_embed_files_handler`, reading with ``SnowflakeFile``). NULL in → NULL out;
an image Pillow cannot decode → NULL and a warning, instead of failing the whole query.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import sys
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # imported eagerly: Snowpark local testing drops modules a UDF call imports, and compiled ones cannot reload
    import onnxruntime as ort
except ImportError:  # pragma: no cover - a core dependency
    ort = None

from fashion_reco.data.images import ImagePolicy, load_image
from fashion_reco.errors import ImageError, ModelError
from fashion_reco.onnx_session import SPEC_KEY, open_onnx_session
from fashion_reco.snowflake.pixels import check_supported, geometry

__all__ = [
    "ONNX_FILE",
    "RUNTIME_MODULES",
    "OnnxImageEmbedder",
    "build_runtime_zip",
    "embed_blobs",
    "onnx_embed_files_handler",
    "onnx_embed_handler",
]

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
_SPEC_KEY = SPEC_KEY
_SCALE = np.float32(1.0 / 255.0)  # the float32 factor torch's normalise_batch multiplies by
_CACHE: OrderedDict[str, OnnxImageEmbedder] = OrderedDict()
_LOCK = threading.Lock()

# The files of this library the ONNX runtime imports (paths relative to the package's parent); checked by a test
# that runs the handler from the zip in a fresh interpreter where torch cannot be imported.
RUNTIME_MODULES: tuple[str, ...] = (
    "fashion_reco/errors.py",
    "fashion_reco/onnx_session.py",
    "fashion_reco/data/images.py",
    "fashion_reco/snowflake/pixels.py",
    "fashion_reco/snowflake/onnx_udf.py",
)
_STUB_INITS = (
    "fashion_reco/__init__.py",
    "fashion_reco/data/__init__.py",
    "fashion_reco/snowflake/__init__.py",
)


@dataclass(frozen=True)
class _Embedded:
    embeddings: np.ndarray  # [n_ok, 512]
    indices: np.ndarray  # positions of the usable images
    failed: list[tuple[int, str]]  # (position, reason)


class OnnxImageEmbedder:
    """An exported embedding model run with onnxruntime on numpy pixels (no torch)."""

    def __init__(self, path: str | Path, *, num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.session, props = open_onnx_session(self.path, num_threads)
        if _SPEC_KEY not in props:
            raise ModelError(
                "this ONNX file carries no preprocessing spec (export it with export_onnx)", file=path
            )
        self.preprocess: dict[str, Any] = json.loads(props[_SPEC_KEY])
        check_supported(self.preprocess)
        self.input_name = self.session.get_inputs()[0].name

    def pixels(self, blob: bytes, policy: ImagePolicy, name: str) -> np.ndarray:
        """Decode one image and apply the model's geometry → ``[3, S, S]`` uint8 (raises :class:`ImageError`)."""
        side = int(self.preprocess["resize_size"])
        image = load_image(blob, policy, name=name, target_side=side)
        return geometry(np.asarray(image), side, int(self.preprocess["image_size"]))

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """``[B, 3, S, S]`` uint8 → ``[B, 512]`` float32 L2-normalised embeddings."""
        scaled = np.ascontiguousarray(batch, dtype=np.float32) * _SCALE
        return np.asarray(self.session.run(None, {self.input_name: scaled})[0], dtype=np.float32)

    def embed_bytes(
        self, blobs: Sequence[bytes], *, policy: ImagePolicy | None = None, batch_size: int = 64
    ) -> _Embedded:
        """Embed encoded images; unusable ones are reported in ``failed`` instead of raising."""
        policy = policy or ImagePolicy()
        out, indices, failed = [], [], []
        for start in range(0, len(blobs), batch_size):
            pixels, positions = [], []
            for i in range(start, min(len(blobs), start + batch_size)):
                try:
                    pixels.append(self.pixels(blobs[i], policy, f"<bytes>[{i}]"))
                    positions.append(i)
                except ImageError as exc:
                    if policy.on_bad == "raise":
                        raise
                    failed.append((i, exc.reason))
            if pixels:
                out.append(self.embed_pixels(np.stack(pixels)))
                indices.extend(positions)
        embeddings = np.concatenate(out) if out else np.zeros((0, 512), np.float32)
        return _Embedded(embeddings, np.asarray(indices, dtype=np.int64), failed)


def _import_directory() -> Path:
    directory = getattr(sys, "_xoptions", {}).get("snowflake_import_directory")
    if not directory:
        raise ModelError(
            "not running inside a Snowflake UDF (no snowflake_import_directory): pass model_path"
        )
    return Path(directory)


def load_embedder(model_path: str | Path) -> OnnxImageEmbedder:
    """The embedder of ``model_path``, loaded once per process (cache keyed by the file's SHA-256)."""
    path = Path(model_path)
    try:
        key = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        raise ModelError("ONNX model file not found", file=path) from None
    with _LOCK:
        embedder = _CACHE.get(key)
        if embedder is None:
            embedder = OnnxImageEmbedder(path)
            _CACHE[key] = embedder
            while len(_CACHE) > 2:
                _CACHE.popitem(last=False)
        return embedder


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def embed_blobs(
    values: Sequence[Any], model_path: str | Path, policy: Mapping[str, Any] | None = None
) -> list[list[float] | None]:
    """Embed a batch of image bytes (NULLs allowed) → one 512-float list or ``None`` per value."""
    out: list[list[float] | None] = [None] * len(values)
    present = [i for i, v in enumerate(values) if not _is_null(v)]
    if not present:
        return out
    embedder = load_embedder(model_path)
    rules = ImagePolicy(**{**dict(policy or {}), "on_bad": "skip"})
    result = embedder.embed_bytes([bytes(values[i]) for i in present], policy=rules)
    for position, row in zip(result.indices, result.embeddings, strict=True):
        out[present[int(position)]] = row.tolist()
    for position, reason in result.failed:
        log.warning(
            "image at batch position %d is unusable, embedding is NULL: %s", present[position], reason
        )
    return out


def onnx_embed_handler(
    model_path: str | Path | None = None, policy: Mapping[str, Any] | None = None, file_name: str = ONNX_FILE
) -> Callable[[pd.Series], pd.Series]:
    """Vectorised handler: Series of image bytes → Series of 512-float lists (``None`` path: the import dir)."""
    fixed = None if model_path is None else str(Path(model_path).resolve())
    rules = dict(policy or {})

    def embed_images(images):  # no annotations: Snowpark would re-derive the SQL types from them
        path = fixed or str(_import_directory() / file_name)
        return pd.Series(embed_blobs(list(images), path, rules), index=images.index, dtype=object)

    return embed_images


def _read_staged(url: str) -> bytes | None:
    """Bytes of a staged file given a scoped URL or stage path (``SnowflakeFile``); ``None`` when unreadable."""
    from snowflake.snowpark.files import SnowflakeFile

    # A missing file or a revoked URL makes this row's embedding NULL, not the whole query fail.
    try:
        with SnowflakeFile.open(url, "rb", require_scoped_url=False) as handle:
            return bytes(handle.read())
    except Exception as exc:
        log.warning("cannot read staged file %s: %s", url.split("?")[0], type(exc).__name__)
        return None


def onnx_embed_files_handler(
    model_path: str | Path | None = None,
    policy: Mapping[str, Any] | None = None,
    file_name: str = ONNX_FILE,
    reader: Callable[[str], bytes | None] | None = None,
) -> Callable[[pd.Series], pd.Series]:
    """Vectorised handler: Series of staged file URLs (``BUILD_SCOPED_FILE_URL``) → Series of 512-float lists.

    ``reader`` (default: ``SnowflakeFile``) maps a URL to the file's bytes; tests pass a local reader.
    """
    fixed = None if model_path is None else str(Path(model_path).resolve())
    rules = dict(policy or {})
    read = reader or _read_staged

    def embed_files(urls):  # no annotations: Snowpark would re-derive the SQL types from them
        path = fixed or str(_import_directory() / file_name)
        blobs = [None if _is_null(u) else read(str(u)) for u in urls]
        return pd.Series(embed_blobs(blobs, path, rules), index=urls.index, dtype=object)

    return embed_files


def build_runtime_zip(dest_dir: str | Path) -> Path:
    """Zip :data:`RUNTIME_MODULES` under import-free package ``__init__`` files; deterministic, content-named."""
    root = Path(__file__).resolve().parents[2]  # the directory holding the fashion_reco package
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = [(name, b'"""fashion-reco warehouse runtime (subset)."""\n') for name in _STUB_INITS]
        entries += [(name, (root / name).read_bytes()) for name in RUNTIME_MODULES]
        for name, payload in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, payload)
    data = buffer.getvalue()
    target = Path(dest_dir) / f"fashion_reco_runtime-{hashlib.sha256(data).hexdigest()[:12]}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
