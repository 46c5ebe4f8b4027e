"""load_image on every kind of source, the policy, and validate_images, on real photos and generated ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_reco.config import DataConfig
from fashion_reco.data.images import ImagePolicy, describe_source, load_image, validate_images
from fashion_reco.errors import DataError, ImageError


def test_every_source_kind_gives_the_same_pixels(few_photos: list[Path]) -> None:
    path = few_photos[0]
    data = path.read_bytes()
    with Image.open(path) as opened:
        pil = opened.copy()
    reference = np.asarray(load_image(path))
    for source in (str(path), data, bytearray(data), memoryview(data), io.BytesIO(data), pil):
        image = load_image(source)
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), reference)
    assert pil.mode == "RGB" and pil.size == Image.open(path).size, "the caller's PIL image is left alone"


def test_real_photos_decode(few_photos: list[Path], clothing_labels) -> None:  # type: ignore[no-untyped-def]
    sizes = {
        str(Path(f).name): (w, h)
        for f, w, h in clothing_labels[["file", "width", "height"]].itertuples(index=False)
    }
    for path in few_photos:
        image = load_image(path)
        assert image.mode == "RGB"
        assert image.size == sizes[path.name]


def test_errors_name_the_source(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ImageError) as info:
        load_image(missing)
    assert info.value.file == str(missing) and "not found" in str(info.value)
    assert isinstance(info.value, DataError)
    with pytest.raises(ImageError, match=r"^<bytes>: empty"):
        load_image(b"")
    with pytest.raises(ImageError, match=r"^blob 7: not an image"):
        load_image(b"garbage" * 10, name="blob 7")
    with pytest.raises(ImageError, match="a folder, not a file"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="unsupported image source type int"):
        load_image(42)  # type: ignore[arg-type]


def test_describe_source() -> None:
    assert describe_source("a/b.jpg") == "a/b.jpg"
    assert describe_source(b"x", index=3) == "<bytes>[3]"
    assert describe_source(Image.new("RGB", (2, 2))) == "<PIL image>"


def test_policy_from_data_config() -> None:
    policy = ImagePolicy.from_data_config(
        DataConfig(min_image_side=30, max_image_pixels=1000, on_bad_image="raise")
    )
    assert (policy.min_side, policy.max_pixels, policy.on_bad) == (30, 1000, "raise")
    with pytest.raises(ValueError):
        ImagePolicy(unknown=1)  # type: ignore[call-arg]


def test_high_depth_modes() -> None:
    as_int = Image.fromarray(np.array([[0, 1000, 65535]] * 4, dtype=np.int32))
    assert as_int.mode == "I"
    np.testing.assert_array_equal(
        np.asarray(load_image(as_int, ImagePolicy(min_side=1)))[0, :, 0], [0, 4, 255]
    )
    small_ints = Image.fromarray(np.array([[0, 7, 200]] * 4, dtype=np.int32))
    np.testing.assert_array_equal(
        np.asarray(load_image(small_ints, ImagePolicy(min_side=1)))[0, :, 0], [0, 7, 200]
    )
    unit_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]] * 4, dtype=np.float32))
    assert unit_float.mode == "F"
    np.testing.assert_array_equal(
        np.asarray(load_image(unit_float, ImagePolicy(min_side=1)))[0, :, 0], [0, 128, 255]
    )
    wide_float = Image.fromarray(np.array([[-1.0, 0.0, 1.0]] * 4, dtype=np.float32))
    np.testing.assert_array_equal(
        np.asarray(load_image(wide_float, ImagePolicy(min_side=1)))[0, :, 0], [0, 128, 255]
    )


def test_validate_images_mixed(tmp_path: Path, few_photos: list[Path]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    report = validate_images([*few_photos[:5], bad], ImagePolicy(on_bad="raise"))
    assert report.ok == [str(p) for p in few_photos[:5]]
    assert list(report.bad) == [str(bad)] and not report.all_ok
    assert validate_images(few_photos[:3], num_threads=1).all_ok


def test_large_jpegs_are_dct_scaled_to_at_least_twice_the_target_side(few_photos: list[Path]) -> None:
    """A 1,800 x 2,400 product photo bound for a 146 px resize decodes at 1/4 scale: same picture, 16x fewer pixels."""
    from fashion_reco.data.transforms import PreprocessSpec

    with Image.open(few_photos[0]) as opened:
        big = opened.convert("RGB").resize((1800, 2400), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=92)
    jpeg = buffer.getvalue()
    full = load_image(jpeg)
    reduced = load_image(jpeg, target_side=146)
    assert full.size == (1800, 2400) and reduced.size == (450, 600)
    assert min(reduced.size) >= 2 * 146
    spec = PreprocessSpec(image_size=128, resize_size=146)
    a = spec.geometry_transform()(full).float()
    b = spec.geometry_transform()(reduced).float()
    assert (a - b).abs().mean() < 2.0, "the network sees practically the same 128 px crop (8-bit levels)"
    # small photos, other formats and PIL sources are decoded at full size whatever the target
    png = io.BytesIO()
    big.save(png, "PNG")
    assert load_image(png.getvalue(), target_side=146).size == (1800, 2400)
    assert load_image(few_photos[0], target_side=146).size == load_image(few_photos[0]).size
    assert load_image(big, target_side=146).size == (1800, 2400)
