"""Decode any image a retailer might hand us into a clean RGB ``PIL.Image``, or fail with a precise :class:`ImageError`.

One function, :func:`load_image`, is the only way images enter the model: training, embedding, the Snowflake UDF and
validation all go through it, so every path sees identical pixels.

What it does, in order:

1. opens the source lazily (path, ``bytes``, binary file object, or an already decoded ``PIL.Image``);
2. checks the *declared* size against the policy before decoding a single pixel: ``width * height`` above
   ``max_pixels`` is a decompression bomb, a side below ``min_side`` or an aspect ratio above ``max_aspect_ratio`` is
   rejected. Pillow's own bomb check is applied with the policy's limit for this call only (Pillow's global is never
   changed), and its ``DecompressionBombError`` / ``DecompressionBombWarning`` become :class:`ImageError`;
3. decodes fully (a truncated file fails here, not later inside a DataLoader worker). When the caller says which
   shorter side it will resize to (``target_side``), a JPEG at least twice that size is decoded at 1/2, 1/4 or 1/8
   scale by libjpeg's DCT scaling (Pillow's ``draft``), keeping at least twice the target: a 2,000 px product photo
   bound for a 146 px crop decodes ~10x faster, and the antialiased resize after it still has 2x the pixels it needs;
4. applies the EXIF orientation (``ImageOps.exif_transpose``);
5. converts every mode to 8-bit RGB: palette images with transparency and ``LA``/``RGBA``/``PA`` are composited on
   white; ``CMYK``, ``YCbCr``, ``L`` and ``1`` are converted; 16/32-bit integer (``I;16*``, ``I``) and float (``F``)
   images are scaled to 0..255 by their bit depth (see :func:`_high_depth_to_l`).
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from fashion_reco.config import DataConfig
from fashion_reco.errors import ImageError

__all__ = [
    "ImagePolicy",
    "ImageSource",
    "ImageValidationReport",
    "describe_source",
    "load_image",
    "validate_images",
]

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | Image.Image

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_WHITE = (255, 255, 255)
_bomb_lock = threading.Lock()


class ImagePolicy(BaseModel):
    """What counts as a usable image, and what to do with one that is not.

    ``on_bad="skip"`` drops bad images and reports them (file and reason); ``"raise"`` stops at the first one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_side: int = Field(16, ge=1, description="Smallest accepted width and height in pixels.")
    max_pixels: int = Field(40_000_000, ge=1, description="Decompression-bomb limit on width * height.")
    max_aspect_ratio: float | None = Field(
        20.0,
        gt=1,
        description="Longest side / shortest side above which an image is rejected (None: no limit).",
    )
    on_bad: Literal["skip", "raise"] = "skip"

    @classmethod
    def from_data_config(cls, config: DataConfig) -> ImagePolicy:
        """Build from a :class:`fashion_reco.config.DataConfig` (``min_image_side``, ``max_image_pixels``, ``on_bad_image``)."""
        return cls(
            min_side=config.min_image_side, max_pixels=config.max_image_pixels, on_bad=config.on_bad_image
        )


class ImageValidationReport(BaseModel):
    """Result of :func:`validate_images`: files that decode under the policy, and the others with the reason."""

    ok: list[str] = Field(default_factory=list)
    bad: dict[str, str] = Field(default_factory=dict, description="file -> reason")

    @property
    def all_ok(self) -> bool:
        return not self.bad

    def summary(self) -> str:
        lines = [f"{len(self.ok)} images ok, {len(self.bad)} bad"]
        lines += [f"  {file}: {reason}" for file, reason in self.bad.items()]
        return "\n".join(lines)


def describe_source(source: ImageSource | object, index: int | None = None) -> str:
    """A human name for an image source, used in error messages (the path, or what kind of object it was)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "<PIL image>"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name = "<bytes>"
    else:
        name = str(getattr(source, "name", "") or "<stream>")
    return f"{name}[{index}]" if index is not None else name


def load_image(
    source: ImageSource,
    policy: ImagePolicy | None = None,
    *,
    name: str | None = None,
    target_side: int | None = None,
) -> Image.Image:
    """Decode ``source`` into an RGB, EXIF-transposed ``PIL.Image`` or raise :class:`ImageError` naming the file.

    ``name`` overrides the file name used in error messages (e.g. ``"<bytes>[12]"`` for the 12th blob of a batch).
    ``target_side``: the shorter side the caller resizes to next; large JPEGs are then decoded at a reduced scale that
    keeps at least twice it (see the module docstring). The returned image is always a new object (an input
    ``PIL.Image`` is never modified).
    """
    policy = policy or ImagePolicy()
    file = name or describe_source(source)
    try:
        image = _open(source, policy, file)
        _check_size(image.size, policy, file)
        if target_side is not None and image.format == "JPEG":
            image.draft(None, (2 * target_side, 2 * target_side))
        image.load()
        image = _exif_transpose(image)
        rgb = _to_rgb(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"decompression bomb: {exc}", file=file) from None
    except UnidentifiedImageError:
        raise ImageError(
            "not an image Pillow can identify (wrong format, empty or corrupt file)", file=file
        ) from None
    except FileNotFoundError:
        raise ImageError("file not found", file=file) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError) as exc:
        # Pillow signals truncated or corrupt data with OSError ("image file is truncated", "broken data stream"),
        # and some plugins with SyntaxError / ValueError / EOFError.
        raise ImageError(f"cannot decode image: {type(exc).__name__}: {exc}", file=file) from None
    if rgb.mode != "RGB":  # pragma: no cover - _to_rgb guarantees RGB
        raise ImageError(f"internal error: conversion produced mode {rgb.mode}", file=file)
    return rgb


def _open(source: ImageSource, policy: ImagePolicy, file: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source.copy()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError("empty data (0 bytes)", file=file)
        stream: Any = io.BytesIO(data)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError("file not found" if not path.exists() else "not a regular file", file=file)
        if path.stat().st_size == 0:
            raise ImageError("empty file (0 bytes)", file=file)
        # Read into memory: the file handle is then not tied to the lazy image (no leaked descriptors in workers).
        stream = io.BytesIO(path.read_bytes())
    elif hasattr(source, "read"):
        data = source.read()
        if not data:
            raise ImageError("empty stream (0 bytes)", file=file)
        stream = io.BytesIO(data)
    else:
        raise ImageError(f"unsupported image source type {type(source).__name__}", file=file)
    return _open_with_bomb_limit(stream, policy.max_pixels)


def _open_with_bomb_limit(stream: BinaryIO, max_pixels: int) -> Image.Image:
    """``Image.open`` with Pillow's decompression-bomb check at ``max_pixels`` for this call only.

    Pillow raises above ``2 * MAX_IMAGE_PIXELS`` and warns above ``MAX_IMAGE_PIXELS``. Our own check
    (:func:`_check_size`) applies the policy right after opening, so the warning is silenced and, only when the
    policy is *more* permissive than Pillow's global, the global is raised for the duration of the call under a lock
    and restored.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        pil_limit = Image.MAX_IMAGE_PIXELS
        if pil_limit is None or max_pixels <= 2 * pil_limit:
            return Image.open(stream)
        with _bomb_lock:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max_pixels
            try:
                return Image.open(stream)
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def _check_size(size: tuple[int, int], policy: ImagePolicy, file: str) -> None:
    width, height = size
    pixels = width * height
    if pixels > policy.max_pixels:
        raise ImageError(
            f"decompression bomb: declared size {width}x{height} = {pixels:,} pixels exceeds the limit of "
            f"{policy.max_pixels:,} (ImagePolicy.max_pixels)",
            file=file,
        )
    if min(width, height) < policy.min_side:
        raise ImageError(
            f"image too small: {width}x{height}, the smaller side is below {policy.min_side} px (ImagePolicy.min_side)",
            file=file,
        )
    if (
        policy.max_aspect_ratio is not None
        and max(width, height) / min(width, height) > policy.max_aspect_ratio
    ):
        raise ImageError(
            f"extreme aspect ratio: {width}x{height} ({max(width, height) / min(width, height):.0f}:1) exceeds "
            f"{policy.max_aspect_ratio:g}:1 (ImagePolicy.max_aspect_ratio)",
            file=file,
        )


def _exif_transpose(image: Image.Image) -> Image.Image:
    try:
        transposed = ImageOps.exif_transpose(image)
    except Exception:
        return image
    return transposed if transposed is not None else image


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy() if image.readonly else image
    if (mode == "P" and "transparency" in image.info) or mode == "PA":
        return _composite_on_white(image.convert("RGBA"))
    if mode in _ALPHA_MODES:
        return _composite_on_white(image.convert("RGBA"))
    if mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_l(image).convert("RGB")
    if mode in {"I;16S", "I;32", "I;32S", "I;32B", "I;32L", "F;32"}:  # rare raw modes: go through numpy
        return _high_depth_to_l(image).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX...


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit integer or float single-channel image to 8-bit ``L``.

    * ``I;16*``: the full 16-bit range, ``v * 255 / 65535``.
    * ``I`` (32-bit signed, what Pillow uses for many 16-bit PNG/TIFF files): values within 0..255 are kept, within
      0..65535 scaled as 16-bit, anything else (negative or wider) min-max scaled.
    * ``F``: values within 0..1 scaled by 255, within 0..255 kept, otherwise min-max scaled. NaN/inf become 0.
    """
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"unexpected {image.mode} array shape {array.shape}")
    values = array.astype(np.float64)
    values = np.where(np.isfinite(values), values, 0.0)
    if image.mode.startswith("I;16"):
        scaled = values * (255.0 / 65535.0)
    else:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if image.mode.startswith("F") and low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        elif low >= 0.0 and high <= 65535.0 and not image.mode.startswith("F"):
            scaled = values * (255.0 / 65535.0)
        elif high > low:
            scaled = (values - low) * (255.0 / (high - low))
        else:
            scaled = np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _check_one(path: str, policy: ImagePolicy) -> tuple[str, str | None]:
    try:
        load_image(path, policy)
    except ImageError as exc:
        return path, exc.reason
    return path, None


def validate_images(
    paths: Iterable[str | os.PathLike[str]], policy: ImagePolicy | None = None, *, num_threads: int = 4
) -> ImageValidationReport:
    """Fully decode every file under ``policy`` and report which are usable and why the others are not.

    Never raises for a bad image (even with ``on_bad="raise"``): the point is the report. Decoding runs in a small
    thread pool (Pillow releases the GIL while decoding).
    """
    policy = policy or ImagePolicy()
    names: Sequence[str] = [os.fspath(p) for p in paths]
    report = ImageValidationReport()
    if num_threads > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=num_threads) as pool:
            results = list(pool.map(lambda p: _check_one(p, policy), names))
    else:
        results = [_check_one(p, policy) for p in names]
    for path, reason in results:
        if reason is None:
            report.ok.append(path)
        else:
            report.bad[path] = reason
    return report
