"""One call to put a trained model and its data into Snowflake, idempotently, and check it works there.

``deploy`` runs, in order:

1. **stage**: create the stage when missing, upload every file of the model artefact to
   ``@<stage>/models/<fingerprint>/`` and read each one back to compare SHA-256s;
2. **UDF**: register ``<udf_name>`` over the staged files (vectorised on an account, scalar in local testing);
3. **photos**: PUT the catalogue's photos to the photo stage under content-hash names (one parallel PUT, skipping
   those already there; directory table refreshed);
4. **tables**: upsert CATALOGUE, PHOTOS, IMAGE_EMBEDDINGS and, when given, CUSTOMERS, CLICKSTREAM,
   CUSTOMER_PROFILES and RECOMMENDATIONS (keyed writes: re-running never duplicates a row);
5. **verify**: embed a sample of the staged photos *inside the warehouse* through the file UDF and compare them with the
   local embeddings; a difference above ``tolerance`` raises :class:`SnowflakeError` naming the item.

Running it twice with the same inputs leaves the same stage files, the same UDF and the same rows.
"""

from __future__ import annotations

import io
import logging
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from fashion_reco.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from fashion_reco.columns import Columns
from fashion_reco.config import SnowflakeConfig
from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.snowflake.backend import WarehouseBackend, backend_for
from fashion_reco.snowflake.batch import BatchDeployment, deploy_batch, scorer_for, scorer_packages
from fashion_reco.snowflake.identifiers import validate_identifier
from fashion_reco.snowflake.packages import check_packages, udf_packages_for
from fashion_reco.snowflake.photos import PhotoUpload, photo_rows, upload_photos
from fashion_reco.snowflake.sql import profile_rows
from fashion_reco.snowflake.stage import (
    StagedFile,
    artefact_fingerprint,
    stage_model,
    upload_directory,
    verify_staged,
)
from fashion_reco.snowflake.tables import (
    TABLES,
    WriteResult,
    catalogue_rows,
    clickstream_rows,
    customers_rows,
    embedding_rows,
    recommendation_rows,
    table_name,
    write_table,
)
from fashion_reco.snowflake.udf import register_embedding_udf

if TYPE_CHECKING:
    from snowflake.snowpark import Session

    from fashion_reco.config import RecommenderConfig
    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.ids import Ids
    from fashion_reco.model.image_model import ImageModel
    from fashion_reco.recommend.ranker import RankerRecommender

__all__ = [
    "DeploymentReport",
    "deploy",
    "deploy_recommender",
    "preflight",
    "stage_onnx",
    "verify_udf_embeddings",
]

log = logging.getLogger(__name__)


class DeploymentReport(BaseModel):
    """What a deployment created, how many rows each table holds, and how the warehouse's embeddings compare."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["local", "account"]
    stage: str
    model_fingerprint: str
    stage_files: list[StagedFile]
    udf_name: str
    file_udf_name: str
    photos: PhotoUpload
    tables: dict[str, int] = Field(description="table name -> row count after the deployment")
    writes: list[WriteResult]
    verified_items: list[str]
    max_abs_diff: float = Field(
        description="largest |warehouse - local| embedding difference over the sample"
    )
    tolerance: float
    seconds: float
    batch: BatchDeployment | None = Field(
        None, description="the batch procedure (and, on an account, function, view and task) when deployed"
    )

    def summary(self) -> str:
        """One paragraph: where things are and whether the in-warehouse check passed."""
        tables = ", ".join(f"{name} {rows}" for name, rows in self.tables.items())
        return (
            f"{'local testing session' if self.mode == 'local' else 'Snowflake account'}: "
            f"{len(self.stage_files)} model files on @{self.stage} (model {self.model_fingerprint}), "
            f"UDF {self.udf_name}; {self.photos.files} photos on @{self.photos.stage} ({self.photos.uploaded} "
            f"uploaded); tables: {tables}; in-warehouse embeddings of {len(self.verified_items)} items "
            f"match local (max |diff| {self.max_abs_diff:.2e} <= {self.tolerance:.0e})"
            + (f"; batch procedure {self.batch.procedure}" if self.batch is not None else "")
        )


def _item_ids(catalogue: Any) -> list[str]:
    items = catalogue if isinstance(catalogue, pd.DataFrame) else getattr(catalogue, "items", None)
    if not isinstance(items, pd.DataFrame) or Columns.ITEM_ID not in items.columns:
        raise SnowflakeError("catalogue must be a Catalogue (or a frame with item_id)", key="catalogue")
    return [str(i) for i in items[Columns.ITEM_ID]]


def preflight(
    session: Session, backend: WarehouseBackend, config: SnowflakeConfig, also_check: Sequence[str] = ()
) -> None:
    """Checks that must pass before anything is created on an account: the Python runtime and the packages.

    Snowpark ships handlers pickled for the Python it runs in, so ``runtime_version`` must equal this Python's
    ``major.minor``; the requested packages must exist in Snowflake's channel (one error lists every one that does
    not; ``also_check`` adds more specs — the batch procedure's — to the same single check). Local testing has no
    channel: nothing to check.
    """
    if backend.is_local:
        return
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if config.runtime_version != here:
        raise ConfigError(
            f"snowflake.runtime_version is {config.runtime_version} but this Python is {here}: Snowpark pickles "
            "the handlers for the Python that registers them; deploy from a Python "
            f'{config.runtime_version} environment or set runtime_version = "{here}"',
            key="snowflake.runtime_version",
        )
    if config.check_packages and not config.artifact_repository:
        specs = list(dict.fromkeys([*udf_packages_for(config), *also_check]))
        what = "embedding UDF and batch procedure" if also_check else "embedding UDF"
        check_packages(session, specs, config.runtime_version, what=what)


def stage_onnx(
    session: Session, model_dir: str | Path, stage: str, *, backend: WarehouseBackend | None = None
) -> tuple[list[StagedFile], dict[str, Any]]:
    """Export the model's embedding trunk to ONNX and stage it at ``@stage/onnx/<sha12>/model.onnx``.

    Returns the staged file and the model's image policy (what counts as a usable image) for the handler.
    """
    from fashion_reco.model.image_model import ImageModel
    from fashion_reco.model.onnx_export import export_onnx
    from fashion_reco.snowflake.onnx_udf import ONNX_FILE

    model = ImageModel.load(model_dir)
    canonical = (backend or backend_for(session)).ensure_stage(stage)
    with tempfile.TemporaryDirectory(prefix="fashion-reco-onnx-") as tmp:
        path = export_onnx(model, Path(tmp) / ONNX_FILE)
        digest = sha256_file(path)[:12]
        staged = upload_directory(session, tmp, canonical, f"onnx/{digest}")
    return staged, model.policy.model_dump()


def verify_udf_embeddings(
    session: Session,
    images_table: str,
    udf_name: str,
    expected: Mapping[str, np.ndarray],
    tolerance: float,
    *,
    photo_stage: str | None = None,
) -> float:
    """Embed ``expected``'s items through the UDF in the warehouse; returns the max |diff| to the local embeddings.

    Without ``photo_stage`` the UDF gets the IMAGES table's ``IMAGE`` bytes; with it, the PHOTOS table's staged files
    (``BUILD_SCOPED_FILE_URL(@photo_stage, RELATIVE_PATH)``) go to the file variant ``udf_name``.
    """
    from snowflake.snowpark import functions as F

    from fashion_reco.snowflake.photos import scoped_url
    from fashion_reco.snowflake.session import is_local_session

    if not expected:
        return 0.0
    table = session.table(validate_identifier(images_table, "table"))
    # cache_result(): the sample becomes a (temporary) table of its own before the UDF runs over it. Snowpark 1.56's
    # local testing engine evaluates a UDF over a *filtered* frame against the wrong rows; over a table it is right.
    sample = table.filter(F.col("ITEM_ID").isin(*expected)).cache_result()
    argument = (
        F.col("IMAGE")
        if photo_stage is None
        else scoped_url(photo_stage, "RELATIVE_PATH", local=is_local_session(session))
    )
    rows = sample.select(
        F.col("ITEM_ID"), F.call_function(validate_identifier(udf_name, "function"), argument).alias("E")
    ).collect()
    got = {row["ITEM_ID"]: row["E"] for row in rows}
    worst = 0.0
    for item_id, local in expected.items():
        value = got.get(item_id)
        if value is None:
            raise SnowflakeError("the UDF returned no embedding for this item's image", item_id=item_id)
        diff = float(np.abs(np.asarray(value, dtype=np.float32) - local).max())
        if not diff <= tolerance:
            raise SnowflakeError(
                f"in-warehouse embedding differs from the local one by {diff:.3g} (tolerance {tolerance:g})",
                item_id=item_id,
            )
        worst = max(worst, diff)
    return worst


def deploy(
    session: Session,
    model_dir: str | Path,
    catalogue: Catalogue | pd.DataFrame,
    embeddings: np.ndarray,
    *,
    customers: Customers | pd.DataFrame | None = None,
    interactions: Interactions | pd.DataFrame | None = None,
    recommendations: pd.DataFrame | None = None,
    config: SnowflakeConfig | None = None,
    backend: WarehouseBackend | None = None,
    verify_sample: int = 8,
    tolerance: float = 1e-4,
    verify_stage: bool = True,
    event_weights: Mapping[str, float] | None = None,
    target: Literal["udf", "registry"] = "udf",
    also_check: Sequence[str] = (),
) -> DeploymentReport:
    """Stage the model, register the UDF, upsert the tables and verify in-warehouse embeddings (module docstring).

    ``catalogue`` is a ``Catalogue`` and ``embeddings`` its ``[N, 512]`` local embeddings in catalogue order;
    ``customers`` (``Customers`` or frame), ``interactions`` (``Interactions`` or frame) and ``recommendations``
    (``customer_id, item_id, score, rank, reason``) are optional.

    ``also_check``: more package specs (e.g. the batch procedure's) to check with the UDF's before anything is
    created. ``target="registry"`` logs the image model to the Snowflake Model Registry instead (account only, extra
    ``snowflake-ml``) and verifies ``predict`` there; nothing else is created (see :mod:`.registry`).
    """
    started = time.perf_counter()
    config = config or SnowflakeConfig()
    backend = backend or backend_for(session)
    names = {base: table_name(base, config.table_prefix) for base in TABLES}
    udf_name = validate_identifier(config.udf_name, "function")
    ids = _item_ids(catalogue)
    fingerprint = artefact_fingerprint(model_dir)
    embedding_table = embedding_rows(
        ids, np.asarray(embeddings), model_sha=fingerprint
    )  # validated before writing
    matrix = np.asarray(embeddings, dtype=np.float32)

    preflight(session, backend, config, also_check)
    if target == "registry":
        return _deploy_to_registry(
            session,
            backend,
            model_dir,
            catalogue,
            matrix,
            ids,
            config,
            fingerprint,
            verify_sample,
            tolerance,
            started,
        )
    staged = stage_model(session, model_dir, config.stage, backend=backend)
    udf_files, policy = [f.location for f in staged], None
    if config.udf_runtime == "onnx":
        onnx_staged, policy = stage_onnx(session, model_dir, config.stage, backend=backend)
        staged = [*staged, *onnx_staged]
        udf_files = [f.location for f in onnx_staged]
    if verify_stage:
        verify_staged(session, staged)
    register_embedding_udf(session, backend, model_files=udf_files, config=config, policy=policy)
    file_udf = validate_identifier(f"{udf_name}_FILE", "function")
    register_embedding_udf(
        session,
        backend,
        model_files=udf_files,
        config=config,
        policy=policy,
        name=file_udf,
        input_type="string",
    )
    photos = photo_rows(catalogue)
    upload = upload_photos(session, photos, config.photo_stage, parallel=config.put_parallel, backend=backend)

    def write(base: str, rows: pd.DataFrame) -> WriteResult:
        result = write_table(session, names[base], rows, spec=base, backend=backend)
        log.info(
            "%s: %d inserted, %d updated, %d deleted, %d rows",
            result.table,
            result.inserted,
            result.updated,
            result.deleted,
            result.rows,
        )
        return result

    writes = [
        write("CATALOGUE", catalogue_rows(catalogue)),
        write("PHOTOS", photos.drop(columns=["SOURCE"])),
        write("IMAGE_EMBEDDINGS", embedding_table),
    ]
    if customers is not None:
        writes.append(write("CUSTOMERS", customers_rows(customers)))
    if interactions is not None:
        writes.append(write("CLICKSTREAM", clickstream_rows(interactions)))
        writes.append(write("CUSTOMER_PROFILES", profile_rows(interactions, ids, matrix, event_weights)))
    if recommendations is not None:
        writes.append(write("RECOMMENDATIONS", recommendation_rows(recommendations)))

    position = {item_id: i for i, item_id in enumerate(ids)}
    sample = sorted(photos["ITEM_ID"])[: max(0, verify_sample)]
    max_diff = verify_udf_embeddings(
        session,
        names["PHOTOS"],
        file_udf,
        {i: matrix[position[i]] for i in sample},
        tolerance,
        photo_stage=config.photo_stage,
    )
    return DeploymentReport(
        mode="local" if backend.is_local else "account",
        stage=validate_identifier(config.stage.removeprefix("@"), "stage"),
        model_fingerprint=fingerprint,
        stage_files=staged,
        udf_name=udf_name,
        file_udf_name=file_udf,
        photos=upload,
        tables={w.table: w.rows for w in writes},
        writes=writes,
        verified_items=sample,
        max_abs_diff=max_diff,
        tolerance=tolerance,
        seconds=round(time.perf_counter() - started, 3),
    )


def _deploy_to_registry(
    session: Session,
    backend: WarehouseBackend,
    model_dir: str | Path,
    catalogue: Any,
    matrix: np.ndarray,
    ids: list[str],
    config: SnowflakeConfig,
    fingerprint: str,
    verify_sample: int,
    tolerance: float,
    started: float,
) -> DeploymentReport:
    """The registry target: log the ONNX image model as a CustomModel, run ``predict`` on a sample there."""
    from fashion_reco.model.image_model import ImageModel
    from fashion_reco.model.onnx_export import export_onnx
    from fashion_reco.snowflake.onnx_udf import ONNX_FILE
    from fashion_reco.snowflake.registry import OUTPUT_COLUMN, _snowflake_ml, log_image_model

    _snowflake_ml()  # a clear error before anything is done when the extra is missing
    if backend.is_local:
        raise ConfigError(
            "the Model Registry target needs a real account (snowflake.mode = 'account')",
            key="snowflake.mode",
        )
    model = ImageModel.load(model_dir)
    photos = photo_rows(catalogue)
    sample = photos.sort_values("ITEM_ID").head(max(1, verify_sample))
    blobs = [Path(p).read_bytes() for p in sample["SOURCE"]]
    name = validate_identifier(f"{config.table_prefix}IMAGE_MODEL", "table")
    with tempfile.TemporaryDirectory(prefix="fashion-reco-registry-") as tmp:
        onnx = export_onnx(model, Path(tmp) / ONNX_FILE)
        version = log_image_model(
            session,
            onnx,
            model_name=name,
            version_name=f"V_{fingerprint.upper()}",
            policy=model.policy.model_dump(),
            sample_images=blobs[:2],
        )
    out = version.run(pd.DataFrame({"IMAGE": blobs}), function_name="predict")
    position = {item_id: i for i, item_id in enumerate(ids)}
    worst = 0.0
    for item_id, value in zip(sample["ITEM_ID"], out[OUTPUT_COLUMN], strict=True):
        diff = float(np.abs(np.asarray(value, dtype=np.float32) - matrix[position[item_id]]).max())
        if not diff <= tolerance:
            raise SnowflakeError(
                f"registry embedding differs from the local one by {diff:.3g}", item_id=item_id
            )
        worst = max(worst, diff)
    return DeploymentReport(
        mode="account",
        stage=validate_identifier(config.stage.removeprefix("@"), "stage"),
        model_fingerprint=fingerprint,
        stage_files=[],
        udf_name=f"MODEL({name}, V_{fingerprint.upper()})!PREDICT",
        file_udf_name="",
        photos=PhotoUpload(stage="", files=0, uploaded=0, skipped=0),
        tables={},
        writes=[],
        verified_items=list(sample["ITEM_ID"]),
        max_abs_diff=worst,
        tolerance=tolerance,
        seconds=round(time.perf_counter() - started, 3),
    )


class DeployableRecommender(Protocol):
    """What :func:`deploy_recommender` reads from a fitted ``FashionRecommender`` (the facade, without importing it).

    Read-only properties, so any object exposing these attributes (or narrower types of them) qualifies.
    """

    @property
    def config(self) -> RecommenderConfig:
        """The whole configuration (its ``snowflake`` and ``blend`` sections are used)."""
        ...

    @property
    def image_model(self) -> ImageModel | None:
        """The image model whose artefact is staged and served by the UDF."""
        ...

    @property
    def catalogue(self) -> Catalogue | None:
        """The catalogue (items, labels, photo paths)."""
        ...

    @property
    def item_embeddings(self) -> np.ndarray | None:
        """``[N, 512]`` local embeddings in catalogue order."""
        ...

    @property
    def customers(self) -> Customers | None:
        """The customer table, when known."""
        ...

    @property
    def interactions(self) -> Interactions | None:
        """The clickstream the model was fitted on, when known."""
        ...

    @property
    def recommender(self) -> RankerRecommender | BlendRecommender | None:
        """The fitted personalised model (the batch procedure scores with it)."""
        ...

    def recommend(self, customer_ids: Ids, k: int = 12) -> pd.DataFrame:
        """Top-``k`` per customer: ``customer_id, item_id, score, rank, reason``."""
        ...


def deploy_recommender(
    recommender: DeployableRecommender,
    *,
    session: Session | None = None,
    config: SnowflakeConfig | None = None,
    work_dir: str | Path | None = None,
    k: int | None = None,
    batch: bool = True,
    target: Literal["tables", "registry"] = "tables",
) -> DeploymentReport:
    """Deploy a fitted ``FashionRecommender``: its image model, catalogue, embeddings, customers, clickstream and
    top-``k`` recommendations for every known customer (``k`` defaults to ``config.blend.k``).

    With ``batch`` (default) and a fitted personalised model, the batch-recommendation procedure is registered too
    — scoring with the LightGBM ranker, or with the blend when the model is a blend or the ranker fell back to it —
    (and, on an account with ``snowflake.warehouse`` set, the "more like this" function and view and the nightly
    task), so the warehouse can recompute RECOMMENDATIONS itself (:func:`~fashion_reco.snowflake.batch.deploy_batch`).

    ``target="registry"`` logs the image model to the Snowflake Model Registry instead (account and extra
    ``snowflake-ml`` needed; nothing else is created). Without a session, one is opened from ``config`` (local
    testing by default). With ``work_dir``, the model artefact is written there and, for a local testing session
    (which vanishes with the process), every deployed table is exported to ``work_dir/tables/<TABLE>.parquet`` next
    to ``deployment.json``.
    """
    from fashion_reco.snowflake.session import create_session

    config = config or recommender.config.snowflake
    # a session opened here is closed here: two open sessions break local testing's UDFs
    owned = session is None
    session = session or create_session(config)
    try:
        backend = backend_for(session)
        image_model = getattr(recommender, "image_model", None)
        catalogue = getattr(recommender, "catalogue", None)
        embeddings = getattr(recommender, "item_embeddings", None)
        if image_model is None or catalogue is None or embeddings is None:
            from fashion_reco.errors import NotFittedError

            raise NotFittedError("nothing to deploy: fit() or load() the recommender first")
        customer_ids: list[str] = []
        if recommender.interactions is not None:
            customer_ids += [str(c) for c in recommender.interactions.customers]
        if recommender.customers is not None:
            customer_ids += [str(c) for c in recommender.customers.customer_ids]
        customer_ids = sorted(set(customer_ids))
        recommendations = None
        if target == "registry":
            from fashion_reco.snowflake.registry import _snowflake_ml

            _snowflake_ml()  # the clear "install the extra" error before any work
        elif customer_ids and getattr(recommender, "recommender", None) is not None:
            recommendations = recommender.recommend(customer_ids, k=k or recommender.config.blend.k)

        with tempfile.TemporaryDirectory(prefix="fashion-reco-deploy-") as tmp:
            root = Path(work_dir) if work_dir is not None else Path(tmp)
            model_dir = image_model.save(root / "image_model")
            scorer_model = getattr(recommender, "recommender", None)
            with_batch = (
                target == "tables"
                and batch
                and scorer_model is not None
                and getattr(scorer_model, "data_", None) is not None
            )
            scorer = scorer_for(scorer_model) if with_batch and scorer_model is not None else None
            report = deploy(
                session,
                model_dir,
                catalogue,
                embeddings,
                customers=recommender.customers,
                interactions=recommender.interactions,
                recommendations=recommendations,
                config=config,
                backend=backend,
                also_check=scorer_packages(scorer, config) if scorer is not None else (),
                target="registry" if target == "registry" else "udf",
            )
            if scorer is not None:
                batch_report = deploy_batch(
                    session,
                    scorer,
                    config,
                    k=k or recommender.config.blend.k,
                    run_now=False,
                    schedule=bool(config.warehouse),
                )
                report = report.model_copy(update={"batch": batch_report})
            if work_dir is not None:
                if backend.is_local:
                    tables = root / "tables"
                    tables.mkdir(parents=True, exist_ok=True)
                    for name in report.tables:
                        buffer = io.BytesIO()
                        session.table(name).to_pandas().to_parquet(buffer, index=False)
                        atomic_write_bytes(tables / f"{name}.parquet", buffer.getvalue())
                atomic_write_text(root / "deployment.json", report.model_dump_json(indent=2))
        return report
    finally:
        if owned:
            session.close()
