"""Resolve a catalogue *spec* string (as typed on the command line) to a :class:`Catalogue`.

Accepted specs: ``clothing`` (the shared real photos under the data root), ``sample`` (the CC0 photos shipped with
the package), ``auto`` (clothing when present, else sample), a folder (label = sub-folder), a CSV manifest, or an
``s3://bucket/prefix`` URI (fetched into ``dest`` first; by default a per-URI folder under ``$FASHION_RECO_CACHE`` or
``~/.cache/fashion-reco``, so a second run resumes instead of downloading again).
"""

from __future__ import annotations

import os
from pathlib import Path

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.datasets import load_clothing, sample_catalogue
from fashion_reco.data.s3 import S3Options
from fashion_reco.errors import CatalogueError

__all__ = ["default_fetch_dir", "open_catalogue"]


def default_fetch_dir(uri: str) -> Path:
    """Where an ``s3://bucket/prefix`` catalogue is cached when no destination is given."""
    parts = [part for part in uri.removeprefix("s3://").split("/") if part]
    if not parts or any(part in (".", "..") or "\\" in part for part in parts):
        raise CatalogueError("not a safe s3://bucket/prefix URI", key=uri)
    cache = Path(os.environ.get("FASHION_RECO_CACHE") or Path.home() / ".cache" / "fashion-reco")
    return cache.joinpath("s3", *parts)


def open_catalogue(
    spec: str,
    *,
    data_root: Path | None = None,
    dest: Path | None = None,
    s3: S3Options | None = None,
    progress: bool = False,
) -> Catalogue:
    """Build a catalogue from ``spec``; see the module docstring for the accepted forms. ``s3`` sets how an
    ``s3://`` spec is fetched (:class:`~fashion_reco.data.s3.S3Options`; default: its defaults)."""
    if spec in ("auto", "clothing"):
        root = data_root if data_root is not None else None
        labels = (root / "clothing" / "labels.csv") if root is not None else None
        if spec == "clothing" or (labels is not None and labels.is_file()):
            return load_clothing(root)
        return sample_catalogue()
    if spec == "sample":
        return sample_catalogue()
    if spec.startswith("s3://"):
        return Catalogue.from_s3(
            spec, dest if dest is not None else default_fetch_dir(spec), s3, progress=progress
        )
    path = Path(spec)
    if path.is_dir():
        return Catalogue.from_folder(path)
    if path.is_file():
        return Catalogue.from_manifest(path)
    raise CatalogueError(
        "not a folder, a CSV manifest, an s3:// URI, 'clothing', 'sample' or 'auto'", key=spec
    )
