"""The Model Registry target offline: the CustomModel's predict logic, and a clear error without the extra."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco.config import SnowflakeConfig
from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.model.image_model import ImageModel
from fashion_reco.model.onnx_export import export_onnx
from fashion_reco.snowflake.deploy import deploy
from fashion_reco.snowflake.registry import ImageEmbeddingPredictor, custom_model_class, registry_dependencies

HAS_SNOWFLAKE_ML = importlib.util.find_spec("snowflake.ml") is not None


@pytest.fixture(scope="module")
def onnx_path(tiny_model: ImageModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_model, tmp_path_factory.mktemp("registry") / "model.onnx")


def test_predict_maps_image_bytes_to_local_embeddings(
    onnx_path: Path, photo_bytes: list[bytes], local_embeddings: np.ndarray
) -> None:
    predict = ImageEmbeddingPredictor(onnx_path)
    frame = pd.DataFrame({"IMAGE": [*photo_bytes[:5], None]}, index=[7, 8, 9, 10, 11, 12])
    out = predict(frame)
    assert list(out.columns) == ["EMBEDDING"] and list(out.index) == [7, 8, 9, 10, 11, 12]
    assert out["EMBEDDING"].iloc[-1] is None
    got = np.asarray(out["EMBEDDING"].iloc[:5].tolist(), dtype=np.float32)
    assert np.abs(got - local_embeddings[:5]).max() <= 1e-5
    with pytest.raises(SnowflakeError, match="IMAGE"):
        predict(pd.DataFrame({"PHOTO": photo_bytes[:1]}))


def test_registry_model_needs_no_snowpark_or_torch() -> None:
    names = {d.split(">=")[0] for d in registry_dependencies()}
    assert "onnxruntime" in names and not names & {"snowflake-snowpark-python", "pytorch", "torchvision"}


@pytest.mark.skipif(
    HAS_SNOWFLAKE_ML, reason="snowflake-ml-python is installed: the missing-extra path cannot run"
)
def test_without_the_extra_the_error_says_what_to_install(
    local_session, tiny_model_dir: Path, twelve_photos: list[Path], local_embeddings: np.ndarray
) -> None:
    with pytest.raises(ConfigError, match=r"fashion-reco\[snowflake-ml\]"):
        custom_model_class()
    catalogue = pd.DataFrame(
        {"item_id": [p.stem for p in twelve_photos], "image_path": map(str, twelve_photos)}
    )
    with pytest.raises(ConfigError, match="snowflake-ml-python"):
        deploy(
            local_session,
            tiny_model_dir,
            catalogue,
            local_embeddings,
            config=SnowflakeConfig(table_prefix="REG_T_", stage="REG_T_STAGE"),
            target="registry",
        )
    assert "REG_T_CATALOGUE" not in {t.upper() for t in local_session._conn.entity_registry.table_registry}
