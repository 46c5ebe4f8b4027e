"""The torch-free warehouse runtime: bit-identical pixels, ONNX embeddings equal to torch's, no torch imported."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from snowflake.snowpark import functions as F
from torchvision.transforms import v2

from fashion_reco.config import SnowflakeConfig
from fashion_reco.data.images import load_image
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ConfigError
from fashion_reco.model.image_model import ImageModel
from fashion_reco.model.onnx_export import export_onnx
from fashion_reco.snowflake.backend import AccountBackend, LocalTestingBackend
from fashion_reco.snowflake.deploy import preflight, stage_onnx
from fashion_reco.snowflake.onnx_udf import (
    RUNTIME_MODULES,
    build_runtime_zip,
    onnx_embed_files_handler,
    onnx_embed_handler,
)
from fashion_reco.snowflake.pixels import check_supported, geometry, resize_aa_bilinear
from fashion_reco.snowflake.tables import image_rows, write_table
from fashion_reco.snowflake.udf import register_embedding_udf

TOLERANCE = 1e-5  # the bar for warehouse vs local torch embeddings


@pytest.fixture(scope="module")
def onnx_path(tiny_model: ImageModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_model, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.mark.parametrize(("size", "resize"), [(64, 73), (224, 256), (100, 400)])
def test_geometry_is_bit_identical_to_torchvision(twelve_photos: list[Path], size: int, resize: int) -> None:
    transform = PreprocessSpec(image_size=size, resize_size=resize).geometry_transform()
    for path in twelve_photos:
        image = load_image(path, target_side=resize)
        assert np.array_equal(geometry(np.asarray(image), resize, size), transform(image).numpy()), path


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(
        8, 70
    ),  # photos have at least min_image_side (16) pixels; torch asserts on 1-pixel sides
    width=st.integers(8, 70),
    out_h=st.integers(8, 90),
    out_w=st.integers(8, 90),
    seed=st.integers(0, 2**16),
)
def test_resize_equals_torch_uint8_antialiased_bilinear(
    height: int, width: int, out_h: int, out_w: int, seed: int
) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = v2.functional.resize(
        torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), [out_h, out_w], antialias=True
    )
    assert np.array_equal(resize_aa_bilinear(pixels, out_h, out_w), expected.permute(1, 2, 0).numpy())


def test_other_interpolations_are_refused_with_the_setting_to_change() -> None:
    check_supported({"interpolation": "bilinear", "antialias": True})
    with pytest.raises(ConfigError, match="udf_runtime = 'torch'"):
        check_supported({"interpolation": "bicubic", "antialias": True})


def test_handler_equals_local_torch_embeddings(
    onnx_path: Path, photo_bytes: list[bytes], local_embeddings: np.ndarray
) -> None:
    handler = onnx_embed_handler(onnx_path)
    images = pd.Series([None, *photo_bytes, b"not an image"], index=range(10, 24))
    out = handler(images)
    assert list(out.index) == list(images.index)
    assert out.iloc[0] is None and out.iloc[-1] is None
    got = np.asarray(out.iloc[1:-1].tolist(), dtype=np.float32)
    assert got.shape == (12, 512)
    assert np.abs(got - local_embeddings).max() <= TOLERANCE


def test_files_handler_reads_each_url_once_and_embeds(
    onnx_path: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    read: list[str] = []

    def reader(url: str) -> bytes | None:
        read.append(url)
        return None if url.endswith("missing.jpg") else Path(url).read_bytes()

    urls = pd.Series([str(p) for p in twelve_photos[:3]] + [None, "/nowhere/missing.jpg"])
    out = onnx_embed_files_handler(onnx_path, reader=reader)(urls)
    assert read == [str(p) for p in twelve_photos[:3]] + ["/nowhere/missing.jpg"]
    assert out.iloc[3] is None and out.iloc[4] is None
    assert np.abs(np.asarray(out.iloc[:3].tolist()) - local_embeddings[:3]).max() <= TOLERANCE


def test_udf_through_local_testing_equals_local_torch_embeddings(
    local_session, tiny_model_dir: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    config = SnowflakeConfig(stage="ONNX_T_STAGE", udf_name="ONNX_T_EMBED")
    assert config.udf_runtime == "onnx"
    backend = LocalTestingBackend(local_session)
    staged, policy = stage_onnx(local_session, tiny_model_dir, config.stage, backend=backend)
    register_embedding_udf(
        local_session, backend, model_files=[f.location for f in staged], config=config, policy=policy
    )
    ids = [p.stem for p in twelve_photos]
    frame = pd.DataFrame({"item_id": ids, "image_path": [str(p) for p in twelve_photos]})
    write_table(local_session, "ONNX_T_IMAGES", image_rows(frame), spec="IMAGES")
    rows = (
        local_session.table("ONNX_T_IMAGES")
        .select(
            "ITEM_ID",
            F.call_function("ONNX_T_EMBED", F.col("IMAGE")).alias("V"),
            F.call_function("ONNX_T_EMBED_ARRAY", F.col("IMAGE")).alias("A"),
        )
        .collect()
    )
    vectors = {r["ITEM_ID"]: json.loads(r["V"]) if isinstance(r["V"], str) else r["V"] for r in rows}
    arrays = {r["ITEM_ID"]: json.loads(r["A"]) if isinstance(r["A"], str) else r["A"] for r in rows}
    warehouse = np.asarray([vectors[i] for i in ids], dtype=np.float32)
    assert np.abs(warehouse - local_embeddings).max() <= TOLERANCE
    assert np.abs(np.asarray([arrays[i] for i in ids], dtype=np.float32) - warehouse).max() <= 1e-6


_TORCHLESS_PROBE = """
import sys, json
sys.modules['torch'] = None; sys.modules['torchvision'] = None; sys.modules['pydantic_settings'] = None
sys.path[:] = [p for p in sys.path if not p.rstrip('/').endswith('/src')]
sys.path.insert(0, sys.argv[1])          # the staged runtime zip, as Snowflake puts imports on sys.path
import pandas as pd
from fashion_reco.snowflake.onnx_udf import onnx_embed_handler
handler = onnx_embed_handler()           # as registered: the model comes from the UDF import directory
out = handler(pd.Series([open(p, 'rb').read() for p in json.loads(sys.argv[2])]))
import fashion_reco
print(json.dumps({"module": fashion_reco.__file__, "torch": sys.modules.get('torch'), "e": out.tolist()}))
"""


def test_runtime_zip_runs_without_torch_in_a_fresh_interpreter(
    tmp_path: Path, onnx_path: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    archive = build_runtime_zip(tmp_path)
    assert build_runtime_zip(tmp_path / "again").name == archive.name  # deterministic, content-named
    names = set(zipfile.ZipFile(archive).namelist())
    assert set(RUNTIME_MODULES) <= names and "fashion_reco/model/image_model.py" not in names
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            f"snowflake_import_directory={onnx_path.parent}",
            "-c",
            _TORCHLESS_PROBE,
            str(archive),
            json.dumps([str(p) for p in twelve_photos[:4]]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["module"].startswith(str(archive)) and result["torch"] is None
    assert np.abs(np.asarray(result["e"], dtype=np.float32) - local_embeddings[:4]).max() <= TOLERANCE


def test_preflight_refuses_a_runtime_other_than_this_python_before_any_statement(recording_session) -> None:
    other = "3.10" if sys.version_info[:2] != (3, 10) else "3.12"
    with pytest.raises(ConfigError, match="runtime_version") as info:
        preflight(
            recording_session, AccountBackend(recording_session), SnowflakeConfig(runtime_version=other)
        )
    assert info.value.key == "snowflake.runtime_version"
    assert recording_session.statements == [] and recording_session.registered == []


def test_image_decoding_matches_for_png_with_alpha(
    tmp_path: Path, onnx_path: Path, tiny_model: ImageModel
) -> None:
    rgba = Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 70, 4), dtype=np.uint8), "RGBA")
    path = tmp_path / "alpha.png"
    rgba.save(path)
    local = tiny_model.embed([str(path)], num_workers=0)
    got = onnx_embed_handler(onnx_path)(pd.Series([path.read_bytes()])).iloc[0]
    assert np.abs(np.asarray(got) - local[0]).max() <= TOLERANCE
