"""The Snowflake Model Registry as an alternative target: the image model as a ``CustomModel`` callable from SQL.

``deploy(..., target="registry")`` logs the ONNX export of the image model with
``snowflake.ml.registry.Registry.log_model`` as a ``snowflake.ml.model.custom_model.CustomModel`` whose ``predict``
takes a frame with an ``IMAGE`` column (encoded photo bytes) and returns ``EMBEDDING`` (512 floats, L2-normalised):
the same torch-free runtime as the UDF (:mod:`fashion_reco.snowflake.onnx_udf`), shipped as the model's
``code_paths``, with the ONNX file as its artefact. SQL then calls ``MODEL(<name>, <version>)!PREDICT(IMAGE)``.

``snowflake-ml-python`` is an optional extra (``pip install 'fashion-reco[snowflake-ml]'``) imported only here and
only when used: in this project's pinned environment it would downgrade ``packaging``, so it is not installed for the
tests. What runs offline is :class:`ImageEmbeddingPredictor`, the whole of the CustomModel's ``predict`` logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.snowflake.identifiers import validate_identifier
from fashion_reco.snowflake.onnx_udf import ONNX_FILE, embed_blobs

if TYPE_CHECKING:
    from snowflake.snowpark import Session

__all__ = [
    "INPUT_COLUMN",
    "OUTPUT_COLUMN",
    "ImageEmbeddingPredictor",
    "custom_model_class",
    "log_image_model",
    "registry_dependencies",
]

INPUT_COLUMN = "IMAGE"
OUTPUT_COLUMN = "EMBEDDING"
ARTIFACT = "onnx_model"


class ImageEmbeddingPredictor:
    """``predict`` of the registry model: frame with ``IMAGE`` bytes → frame with ``EMBEDDING`` (same index)."""

    def __init__(self, onnx_path: str | Path, policy: Mapping[str, Any] | None = None) -> None:
        self.onnx_path = str(onnx_path)
        self.policy = dict(policy or {})

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if INPUT_COLUMN not in frame.columns:
            raise SnowflakeError(
                f"input frame needs an {INPUT_COLUMN!r} column of image bytes", column=INPUT_COLUMN
            )
        vectors = embed_blobs(list(frame[INPUT_COLUMN]), self.onnx_path, self.policy)
        return pd.DataFrame({OUTPUT_COLUMN: pd.Series(vectors, index=frame.index, dtype=object)})


def _snowflake_ml() -> tuple[Any, Any]:
    try:
        from snowflake.ml.model import custom_model
        from snowflake.ml.registry import Registry
    except ImportError:
        raise ConfigError(
            "the Model Registry target needs snowflake-ml-python: pip install 'fashion-reco[snowflake-ml]'",
            key="target",
        ) from None
    return custom_model, Registry


def custom_model_class(policy: Mapping[str, Any] | None = None) -> type:
    """A ``CustomModel`` subclass whose ``predict`` is :class:`ImageEmbeddingPredictor` over the ONNX artefact."""
    custom_model, _ = _snowflake_ml()
    rules = dict(policy or {})

    class FashionRecoImageModel(custom_model.CustomModel):  # type: ignore[name-defined]
        """fashion-reco image embeddings: IMAGE (bytes) → EMBEDDING (512 floats)."""

        def __init__(self, context: Any) -> None:
            super().__init__(context)
            self._predict = ImageEmbeddingPredictor(self.context.path(ARTIFACT), rules)

        @custom_model.inference_api
        def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
            return self._predict(frame)

    return FashionRecoImageModel


def registry_dependencies() -> list[str]:
    """Conda dependencies of the logged model: the ONNX runtime's packages without Snowpark."""
    from fashion_reco.snowflake.packages import DEFAULT_PACKAGES, parse_spec

    return [s for s in DEFAULT_PACKAGES["onnx"] if parse_spec(s).name != "snowflake-snowpark-python"]


def log_image_model(
    session: Session,
    onnx_path: str | Path,
    *,
    model_name: str,
    version_name: str,
    policy: Mapping[str, Any] | None = None,
    sample_images: list[bytes] | None = None,
    database: str | None = None,
    schema: str | None = None,
) -> Any:
    """Log the image model to the registry of ``database.schema`` (default: the session's); returns the version."""
    import tempfile
    import zipfile

    from fashion_reco.snowflake.onnx_udf import build_runtime_zip

    custom_model, Registry = _snowflake_ml()
    name = validate_identifier(model_name, "table")
    version = validate_identifier(version_name, "identifier")
    if Path(onnx_path).name != ONNX_FILE:
        raise SnowflakeError(f"expected an exported {ONNX_FILE}", file=onnx_path)
    model = custom_model_class(policy)(custom_model.ModelContext(artifacts={ARTIFACT: str(onnx_path)}))
    sample = pd.DataFrame({INPUT_COLUMN: sample_images or []}) if sample_images else None
    registry = Registry(session=session, database_name=database, schema_name=schema)
    with tempfile.TemporaryDirectory(prefix="fashion-reco-registry-") as tmp:
        with zipfile.ZipFile(build_runtime_zip(Path(tmp) / "zip")) as archive:
            archive.extractall(Path(tmp) / "code")  # our own deterministic zip of four modules
        return registry.log_model(
            model,
            model_name=name,
            version_name=version,
            conda_dependencies=registry_dependencies(),
            code_paths=[str(Path(tmp) / "code" / "fashion_reco")],
            sample_input_data=sample,
            comment="fashion-reco image embeddings (ONNX runtime)",
        )
