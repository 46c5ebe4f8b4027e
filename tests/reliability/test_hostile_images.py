"""Hostile image corpus, generated in a temp dir: every file either decodes to a clean RGB image or fails with an
``ImageError`` that names the file. Nothing else may escape (no OSError, no DecompressionBombError, no warning)."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_reco.config import ModelConfig
from fashion_reco.data.images import ImagePolicy, load_image, validate_images
from fashion_reco.errors import ImageError


def _png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header declares ``width x height`` 8-bit grey pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024, 9)  # far less data than declared: it must never be decoded
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _noise_jpeg(width: int = 120, height: int = 90) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    def save(name: str, image: Image.Image, fmt: str, **kwargs: object) -> None:
        files[name] = root / name
        image.save(files[name], fmt, **kwargs)

    put("zero.jpg", b"")
    jpeg = _noise_jpeg()
    put("truncated.jpg", jpeg[: len(jpeg) // 2])
    put("text.jpg", b"this is not an image, just text pretending to be a JPEG\n" * 10)
    put("bomb_huge.png", _png_with_declared_size(50_000, 50_000))  # above Pillow's own hard limit
    put(
        "bomb_policy.png", _png_with_declared_size(10_000, 10_000)
    )  # 100 Mpx: only our 40 Mpx policy stops it
    save("cmyk.jpg", Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red in CMYK
    grey16 = np.zeros((40, 64), dtype=np.uint16)
    grey16[:, :32] = 65535
    grey16[:, 32:48] = 32896  # 128 * 257
    save("grey16.png", Image.fromarray(grey16), "PNG")
    palette = Image.new("P", (64, 48), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)  # index 0 red, index 1 blue
    palette.paste(1, (32, 0, 64, 48))
    save("palette_transparent.png", palette, "PNG", transparency=1)  # blue half is transparent
    la = Image.new("LA", (64, 48), (80, 255))
    la.paste((0, 0), (0, 0, 32, 48))  # left half fully transparent
    save("la.png", la, "PNG")
    save("rgba.png", Image.new("RGBA", (64, 48), (255, 0, 0, 128)), "PNG")
    mono = Image.new("1", (64, 48), 0)
    mono.paste(1, (32, 0, 64, 48))
    save("mono.png", mono, "PNG")
    rotated = Image.new("RGB", (80, 40), (0, 0, 255))
    rotated.paste((255, 0, 0), (0, 0, 10, 10))  # red stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display rotated 90 degrees clockwise
    save("exif6.jpg", rotated, "JPEG", quality=95, exif=exif.tobytes())
    save("tiny.png", Image.new("RGB", (1, 1), (10, 20, 30)), "PNG")
    save("sliver.png", Image.new("RGB", (10_000, 10), (200, 100, 50)), "PNG")
    return files


def _error(path: Path, policy: ImagePolicy | None = None) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(path, policy)
    assert info.value.file == str(path)
    assert str(path) in str(info.value), "the message must name the file"
    return info.value


def test_zero_byte_file(corpus: dict[str, Path]) -> None:
    assert "empty" in _error(corpus["zero.jpg"]).reason


def test_truncated_jpeg(corpus: dict[str, Path]) -> None:
    reason = _error(corpus["truncated.jpg"]).reason
    assert "cannot decode" in reason and "truncated" in reason.lower()


def test_text_file_named_jpg(corpus: dict[str, Path]) -> None:
    assert "not an image" in _error(corpus["text.jpg"]).reason


@pytest.mark.parametrize("name", ["bomb_huge.png", "bomb_policy.png"])
def test_decompression_bomb_is_refused_before_decoding(corpus: dict[str, Path], name: str) -> None:
    limit_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may leak out
        error = _error(corpus[name])
    assert "decompression bomb" in error.reason
    assert Image.MAX_IMAGE_PIXELS == limit_before, "Pillow's global limit must not be changed"


def test_bomb_limit_is_per_call(corpus: dict[str, Path]) -> None:
    strict = ImagePolicy(max_pixels=1000)
    assert "decompression bomb" in _error(corpus["cmyk.jpg"], strict).reason
    assert load_image(corpus["cmyk.jpg"]).size == (64, 48)  # the default policy still accepts it
    # A policy more permissive than Pillow's global lifts Pillow's check for that call only; the file is then
    # rejected for its missing pixel data, never by an exception type other than ImageError.
    generous = ImagePolicy(max_pixels=3_000_000_000, max_aspect_ratio=None)
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError):
        load_image(_png_with_declared_size(20_000, 1_000), generous)
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_cmyk_jpeg_becomes_rgb(corpus: dict[str, Path]) -> None:
    image = load_image(corpus["cmyk.jpg"])
    assert image.mode == "RGB"
    r, g, b = np.asarray(image).reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_not_clipped(corpus: dict[str, Path]) -> None:
    with Image.open(corpus["grey16.png"]) as raw:
        assert raw.mode in {"I;16", "I"}
    array = np.asarray(load_image(corpus["grey16.png"]))
    assert array.dtype == np.uint8 and array.shape == (40, 64, 3)
    assert (array[:, :32] == 255).all()
    assert (array[:, 32:48] == 128).all()
    assert (array[:, 48:] == 0).all()


def test_palette_with_transparency_on_white(corpus: dict[str, Path]) -> None:
    array = np.asarray(load_image(corpus["palette_transparent.png"]))
    assert tuple(array[10, 5]) == (255, 0, 0)
    assert tuple(array[10, 50]) == (255, 255, 255)


def test_la_on_white(corpus: dict[str, Path]) -> None:
    array = np.asarray(load_image(corpus["la.png"]))
    assert tuple(array[5, 5]) == (255, 255, 255)
    assert tuple(array[5, 50]) == (80, 80, 80)


def test_rgba_half_transparent_on_white(corpus: dict[str, Path]) -> None:
    r, g, b = (int(v) for v in np.asarray(load_image(corpus["rgba.png"]))[3, 3])
    assert r == 255 and 120 <= g <= 135 and 120 <= b <= 135


def test_mode_1(corpus: dict[str, Path]) -> None:
    array = np.asarray(load_image(corpus["mono.png"]))
    assert tuple(array[0, 0]) == (0, 0, 0) and tuple(array[0, 63]) == (255, 255, 255)


def test_exif_orientation_is_applied(corpus: dict[str, Path]) -> None:
    image = load_image(corpus["exif6.jpg"])
    assert image.size == (40, 80), "orientation 6 swaps width and height"
    array = np.asarray(image).astype(int)
    top_right = array[2, 37]
    top_left = array[2, 2]
    assert top_right[0] > 200 and top_right[2] < 60, "the stored top-left red corner is displayed top-right"
    assert top_left[2] > 200 and top_left[0] < 60


def test_one_pixel_image_is_too_small(corpus: dict[str, Path]) -> None:
    assert "too small" in _error(corpus["tiny.png"]).reason


def test_sliver_per_policy(corpus: dict[str, Path]) -> None:
    path = corpus["sliver.png"]
    assert "too small" in _error(path).reason  # default min_side 16
    assert "aspect ratio" in _error(path, ImagePolicy(min_side=8)).reason
    accepted = load_image(path, ImagePolicy(min_side=8, max_aspect_ratio=None))
    assert accepted.size == (10_000, 10) and accepted.mode == "RGB"


def test_validate_images_reports_every_bad_file(corpus: dict[str, Path]) -> None:
    report = validate_images(list(corpus.values()))
    bad = {Path(p).name for p in report.bad}
    assert bad == {
        "zero.jpg",
        "truncated.jpg",
        "text.jpg",
        "bomb_huge.png",
        "bomb_policy.png",
        "tiny.png",
        "sliver.png",
    }
    assert {Path(p).name for p in report.ok} == set(corpus) - bad
    assert "sliver.png" in report.summary()


def test_corpus_through_the_model(corpus: dict[str, Path]) -> None:
    """End to end: the loader drops the bad files, reports them by position, and embeds the rest."""
    from fashion_reco.model.image_model import ImageModel

    model = ImageModel.untrained(["a", "b"], ModelConfig(image_size=32))
    paths = list(corpus.values())
    result = model.embed(paths, batch_size=4, num_workers=1, return_failed=True)
    failed = {Path(b.file).name for b in result.failed}
    assert failed == {
        "zero.jpg",
        "truncated.jpg",
        "text.jpg",
        "bomb_huge.png",
        "bomb_policy.png",
        "tiny.png",
        "sliver.png",
    }
    assert sorted(result.indices.tolist() + [b.index for b in result.failed]) == list(range(len(paths)))
    assert result.embeddings.shape == (len(paths) - len(failed), 512)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ImageError) as info:
        model.embed(paths, batch_size=4, num_workers=1)
    assert Path(info.value.file).name in failed
    with pytest.raises(ImageError) as info:
        model.embed(paths, batch_size=4, num_workers=1, policy=ImagePolicy(on_bad="raise"))
    assert Path(info.value.file).name in failed
