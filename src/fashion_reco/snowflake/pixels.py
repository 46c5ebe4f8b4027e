"""Torch-free image geometry for the warehouse: the same uint8 pixels as torchvision's ``Resize`` + ``CenterCrop``.

The ONNX runtime of the embedding UDF has numpy and Pillow but no torch. Pillow's own ``resize`` differs from
torchvision's antialiased bilinear resize of a uint8 tensor by one grey level on some pixels (different fixed-point
precision), which moves an embedding by ~1e-4. This module reproduces torch's uint8 kernel exactly
(``aten/src/ATen/native/cpu/UpSampleKernel.cpp``: separable passes, horizontal first, triangle-filter weights
normalised per output pixel, rescaled to int16 with the largest precision that keeps every weight below 2**15,
``(sum + 2**(p-1)) >> p`` clamped to 0..255 after each pass), vectorised with numpy: one multiply-add over whole
rows per filter tap, no Python loop per pixel.

Only what the models here use is implemented: bilinear with antialiasing (torchvision's default for the ImageNet
presets). :func:`check_supported` raises for anything else before a UDF is registered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fashion_reco.errors import ConfigError

__all__ = ["center_crop", "check_supported", "geometry", "resize_aa_bilinear", "resized_size"]


def check_supported(preprocess: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` unless ``preprocess`` (a PreprocessSpec dict) is bilinear with antialiasing."""
    interpolation = preprocess.get("interpolation", "bilinear")
    antialias = preprocess.get("antialias", True)
    if interpolation != "bilinear" or not antialias:
        raise ConfigError(
            f"the ONNX warehouse runtime reproduces bilinear antialiased resizing only, the model uses "
            f"{interpolation!r} (antialias={antialias}); deploy with snowflake.udf_runtime = 'torch'",
            key="snowflake.udf_runtime",
        )


def _weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Source indices ``[out, taps]``, int weights ``[out, taps]`` and their precision (torch's int16 scheme)."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0  # bilinear: interp_size 2 → support = 1 * scale
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    taps = math.ceil(support) * 2 + 1
    centers = scale * (np.arange(out_size, dtype=np.float64) + 0.5)
    xmin = np.maximum(
        (centers - support + 0.5).astype(np.int64), 0
    )  # C++ static_cast truncates (values >= 0)
    xmax = np.minimum((centers + support + 0.5).astype(np.int64), in_size)
    xsize = np.clip(xmax - xmin, 0, taps)
    j = np.arange(taps, dtype=np.float64)[None, :]
    valid = j < xsize[:, None]
    w = 1.0 - np.abs((j + xmin[:, None] - centers[:, None] + 0.5) * invscale)
    w = np.where(valid, np.clip(w, 0.0, None), 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total != 0.0, w / np.where(total == 0.0, 1.0, total), 0.0)
    w_max = float(w.max()) if w.size else 0.0
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = w * (1 << precision)
    wi = np.where(scaled < 0, (-0.5 + scaled).astype(np.int64), (0.5 + scaled).astype(np.int64))
    index = np.minimum(xmin[:, None] + np.arange(taps)[None, :], in_size - 1)
    return index, np.where(valid, wi, 0), precision


def _pass(pixels: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    """Resample uint8 ``pixels`` ``[H, W, C]`` along ``axis`` (1: horizontal, 0: vertical) to ``out_size``.

    One vectorised multiply-add per filter tap (a handful: ``2 * ceil(scale) + 1``) over whole rows or columns, in
    int32 — the same integer arithmetic as torch's kernel (sums stay below 2**31).
    """
    in_size = pixels.shape[axis]
    if in_size == out_size:
        return pixels
    index, weights, precision = _weights(in_size, out_size)
    source = np.moveaxis(pixels, axis, 0).astype(np.int32)  # [in, other, C]
    total = np.full((out_size, *source.shape[1:]), (1 << (precision - 1)) if precision > 0 else 0, np.int32)
    shape = (out_size,) + (1,) * (source.ndim - 1)
    for tap in range(index.shape[1]):
        used = weights[:, tap] != 0
        if used.any():
            total += weights[:, tap].astype(np.int32).reshape(shape) * source[index[:, tap]]
    out = np.clip(total >> precision, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def resize_aa_bilinear(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W, C]`` uint8 → ``[height, width, C]`` uint8, equal to torch's antialiased bilinear uint8 resize."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise ValueError(f"expected uint8 [H, W, C] pixels, got {pixels.dtype} {pixels.shape}")
    return _pass(_pass(pixels, 1, width), 0, height)


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """torchvision's ``Resize(int)`` output size: the shorter side becomes ``shorter``, the longer is truncated."""
    if width <= height:
        return int(shorter * height / width), shorter
    return shorter, int(shorter * width / height)


def center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """torchvision's ``CenterCrop(size)`` of ``[H, W, C]`` pixels at least ``size`` on each side."""
    height, width = pixels.shape[:2]
    top = round((height - size) / 2.0)
    left = round((width - size) / 2.0)
    return pixels[top : top + size, left : left + size]


def geometry(pixels: np.ndarray, resize_size: int, image_size: int) -> np.ndarray:
    """Resize the shorter side to ``resize_size``, centre crop ``image_size``: ``[H, W, 3]`` → ``[3, S, S]`` uint8."""
    height, width = pixels.shape[:2]
    new_h, new_w = resized_size(height, width, resize_size)
    resized = resize_aa_bilinear(pixels, new_h, new_w)
    return np.ascontiguousarray(center_crop(resized, image_size).transpose(2, 0, 1))
