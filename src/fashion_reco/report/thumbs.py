"""Thumbnails for the HTML report: small JPEGs embedded as ``data:`` URIs, so the report is one self-contained file.

Each photo is decoded once (through the data layer's ``load_image``: RGB, EXIF-transposed, decompression-bomb safe),
shrunk to fit a ``size``×``size`` box and re-encoded as JPEG; results are cached per source, so an item that appears in
several sections is only decoded once. A photo that cannot be read becomes a grey placeholder (still a valid image), and
the caller is told so it can mark the tile.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from fashion_reco.data.images import load_image
from fashion_reco.errors import FashionRecoError

__all__ = ["Thumbnail", "ThumbnailCache", "encode_thumbnail", "placeholder_thumbnail"]

_DEFAULT_SIZE = 112
_DEFAULT_QUALITY = 75


@dataclass(frozen=True)
class Thumbnail:
    """One embedded image: its ``data:`` URI, pixel size, and whether it is a placeholder for an unreadable photo."""

    uri: str
    width: int
    height: int
    placeholder: bool = False

    @property
    def nbytes(self) -> int:
        """Length of the URI in characters (what it adds to the HTML file)."""
        return len(self.uri)


def _to_jpeg_uri(image: Image.Image, quality: int) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=False)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def encode_thumbnail(
    image: Image.Image, size: int = _DEFAULT_SIZE, quality: int = _DEFAULT_QUALITY
) -> Thumbnail:
    """Shrink ``image`` to fit a ``size``-pixel square (aspect kept, never enlarged) and embed it as a JPEG URI."""
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return Thumbnail(_to_jpeg_uri(thumb, quality), thumb.width, thumb.height)


def placeholder_thumbnail(size: int = _DEFAULT_SIZE, quality: int = _DEFAULT_QUALITY) -> Thumbnail:
    """A light-grey square with a diagonal cross: shown where a photo is missing or unreadable."""
    image = Image.new("RGB", (size, size), (236, 236, 236))
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, size - 1, size - 1), fill=(190, 190, 190), width=2)
    draw.line((0, size - 1, size - 1, 0), fill=(190, 190, 190), width=2)
    return Thumbnail(_to_jpeg_uri(image, quality), size, size, placeholder=True)


@dataclass
class ThumbnailCache:
    """Thumbnails by source path, each decoded at most once; unreadable sources map to one shared placeholder."""

    size: int = _DEFAULT_SIZE
    quality: int = _DEFAULT_QUALITY
    failures: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, Thumbnail] = field(default_factory=dict, repr=False)
    _placeholder: Thumbnail | None = field(default=None, repr=False)

    def placeholder(self) -> Thumbnail:
        if self._placeholder is None:
            self._placeholder = placeholder_thumbnail(self.size, self.quality)
        return self._placeholder

    def get(self, source: str | os.PathLike[str] | None) -> Thumbnail:
        """The thumbnail of ``source`` (a local path); the placeholder when it is missing or cannot be decoded."""
        if source is None or str(source) in ("", "nan", "None"):
            return self.placeholder()
        key = os.fspath(source)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            thumb = encode_thumbnail(load_image(key, target_side=self.size), self.size, self.quality)
        except (FashionRecoError, OSError, ValueError) as exc:
            self.failures[key] = str(exc)
            thumb = self.placeholder()
        self._cache[key] = thumb
        return thumb

    def __len__(self) -> int:
        return len(self._cache)
