"""A saved recommender as one directory: component artefacts plus a manifest written last (crash-safe).

Layout::

    fashion_reco.json          manifest (format, library version, config, file names + sha256) — written last
    image_model/               ImageModel.save
    recommender/               BlendRecommender.save (absent when fitted without interactions)
    catalogue-<sha12>.parquet  the catalogue items
    embeddings-<sha12>.npy     item embeddings (float32, allow_pickle=False)
    interactions-<sha12>.parquet, customers-<sha12>.parquet (optional)

Payload files are content-addressed, so writing a new bundle over an old one never overwrites a file the old
manifest points at; a process killed at any moment leaves the previous bundle loadable.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fashion_reco.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from fashion_reco.errors import ArtefactError

__all__ = [
    "BUNDLE_FORMAT",
    "BundleManifest",
    "read_array",
    "read_frame",
    "read_manifest",
    "write_array",
    "write_frame",
    "write_manifest",
]

BUNDLE_FORMAT = "fashion-reco-bundle/1"
MANIFEST = "fashion_reco.json"


class BundleManifest(BaseModel):
    """What a bundle holds: config, component folders and payload files with their checksums."""

    model_config = ConfigDict(extra="forbid")

    format: str = BUNDLE_FORMAT
    library_version: str
    config: dict[str, Any]
    image_model: str | None = None
    recommender: str | None = None
    files: dict[str, str] = {}
    sha256: dict[str, str] = {}


def _write_payload(directory: Path, stem: str, suffix: str, payload: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(payload).hexdigest()
    name = f"{stem}-{digest[:12]}{suffix}"
    target = directory / name
    if not target.exists() or sha256_file(target) != digest:
        atomic_write_bytes(target, payload)
    return name, digest


def write_array(directory: Path, stem: str, array: np.ndarray) -> tuple[str, str]:
    """Save ``array`` as a content-addressed ``.npy`` file; returns (file name, sha256)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return _write_payload(directory, stem, ".npy", buffer.getvalue())


def write_frame(directory: Path, stem: str, frame: pd.DataFrame) -> tuple[str, str]:
    """Save ``frame`` as a content-addressed parquet file; returns (file name, sha256)."""
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, index=False)
    return _write_payload(directory, stem, ".parquet", buffer.getvalue())


def write_manifest(directory: Path, manifest: BundleManifest) -> None:
    """Write the manifest last, then delete payload files no manifest refers to any more."""
    atomic_write_text(directory / MANIFEST, manifest.model_dump_json(indent=2))
    keep = set(manifest.files.values())
    for path in directory.iterdir():
        if path.is_file() and path.suffix in (".npy", ".parquet") and path.name not in keep:
            path.unlink(missing_ok=True)


def read_manifest(directory: Path) -> BundleManifest:
    """Read and check a bundle manifest, naming the file at fault."""
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtefactError("not a fashion-reco bundle: manifest missing", file=path)
    try:
        manifest = BundleManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ArtefactError(f"unreadable manifest: {exc}", file=path) from None
    if manifest.format != BUNDLE_FORMAT:
        raise ArtefactError(f"unsupported bundle format {manifest.format!r}", file=path)
    return manifest


def _checked(directory: Path, manifest: BundleManifest, key: str) -> Path:
    name = manifest.files.get(key)
    if name is None:
        raise ArtefactError("bundle has no such component", file=directory / MANIFEST, key=key)
    path = directory / name
    if not path.is_file():
        raise ArtefactError("file listed in the manifest is missing", file=path)
    if sha256_file(path) != manifest.sha256.get(key):
        raise ArtefactError("checksum mismatch: the file was modified or truncated", file=path)
    return path


def read_array(directory: Path, manifest: BundleManifest, key: str) -> np.ndarray:
    """Load a verified array payload."""
    return np.load(_checked(directory, manifest, key), allow_pickle=False)


def read_frame(directory: Path, manifest: BundleManifest, key: str) -> pd.DataFrame:
    """Load a verified DataFrame payload."""
    return pd.read_parquet(_checked(directory, manifest, key))


def save_recommender(directory: Path, reco: Any, *, library_version: str) -> Path:
    """Save a fitted ``FashionRecommender`` (image model, recommender, catalogue, embeddings, history) to ``directory``."""
    from fashion_reco.errors import NotFittedError

    if reco.image_model is None or reco.catalogue is None or reco.item_embeddings is None:
        raise NotFittedError("nothing to save: call fit() first")
    directory.mkdir(parents=True, exist_ok=True)
    reco.image_model.save(directory / "image_model")
    if reco.recommender is not None:
        reco.recommender.save(directory / "recommender")
    files: dict[str, str] = {}
    digests: dict[str, str] = {}
    payloads: list[tuple[str, tuple[str, str]]] = [
        ("catalogue", write_frame(directory, "catalogue", reco.catalogue.to_frame())),
        ("embeddings", write_array(directory, "embeddings", reco.item_embeddings)),
    ]
    if reco.interactions is not None:
        payloads.append(("interactions", write_frame(directory, "interactions", reco.interactions.frame)))
    if reco.customers is not None:
        payloads.append(("customers", write_frame(directory, "customers", reco.customers.frame)))
    for key, (name, digest) in payloads:
        files[key], digests[key] = name, digest
    manifest = BundleManifest(
        library_version=library_version,
        config=reco.config.to_toml_dict(),
        image_model="image_model",
        recommender="recommender" if reco.recommender is not None else None,
        files=files,
        sha256=digests,
    )
    write_manifest(directory, manifest)
    return directory


def load_recommender(directory: Path, cls: Any) -> Any:
    """Rebuild a ``FashionRecommender`` saved by :func:`save_recommender`, verifying every file."""
    from fashion_reco.config import RecommenderConfig
    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.model.image_model import ImageModel
    from fashion_reco.recommend.blend import BlendRecommender

    manifest = read_manifest(directory)
    config = manifest.config
    reco = cls(
        RecommenderConfig(**config),
        image_model=ImageModel.load(directory / (manifest.image_model or "image_model")),
    )
    reco.catalogue = Catalogue.from_frame(read_frame(directory, manifest, "catalogue"))
    reco.item_embeddings = read_array(directory, manifest, "embeddings")
    if "interactions" in manifest.files:
        reco.interactions = Interactions.from_frame(read_frame(directory, manifest, "interactions"))
    if "customers" in manifest.files:
        reco.customers = Customers.from_frame(read_frame(directory, manifest, "customers"))
    if manifest.recommender:
        reco.recommender = BlendRecommender.load(directory / manifest.recommender)
    return reco
