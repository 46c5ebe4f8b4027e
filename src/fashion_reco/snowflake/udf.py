"""The image-embedding UDF: one pure pandas-batch handler, registered vectorised on an account, scalar locally.

``embed_handler(model_dir)`` returns a function mapping a pandas Series of encoded images (JPEG/PNG… bytes; NULLs
allowed) to a Series of 512-float lists: exactly ``ImageModel.embed_bytes``, float32, L2-normalised. An unusable
image gives NULL (and a warning) instead of failing the whole query.

**Model loading.** The :class:`ImageModel` is loaded once per process and kept in a module-level cache. Inside
Snowflake the artefact directory is the UDF's import directory (``sys._xoptions["snowflake_import_directory"]``),
which holds the staged ``metadata.json`` and ``weights-<sha12>.safetensors``. The cache is keyed by the artefact
itself (the SHA-256 of its ``metadata.json``, which pins the weights' SHA-256 that ``ImageModel.load`` verifies):
Snowpark's local testing engine copies the imports to a fresh temporary directory for every query, and a key on the
path alone would reload the model each time and grow without bound.

**Registration.** On an account (:class:`~fashion_reco.snowflake.backend.AccountBackend`): a permanent vectorised
UDF, ``PandasSeriesType(BinaryType())`` → ``PandasSeriesType(VectorType(float, 512))``, ``max_batch_size`` from the
config, imports = the staged model files plus a zip of this library's Python sources (staged next to them), and
packages pinned to the versions installed here (Snowflake's Anaconda channel must offer them; pass ``packages=`` to
choose others — ``deploy`` verifies the warehouse's embeddings against the local ones either way). In local testing:
the scalar form of the same handler (BINARY → ``VECTOR(FLOAT, 512)``) with the same staged model imports, because
local testing calls UDFs one row at a time.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import sys
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

# Imported eagerly, never inside a UDF call: Snowpark local testing drops the modules a UDF call imports from
# sys.modules afterwards, and compiled extensions (safetensors' Rust core) cannot be initialised twice.
import safetensors.torch  # noqa: F401
from PIL import Image

from fashion_reco.errors import SnowflakeError
from fashion_reco.model.image_model import EmbedResult, ImageModel

if TYPE_CHECKING:
    from snowflake.snowpark import Session
    from snowflake.snowpark.udf import UserDefinedFunction

    from fashion_reco.config import SnowflakeConfig
    from fashion_reco.snowflake.backend import WarehouseBackend

__all__ = [
    "EMBEDDING_DIM",
    "UDF_DISTRIBUTIONS",
    "build_code_zip",
    "embed_files_handler",
    "embed_handler",
    "embed_row_handler",
    "embed_series",
    "import_directory",
    "load_model",
    "register_embedding_udf",
    "udf_packages",
]

log = logging.getLogger(__name__)
Image.init()  # register every PIL decoder now (PIL imports its plugins lazily on the first open)

EMBEDDING_DIM = 512
IMPORT_DIRECTORY_OPTION = "snowflake_import_directory"
_CACHE: OrderedDict[str, ImageModel] = OrderedDict()
_CACHE_SIZE = 2
_LOCK = threading.Lock()

# Distribution (as installed here) → name in Snowflake's Anaconda channel, for what the torch handler imports.
UDF_DISTRIBUTIONS: dict[str, str] = {
    "torch": "pytorch",
    "torchvision": "torchvision",
    "safetensors": "safetensors",
    "pillow": "pillow",
    "numpy": "numpy",
    "pandas": "pandas",
    "pydantic": "pydantic",
    "pydantic-settings": "pydantic-settings",
    "tqdm": "tqdm",
}


def import_directory() -> Path:
    """The UDF's import directory inside Snowflake (or Snowpark local testing)."""
    directory = getattr(sys, "_xoptions", {}).get(IMPORT_DIRECTORY_OPTION)
    if not directory:
        raise SnowflakeError(
            "not running inside a Snowflake UDF (no snowflake_import_directory): pass the model directory",
            key=IMPORT_DIRECTORY_OPTION,
        )
    return Path(directory)


def load_model(model_dir: str | Path | None = None) -> ImageModel:
    """The :class:`ImageModel` of ``model_dir`` (default: the UDF import directory), loaded once per process."""
    root = Path(model_dir) if model_dir is not None else import_directory()
    try:
        key = hashlib.sha256((root / "metadata.json").read_bytes()).hexdigest()
    except OSError:
        key = f"missing:{root}"  # ImageModel.load raises the precise ArtefactError below
    with _LOCK:
        model = _CACHE.get(key)
        if model is not None:
            _CACHE.move_to_end(key)
            return model
        model = ImageModel.load(root)
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        log.info("loaded image model from %s into the UDF cache", root)
        return model


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def embed_series(images: pd.Series, model_dir: str | Path | None = None) -> pd.Series:
    """Embed a batch of encoded images → Series (same index) of 512-float lists; NULL in, NULL out; bad image → NULL."""
    values = list(images)
    out: list[list[float] | None] = [None] * len(values)
    present = [i for i, v in enumerate(values) if not _is_null(v)]
    if present:
        model = load_model(model_dir)
        result = model.embed_bytes([bytes(values[i]) for i in present], return_failed=True)
        assert isinstance(result, EmbedResult)  # noqa: S101 - return_failed=True always gives one
        for position, row in zip(result.indices, result.embeddings, strict=True):
            out[present[int(position)]] = row.tolist()
        for bad in result.failed:
            log.warning(
                "image at batch position %d is unusable, embedding is NULL: %s",
                present[bad.index],
                bad.reason,
            )
    return pd.Series(out, index=images.index, dtype=object)


def embed_handler(model_dir: str | Path | None = None) -> Callable[[pd.Series], pd.Series]:
    """The vectorised handler: pandas Series of image bytes → Series of 512-float lists.

    ``model_dir`` ``None`` means "the UDF import directory" (resolved at call time, inside the warehouse).
    """
    directory = None if model_dir is None else str(Path(model_dir).resolve())

    def embed_images(images):  # no annotations: Snowpark would re-derive the SQL types from them
        return embed_series(images, directory)

    return embed_images


def embed_row_handler(model_dir: str | Path | None = None) -> Callable[[bytes], list[float] | None]:
    """The scalar form of :func:`embed_handler` (one image's bytes → one list), for engines that call per row."""
    batch = embed_handler(model_dir)

    def embed_image(image):  # no annotations: Snowpark would re-derive the SQL types from them
        return batch(pd.Series([image], dtype=object)).iloc[0]

    return embed_image


def embed_files_handler(
    model_dir: str | Path | None = None, reader: Callable[[str], bytes | None] | None = None
) -> Callable[[pd.Series], pd.Series]:
    """The torch runtime's file variant: Series of staged-file URLs → Series of 512-float lists (via SnowflakeFile)."""
    from fashion_reco.snowflake.onnx_udf import _read_staged

    batch = embed_handler(model_dir)
    read = reader or _read_staged

    def embed_files(urls):  # no annotations: Snowpark would re-derive the SQL types from them
        blobs = [None if _is_null(u) else read(str(u)) for u in urls]
        return batch(pd.Series(blobs, index=urls.index, dtype=object))

    return embed_files


def udf_packages(runtime: str = "torch") -> list[str]:
    """Channel package specs for the handler of ``runtime`` (the defaults; never the versions installed here)."""
    from fashion_reco.snowflake.packages import DEFAULT_PACKAGES

    return list(DEFAULT_PACKAGES[runtime])


def build_code_zip(dest_dir: str | Path) -> Path:
    """Zip this library's Python sources (no data, no bytecode) for a UDF import; deterministic, content-named."""
    package = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package.parent)
            if not path.is_file() or "__pycache__" in relative.parts:
                continue
            if path.suffix != ".py" and path.name != "py.typed":
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    payload = buffer.getvalue()
    target = Path(dest_dir) / f"fashion_reco-{hashlib.sha256(payload).hexdigest()[:12]}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(payload)
    return target


def _session_reader(session: Session) -> Callable[[str], bytes | None]:
    """A staged-file reader bound to ``session`` (``session.file.get_stream``); ``None`` for an unreadable file."""

    def read(url: str) -> bytes | None:
        try:
            return bytes(session.file.get_stream(url).read())
        except Exception as exc:  # a missing file gives a NULL embedding, not a failed query
            log.warning("cannot read staged file %s: %s", url.split("?")[0], type(exc).__name__)
            return None

    return read


def _stage_code(session: Session, stage: str, runtime: str) -> list[str]:
    from fashion_reco.snowflake.onnx_udf import build_runtime_zip
    from fashion_reco.snowflake.stage import upload_directory

    with tempfile.TemporaryDirectory(prefix="fashion-reco-code-") as tmp:
        archive = build_runtime_zip(tmp) if runtime == "onnx" else build_code_zip(tmp)
        staged = upload_directory(session, tmp, stage, f"code/{archive.stem.rsplit('-', 1)[1]}")
    return [f.location for f in staged]


def register_embedding_udf(
    session: Session,
    backend: WarehouseBackend | None = None,
    *,
    model_files: Sequence[str],
    config: SnowflakeConfig,
    packages: Sequence[str] | None = None,
    code_imports: Sequence[str] | None = None,
    policy: Mapping[str, Any] | None = None,
    name: str | None = None,
    input_type: Literal["binary", "string"] = "binary",
) -> UserDefinedFunction:
    """Register ``name`` (default ``config.udf_name``) over the staged model files.

    ``config.udf_runtime = "onnx"``: the files must include the staged ``model.onnx`` (``export_onnx``), the code
    import is the torch-free runtime zip; ``"torch"``: ``metadata.json`` + weights, the code import is the whole
    library. Account: ``<name>_ARRAY`` vectorised and permanent plus the VECTOR SQL function ``<name>``, packages
    ``packages`` or :func:`~fashion_reco.snowflake.packages.udf_packages_for`. Local testing: scalar, same handler,
    same imports. ``input_type="string"`` registers the variant that reads staged files from their URLs.
    """
    from fashion_reco.snowflake.backend import UdfSpec, backend_for
    from fashion_reco.snowflake.onnx_udf import ONNX_FILE, onnx_embed_files_handler, onnx_embed_handler
    from fashion_reco.snowflake.packages import udf_packages_for

    backend = backend or backend_for(session)
    runtime = config.udf_runtime
    needed = ONNX_FILE if runtime == "onnx" else "metadata.json"
    if not model_files or not any(str(f).endswith(f"/{needed}") for f in model_files):
        raise SnowflakeError(
            f"the staged model files must include {needed} (udf_runtime {runtime!r})", key="model_files"
        )
    if not backend.is_local and code_imports is None:
        code_imports = _stage_code(session, config.stage, runtime)
    # Local testing: read staged files through this session (SnowflakeFile asks for *the* active session, which is
    # ambiguous when a process holds several). On an account the handler uses SnowflakeFile inside the warehouse.
    reader = _session_reader(session) if backend.is_local else None
    batch: Callable[[pd.Series], pd.Series]
    if runtime == "onnx":
        if input_type == "binary":
            batch = onnx_embed_handler(policy=policy)
        else:
            batch = onnx_embed_files_handler(policy=policy, reader=reader)
    else:
        batch = embed_handler() if input_type == "binary" else embed_files_handler(reader=reader)

    def row(value):  # no annotations: Snowpark would re-derive the SQL types from them
        return batch(pd.Series([value], dtype=object)).iloc[0]

    spec = UdfSpec(
        name=name or config.udf_name,
        batch_handler=batch,
        row_handler=row,
        imports=tuple(model_files),
        code_imports=tuple(code_imports or ()),
        packages=tuple(packages if packages is not None else udf_packages_for(config)),
        dim=EMBEDDING_DIM,
        max_batch_size=config.max_batch_size,
        udf_stage=config.stage,
        input_type=input_type,
        artifact_repository=config.artifact_repository,
        comment=f"fashion-reco image embedding ({runtime} runtime, L2-normalised)",
    )
    return backend.register_udf(spec)
