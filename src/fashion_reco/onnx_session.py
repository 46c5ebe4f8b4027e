"""One way to open an exported embedding model with onnxruntime on CPU.

Torch-free on purpose: the local ONNX embedder (``model/onnx_export.py``) and the warehouse's ONNX UDF
(``snowflake/onnx_udf.py``, shipped in a zip without torch) both open their model through it.
"""

from __future__ import annotations

import os
from typing import Any

from fashion_reco.errors import ModelError

__all__ = ["SPEC_KEY", "open_onnx_session"]

#: metadata key of the preprocessing spec that travels inside an exported model
SPEC_KEY = "fashion_reco.preprocess"


def open_onnx_session(
    path: str | os.PathLike[str], num_threads: int | None = None
) -> tuple[Any, dict[str, str]]:
    """A CPU ``InferenceSession`` for ``path`` and the model's custom metadata; a :class:`ModelError` naming the file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            "onnxruntime is not installed (a core dependency): pip install onnxruntime", file=path
        ) from None
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"cannot load ONNX model: {type(exc).__name__}: {exc}", file=path) from None
    return session, dict(session.get_modelmeta().custom_metadata_map)
