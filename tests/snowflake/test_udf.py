"""The embedding UDF: the pandas handler, the local-testing UDF over real photo bytes, and the account packaging."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snowflake.snowpark import functions as F
from snowflake.snowpark.types import ArrayType, BinaryType, FloatType, PandasSeriesType

from fashion_reco.config import SnowflakeConfig
from fashion_reco.errors import ArtefactError, SnowflakeError
from fashion_reco.snowflake import udf as udf_module
from fashion_reco.snowflake.backend import AccountBackend, LocalTestingBackend
from fashion_reco.snowflake.stage import upload_model
from fashion_reco.snowflake.tables import image_rows, write_table
from fashion_reco.snowflake.udf import (
    build_code_zip,
    embed_handler,
    embed_row_handler,
    register_embedding_udf,
    udf_packages,
)

TOLERANCE = 1e-5


@pytest.mark.parametrize(("batch", "n_photos"), [(1, 3), (5, 12), (12, 12)])
def test_handler_on_pandas_batches_equals_local_embed(
    tiny_model_dir: Path, photo_bytes: list[bytes], local_embeddings: np.ndarray, batch: int, n_photos: int
) -> None:
    handler = embed_handler(tiny_model_dir)
    got = []
    for start in range(0, n_photos, batch):
        blobs = photo_bytes[start : min(start + batch, n_photos)]
        chunk = pd.Series(blobs, index=range(100 + start, 100 + start + len(blobs)))
        out = handler(chunk)
        assert list(out.index) == list(chunk.index)  # results line up with the input rows
        got.extend(out.tolist())
    matrix = np.asarray(got, dtype=np.float32)
    assert matrix.shape == (n_photos, 512)
    assert np.abs(matrix - local_embeddings[:n_photos]).max() <= TOLERANCE
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_handler_gives_null_for_null_and_unusable_images(
    tiny_model_dir: Path, photo_bytes: list[bytes], local_embeddings: np.ndarray
) -> None:
    out = embed_handler(tiny_model_dir)(
        pd.Series([photo_bytes[0], None, b"not a jpeg", bytearray(photo_bytes[1])])
    )
    assert out.iloc[1] is None and out.iloc[2] is None
    assert np.abs(np.asarray(out.iloc[3], dtype=np.float32) - local_embeddings[1]).max() <= TOLERANCE
    single = embed_row_handler(tiny_model_dir)(photo_bytes[2])
    assert np.abs(np.asarray(single, dtype=np.float32) - local_embeddings[2]).max() <= TOLERANCE


def test_model_is_loaded_once_per_artefact(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = udf_module.load_model(tiny_model_dir)
    assert udf_module.load_model(tiny_model_dir) is first
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in tiny_model_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert (
        udf_module.load_model(copy) is first
    )  # same artefact at another path (local testing's temp imports)
    with pytest.raises(ArtefactError):
        udf_module.load_model(tmp_path / "missing")


def test_import_directory_outside_snowflake_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys._xoptions, "snowflake_import_directory", raising=False)
    with pytest.raises(SnowflakeError, match="not running inside a Snowflake UDF"):
        udf_module.import_directory()


def test_udf_inside_the_local_session_equals_local_embed(
    local_session, tiny_model_dir: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    config = SnowflakeConfig(stage="UDF_TEST_STAGE", udf_name="UDF_TEST_EMBED", udf_runtime="torch")
    backend = LocalTestingBackend(local_session)
    files = upload_model(local_session, tiny_model_dir, config.stage, backend=backend)
    register_embedding_udf(local_session, backend, model_files=files, config=config)
    ids = [p.stem for p in twelve_photos]
    write_table(
        local_session,
        "UDF_TEST_IMAGES",
        image_rows(pd.DataFrame({"item_id": ids, "image_path": [str(p) for p in twelve_photos]})),
        spec="IMAGES",
    )
    images = local_session.table("UDF_TEST_IMAGES")
    rows = images.select(
        "ITEM_ID", F.call_function(config.udf_name, F.col("IMAGE")).alias("EMBEDDING")
    ).collect()
    by_id = {r["ITEM_ID"]: r["EMBEDDING"] for r in rows}
    warehouse = np.asarray([by_id[i] for i in ids], dtype=np.float32)
    assert warehouse.shape == (12, 512)
    assert np.abs(warehouse - local_embeddings).max() <= TOLERANCE


def test_registration_needs_the_staged_metadata(local_session) -> None:
    with pytest.raises(SnowflakeError, match=r"metadata\.json"):
        register_embedding_udf(
            local_session,
            model_files=["@S/models/x/weights-0.safetensors"],
            config=SnowflakeConfig(udf_runtime="torch"),
        )


def test_account_registration_arguments(
    recording_session,
    tiny_model_dir: Path,
    photo_bytes: list[bytes],
    local_embeddings: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SnowflakeConfig(
        mode="account",
        stage="RECO.PUBLIC.MODELS",
        udf_name="RECO.PUBLIC.EMBED_IMAGE",
        max_batch_size=48,
        udf_runtime="torch",
    )
    files = [
        "@RECO.PUBLIC.MODELS/models/abc/metadata.json",
        "@RECO.PUBLIC.MODELS/models/abc/weights-0123456789ab.safetensors",
    ]
    register_embedding_udf(
        recording_session,
        AccountBackend(recording_session),
        model_files=files,
        config=config,
        code_imports=["@RECO.PUBLIC.MODELS/code/fff/fashion_reco-fff.zip"],
    )
    (kwargs,) = recording_session.registered
    assert kwargs["name"] == "RECO.PUBLIC.EMBED_IMAGE_ARRAY"
    assert kwargs["input_types"] == [PandasSeriesType(BinaryType())]
    assert kwargs["return_type"] == PandasSeriesType(ArrayType(FloatType()))
    assert kwargs["copy_grants"] is True
    assert kwargs["max_batch_size"] == 48
    assert kwargs["is_permanent"] and kwargs["stage_location"] == "@RECO.PUBLIC.MODELS/udf"
    assert kwargs["imports"] == [*files, "@RECO.PUBLIC.MODELS/code/fff/fashion_reco-fff.zip"]
    assert not any(version("torch").split("+")[0] in p for p in kwargs["packages"])  # never the local pins
    assert {p.split(">=")[0] for p in kwargs["packages"]} >= {
        "pytorch",
        "torchvision",
        "safetensors",
        "pillow",
        "numpy",
        "pandas",
    }
    # The registered function reads the model from the UDF import directory, as inside Snowflake.
    monkeypatch.setitem(sys._xoptions, "snowflake_import_directory", str(tiny_model_dir))
    out = kwargs["func"](pd.Series(photo_bytes[:3]))
    assert np.abs(np.asarray(out.tolist(), dtype=np.float32) - local_embeddings[:3]).max() <= TOLERANCE


def _module_level_imports(module: str, seen: set[str]) -> set[str]:
    """Top-level names a fashion_reco module imports at module level (not under TYPE_CHECKING), transitively."""
    if module in seen:
        return set()
    seen.add(module)
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module]
        for target in targets:
            if target.startswith("fashion_reco"):
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                    names |= _module_level_imports(".".join(parts[:depth]), seen)
            else:
                names.add(target.split(".")[0])
    return names


def test_udf_packages_cover_everything_the_handler_imports() -> None:
    imported = _module_level_imports("fashion_reco.snowflake.udf", set()) - set(sys.stdlib_module_names)
    imported -= {"__future__"}
    distributions = importlib.metadata.packages_distributions()
    needed = {d.lower() for name in imported for d in distributions.get(name, [name])}
    assert "snowflake-snowpark-python" not in needed  # the handler never needs Snowpark on the server
    assert needed <= set(udf_module.UDF_DISTRIBUTIONS), needed - set(udf_module.UDF_DISTRIBUTIONS)
    assert {"torch", "torchvision", "safetensors", "pillow", "numpy", "pandas"} <= needed
    assert [p.split(">=")[0] for p in udf_packages("torch")[:2]] == ["pytorch", "torchvision"]


_ACCOUNT_PROBE = """
import sys, json
sys.path[:] = [p for p in sys.path if not p.rstrip('/').endswith('/src')]
sys.path.insert(0, sys.argv[1])          # the staged code zip, as Snowflake puts imports on sys.path
import pandas as pd
from fashion_reco.snowflake.udf import embed_handler
handler = embed_handler()                # as registered: the model comes from the UDF import directory
images = [open(p, 'rb').read() for p in json.loads(sys.argv[2])]
out = handler(pd.Series(images))
import fashion_reco
print(json.dumps({"module": fashion_reco.__file__, "embeddings": out.tolist()}))
"""


def test_vectorised_handler_runs_from_the_code_zip_and_import_directory(
    tmp_path: Path, tiny_model_dir: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    """Emulates the account runtime: a fresh interpreter, the library only from the staged zip, the model only from
    the import directory (``-X snowflake_import_directory``)."""
    archive = build_code_zip(tmp_path)
    assert build_code_zip(tmp_path / "again").name == archive.name  # deterministic, content-named
    names = zipfile.ZipFile(archive).namelist()
    assert "fashion_reco/snowflake/udf.py" in names and "fashion_reco/model/image_model.py" in names
    assert all(n.endswith((".py", "py.typed")) for n in names)
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            f"snowflake_import_directory={tiny_model_dir}",
            "-c",
            _ACCOUNT_PROBE,
            str(archive),
            json.dumps([str(p) for p in twelve_photos[:4]]),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["module"].startswith(str(archive))
    got = np.asarray(result["embeddings"], dtype=np.float32)
    assert np.abs(got - local_embeddings[:4]).max() <= TOLERANCE
