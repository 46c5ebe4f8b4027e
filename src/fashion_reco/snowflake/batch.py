"""Batch recommendations inside the warehouse: a stored procedure, the task that schedules it, its pure handler.

The procedure ``<procedure_name>(K)`` (Snowpark Python, ``EXECUTE AS OWNER``):

1. reads CLICKSTREAM, CUSTOMERS, IMAGE_EMBEDDINGS and CATALOGUE with Snowpark — only the events of items that have
   an embedding and a catalogue row, deduplicated by ``EVENT_ID`` (a join and a filter pushed down to the warehouse);
2. hands them, as pandas frames, to :func:`batch_recommend` — a pure function of the frames and a fitted-model
   payload (:class:`ScoringPayload`) that builds the candidates and features and scores them;
3. replaces each scored customer's rows of RECOMMENDATIONS, keyed by ``(CUSTOMER_ID, RANK)`` (``DELETE`` of the
   customers' old lists, then ``MERGE``), and returns a JSON summary.

**Scoring.** :class:`Scorer` is the seam: :class:`BlendScorer` refits the blend's statistics
(co-occurrence, popularity, taste vectors, profile) on the warehouse's current tables with the weights and half-lives
learned locally (the payload), exactly as :class:`~fashion_reco.recommend.blend.BlendRecommender` does, so its
lists equal local ``recommend`` on the same data. The LightGBM two-stage ranker (``recommend/ranker.py``) plugs in
as another :class:`Scorer` whose payload carries the booster's text model; until it is merged the blend is used.

The task (:func:`task_sql`) calls the procedure on ``snowflake.task_schedule`` in ``snowflake.warehouse``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.snowflake.identifiers import quote_identifier, stage_location, validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import Session
    from snowflake.snowpark.stored_procedure import StoredProcedure

    from fashion_reco.config import SnowflakeConfig
    from fashion_reco.recommend.blend import BlendRecommender

__all__ = [
    "BatchDeployment",
    "BlendScorer",
    "Scorer",
    "ScoringPayload",
    "WarehouseFrames",
    "batch_recommend",
    "deploy_batch",
    "procedure_handler",
    "read_frames",
    "register_procedure",
    "resume_task_sql",
    "scorer_from_payload",
    "task_sql",
]

RESULT_COLUMNS = ["CUSTOMER_ID", "ITEM_ID", "SCORE", "RANK", "REASON"]


@dataclass(frozen=True)
class WarehouseFrames:
    """The procedure's inputs as pandas frames, with the warehouse's (upper-case) column names."""

    clickstream: pd.DataFrame  # CUSTOMER_ID, ITEM_ID, EVENT_TYPE, TIMESTAMP[, QUANTITY]
    customers: pd.DataFrame | None  # CUSTOMER_ID, AGE_BAND, GENDER, PREFERRED_LABELS, ...
    embeddings: pd.DataFrame  # ITEM_ID, EMBEDDING (list / JSON text)
    catalogue: pd.DataFrame  # ITEM_ID, LABEL


@dataclass(frozen=True)
class ScoringPayload:
    """A fitted model's learned state, small enough to travel with the procedure (JSON-serialisable)."""

    kind: str
    config: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    cold_weights: dict[str, float] = field(default_factory=dict)
    half_life_days: float | None = None
    trend_half_life_days: float | None = None

    def to_json(self) -> str:
        """The payload as JSON text (stored beside the procedure, logged nowhere secret: it holds no credentials)."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ScoringPayload:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))


class Scorer(Protocol):
    """What the procedure needs from a model: top-``k`` lists for every customer of ``frames``."""

    def recommend(self, frames: WarehouseFrames, k: int) -> pd.DataFrame:
        """``CUSTOMER_ID, ITEM_ID, SCORE, RANK, REASON`` for every customer in the clickstream or customer table."""
        ...


def _lower(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={c: str(c).lower() for c in frame.columns})


def _vector(value: Any) -> list[float]:
    return json.loads(value) if isinstance(value, str) else list(value)


def _context_and_log(frames: WarehouseFrames) -> tuple[Any, Any]:
    """The library's interactions and fit context from the warehouse frames (items: the catalogue's order)."""
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.recommend.base import FitContext

    catalogue = frames.catalogue
    embedded = frames.embeddings.drop_duplicates("ITEM_ID")
    vectors = dict(zip(embedded["ITEM_ID"].astype(str), embedded["EMBEDDING"], strict=True))
    items = catalogue[catalogue["ITEM_ID"].astype(str).isin(vectors)]
    item_ids = items["ITEM_ID"].astype(str).to_numpy()
    if len(item_ids) == 0:
        raise SnowflakeError(
            "no catalogue item has an embedding: nothing to recommend", key="IMAGE_EMBEDDINGS"
        )
    matrix = np.asarray([_vector(vectors[i]) for i in item_ids], dtype=np.float32)
    labels = items["LABEL"].to_numpy(dtype=object) if "LABEL" in items.columns else None
    customers = None
    if frames.customers is not None and not frames.customers.empty:
        customers = _lower(frames.customers.drop(columns=["ATTRIBUTES"], errors="ignore"))
    events = _lower(frames.clickstream.drop(columns=["EVENT_ID"], errors="ignore"))
    log = Interactions.from_frame(events) if not events.empty else None
    context = FitContext(item_ids=item_ids, item_embeddings=matrix, item_labels=labels, customers=customers)
    return log, context


@dataclass(frozen=True)
class BlendScorer:
    """The blend, refitted on the warehouse's data with the locally learned weights and half-lives."""

    payload: ScoringPayload

    @classmethod
    def from_recommender(cls, recommender: BlendRecommender) -> BlendScorer:
        """The payload of a fitted :class:`BlendRecommender` (its config, options, weights and half-lives)."""
        if recommender.data_ is None:
            from fashion_reco.errors import NotFittedError

            raise NotFittedError("fit the blend before deploying its batch procedure")
        return cls(
            ScoringPayload(
                kind="blend",
                config=recommender.config.model_dump(mode="json"),
                options=recommender.options(),
                weights=dict(recommender.weights_),
                cold_weights=dict(recommender.cold_weights_),
                half_life_days=float(recommender.half_life_days_),
                trend_half_life_days=float(recommender.trend_half_life_days_),
            )
        )

    def fitted(self, frames: WarehouseFrames) -> BlendRecommender:
        """A blend fitted on ``frames`` with the payload's learned values (no tuning inside the warehouse)."""
        from fashion_reco.config import BlendConfig
        from fashion_reco.recommend.blend import BlendRecommender

        log, context = _context_and_log(frames)
        model = BlendRecommender(BlendConfig(**self.payload.config), **self.payload.options)
        model.fit(log, context, tune=False)
        model.weights_ = {s: float(self.payload.weights.get(s, 0.0)) for s in model.signals_}
        model.cold_weights_ = {s: float(self.payload.cold_weights.get(s, 0.0)) for s in model.cold_weights_}
        if self.payload.half_life_days is not None and self.payload.trend_half_life_days is not None:
            model.set_decay(self.payload.half_life_days, self.payload.trend_half_life_days)
        return model

    def recommend(self, frames: WarehouseFrames, k: int) -> pd.DataFrame:
        """Top-``k`` per customer known from the clickstream or the customer table."""
        model = self.fitted(frames)
        ids = set(frames.clickstream["CUSTOMER_ID"].astype(str))
        if frames.customers is not None:
            ids |= set(frames.customers["CUSTOMER_ID"].astype(str))
        if not ids:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        result = model.recommend(sorted(ids), k=k)
        return result.rename(columns={c: c.upper() for c in result.columns})[RESULT_COLUMNS]


SCORERS: dict[str, Callable[[ScoringPayload], Scorer]] = {"blend": BlendScorer}


def scorer_from_payload(payload: ScoringPayload) -> Scorer:
    """The :class:`Scorer` for ``payload.kind`` (``blend``; the ranker registers itself here when merged)."""
    try:
        return SCORERS[payload.kind](payload)
    except KeyError:
        raise SnowflakeError(
            f"unknown scorer kind {payload.kind!r} (known: {sorted(SCORERS)})", key="payload.kind"
        ) from None


def batch_recommend(frames: WarehouseFrames, payload: ScoringPayload, k: int) -> pd.DataFrame:
    """The procedure's computation as a pure function: frames + fitted payload → RECOMMENDATIONS rows."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise SnowflakeError(f"k must be a positive integer, got {k!r}", key="k")
    return scorer_from_payload(payload).recommend(frames, int(k))


# -- inside the warehouse -------------------------------------------------------------------------------------------
def read_frames(session: Session, names: Mapping[str, str]) -> WarehouseFrames:
    """Read the procedure's inputs with Snowpark: events of embedded catalogue items only, one row per EVENT_ID."""
    from snowflake.snowpark import functions as F

    from fashion_reco.snowflake.sql import collect_frame

    table = {base: session.table(validate_identifier(name, "table")) for base, name in names.items()}
    embedded = table["IMAGE_EMBEDDINGS"].select(F.col("ITEM_ID").alias("E_ITEM"))
    events = table["CLICKSTREAM"]
    clicks = (
        events.join(embedded, events["ITEM_ID"] == embedded["E_ITEM"], how="leftsemi")
        .drop_duplicates("EVENT_ID")
        .select("EVENT_ID", "CUSTOMER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "QUANTITY")
    )
    return WarehouseFrames(
        clickstream=collect_frame(clicks).sort_values("EVENT_ID", kind="stable").reset_index(drop=True),
        customers=collect_frame(table["CUSTOMERS"]) if "CUSTOMERS" in table else None,
        embeddings=collect_frame(table["IMAGE_EMBEDDINGS"].select("ITEM_ID", "EMBEDDING")),
        catalogue=collect_frame(table["CATALOGUE"].select("ITEM_ID", "LABEL")),
    )


def procedure_handler(payload: ScoringPayload, names: Mapping[str, str]) -> Callable[[Any, int], str]:
    """The stored procedure's handler: ``(session, k) → JSON summary``, closing over the payload and table names."""
    text = payload.to_json()
    tables = {base: validate_identifier(name, "table") for base, name in names.items()}

    def run(session, k):  # no annotations: Snowpark derives SQL types from them
        import time

        from fashion_reco.snowflake.tables import recommendation_rows, write_table

        started = time.perf_counter()
        frames = read_frames(session, {b: n for b, n in tables.items() if b != "RECOMMENDATIONS"})
        result = batch_recommend(frames, ScoringPayload.from_json(text), int(k))
        rows = recommendation_rows(result.rename(columns={c: c.lower() for c in result.columns}))
        written = write_table(session, tables["RECOMMENDATIONS"], rows, spec="RECOMMENDATIONS")
        return json.dumps(
            {
                "customers": int(result["CUSTOMER_ID"].nunique()),
                "rows": len(result),
                "inserted": int(written.inserted),
                "updated": int(written.updated),
                "deleted": int(written.deleted),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )

    return run


def register_procedure(
    session: Session,
    scorer: BlendScorer,
    names: Mapping[str, str],
    config: SnowflakeConfig,
    *,
    code_imports: list[str] | None = None,
    packages: list[str] | None = None,
) -> StoredProcedure:
    """Register ``config.procedure_name(K INT) RETURNS VARCHAR``: permanent, owner's rights, grants kept
    (``COPY GRANTS``) on an account; temporary in local testing."""
    from snowflake.snowpark.types import IntegerType, StringType

    from fashion_reco.snowflake.packages import procedure_packages
    from fashion_reco.snowflake.session import is_local_session

    arguments: dict[str, Any] = {
        "func": procedure_handler(scorer.payload, names),
        "name": validate_identifier(config.procedure_name, "function"),
        "return_type": StringType(),
        "input_types": [IntegerType()],
        "replace": True,
    }
    if not is_local_session(session):
        if code_imports is None:
            from fashion_reco.snowflake.udf import _stage_code

            code_imports = _stage_code(session, config.stage, "torch")  # the whole library's sources
        arguments.update(
            is_permanent=True,
            stage_location=stage_location(config.stage, "procedures"),
            imports=list(code_imports),
            packages=list(packages if packages is not None else procedure_packages(config)),
            execute_as="owner",
            copy_grants=True,
            comment="fashion-reco batch recommendations (MERGE into RECOMMENDATIONS by customer and rank)",
        )
        if config.artifact_repository:
            arguments["artifact_repository"] = validate_identifier(config.artifact_repository, "table")
    return session.sproc.register(**arguments)


# -- the schedule ---------------------------------------------------------------------------------------------------
_SCHEDULE = re.compile(
    r"(USING CRON (?:[0-9*/,\-LW#?A-Z]+ ){5}[A-Za-z_]+(?:/[A-Za-z_]+)*)|([1-9][0-9]{0,4} (?:MINUTE|MINUTES|M|HOURS|H|SECONDS|S))"
)


def task_sql(
    task: str, procedure: str, warehouse: str, schedule: str, k: int, *, comment: str | None = None
) -> str:
    """``CREATE OR REPLACE TASK … SCHEDULE = '…' AS CALL <procedure>(k)`` with every name and the schedule checked.

    A task is created suspended; run :func:`resume_task_sql` to start it. Re-creating a task drops its grants
    (``CREATE TASK`` has no ``COPY GRANTS``): grant ``OPERATE`` again after a redeploy if others run it.
    """
    if not _SCHEDULE.fullmatch(schedule or ""):
        raise ConfigError(
            f"invalid task schedule {schedule!r} (expected 'USING CRON <min> <hour> <dom> <month> <dow> <tz>' or "
            "'<n> MINUTE')",
            key="snowflake.task_schedule",
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SnowflakeError(f"k must be a positive integer, got {k!r}", key="k")
    note = (comment or "fashion-reco batch recommendations").replace("'", "")
    return (
        f"CREATE OR REPLACE TASK {quote_identifier(task, 'table')}\n"
        f"  WAREHOUSE = {quote_identifier(warehouse, 'warehouse')}\n"
        f"  SCHEDULE = '{schedule}'\n"
        f"  COMMENT = '{note}'\n"
        f"AS CALL {quote_identifier(procedure, 'function')}({k})"
    )


def resume_task_sql(task: str) -> str:
    """``ALTER TASK … RESUME`` (tasks start suspended)."""
    return f"ALTER TASK {quote_identifier(task, 'table')} RESUME"


class BatchDeployment(BaseModel):
    """What :func:`deploy_batch` created, and the first run's summary when it ran the procedure."""

    model_config = ConfigDict(frozen=True)

    procedure: str
    task: str | None
    more_like_this_function: str | None
    more_like_this_view: str | None
    first_run: dict[str, Any] | None


def deploy_batch(
    session: Session,
    scorer: BlendScorer,
    config: SnowflakeConfig,
    *,
    k: int = 12,
    similar_k: int = 10,
    run_now: bool = True,
    schedule: bool = True,
) -> BatchDeployment:
    """Register the batch procedure; on an account also the "more like this" function and view, and the task.

    The tables must exist (``deploy``). Account mode checks the procedure's packages first (one error listing what
    the channel lacks) and needs ``snowflake.warehouse`` for the task. ``run_now`` calls the procedure once.
    """
    from fashion_reco.snowflake.backend import backend_for
    from fashion_reco.snowflake.packages import check_packages, procedure_packages
    from fashion_reco.snowflake.sql import more_like_this_function_sql, more_like_this_view_sql
    from fashion_reco.snowflake.tables import table_name

    backend = backend_for(session)
    names = {
        base: table_name(base, config.table_prefix)
        for base in ("CATALOGUE", "IMAGE_EMBEDDINGS", "CUSTOMERS", "CLICKSTREAM", "RECOMMENDATIONS")
    }
    procedure = validate_identifier(config.procedure_name, "function")
    function = view = task = None
    if not backend.is_local:
        if schedule and not config.warehouse:
            raise ConfigError("scheduling the task needs snowflake.warehouse", key="snowflake.warehouse")
        if config.check_packages and not config.artifact_repository:
            check_packages(
                session, procedure_packages(config), config.runtime_version, what="batch procedure"
            )
    register_procedure(session, scorer, names, config)
    if not backend.is_local:
        function = table_name("MORE_LIKE_THIS", config.table_prefix)
        view = table_name("SIMILAR_ITEMS", config.table_prefix)
        backend.run_sql(more_like_this_function_sql(function, names["CATALOGUE"], names["IMAGE_EMBEDDINGS"]))
        backend.run_sql(
            more_like_this_view_sql(view, names["CATALOGUE"], names["IMAGE_EMBEDDINGS"], similar_k)
        )
        if schedule:
            task = validate_identifier(config.task_name, "table")
            backend.run_sql(task_sql(task, procedure, str(config.warehouse), config.task_schedule, k))
            backend.run_sql(resume_task_sql(task))
    first_run = json.loads(str(session.call(procedure, k))) if run_now else None
    return BatchDeployment(
        procedure=procedure,
        task=task,
        more_like_this_function=function,
        more_like_this_view=view,
        first_run=first_run,
    )
