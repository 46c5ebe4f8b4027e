"""Batch recommendations inside the warehouse: a stored procedure, the task that schedules it, its pure handler.

The procedure ``<procedure_name>(K)`` (Snowpark Python, ``EXECUTE AS OWNER``):

1. **selects in the warehouse only what the features need** (:func:`read_frames`): events on catalogue items that
   have an embedding, one row per ``EVENT_ID``, only ``EVENT_ID, CUSTOMER_ID, ITEM_ID, EVENT_TYPE, TIMESTAMP,
   QUANTITY``, of the last ``lookback_days`` (the payload's; ``None`` = all) before the scoring time — their
   ``MAX(TIMESTAMP)``, the library's own ``as_of`` rule; CUSTOMERS only
   ``CUSTOMER_ID`` plus the columns the model reads (the ranker: its segment column; the blend: age band, gender,
   stated preferences); CATALOGUE only ``ITEM_ID, LABEL``; the ``PRICE`` of both only when the model has price
   features (:func:`uses_prices`). The filters, the semi-join and the dedup run as SQL; the result comes back to
   the procedure as pandas frames;
2. hands them to :func:`batch_recommend` — a pure function of the frames and a fitted-model payload
   (:class:`ScoringPayload`) — which builds the candidates and features **with the library's own vectorised code**
   (``recommend/candidates``, ``recommend/features.py``, the blend's signals) and scores them. Feature logic is
   deliberately *not* re-written in SQL: one source of truth, so warehouse and laptop cannot drift apart;
3. scores customers in batches of ``batch_customers`` and replaces each batch's rows of RECOMMENDATIONS, keyed by
   ``(CUSTOMER_ID, RANK)`` (``DELETE`` of those customers' old lists, then ``MERGE``), and returns a JSON summary.

**Scoring.** :class:`Scorer` is the seam. :class:`BlendScorer` refits the blend's statistics (co-occurrence,
popularity, taste vectors, profile) on the warehouse's current tables with the weights and half-lives learned
locally. :class:`~fashion_reco.snowflake.ranker_scoring.RankerScorer` scores with the fitted two-stage LightGBM
ranker: its text model travels as a content-addressed file on the stage (an ``IMPORTS`` entry of the procedure,
checksum verified when read), its candidate sources and features are rebuilt from the warehouse's tables at the
scoring time (see that module for why). :func:`scorer_for` picks the one that matches the deployed model — the
ranker, or the blend when the ranker fell back to it. On the same data both equal local ``recommend``.

The task (:func:`task_sql`) calls the procedure on ``snowflake.task_schedule`` in ``snowflake.warehouse``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.snowflake.identifiers import quote_identifier, stage_location, validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import DataFrame, Session
    from snowflake.snowpark.stored_procedure import StoredProcedure

    from fashion_reco.config import SnowflakeConfig
    from fashion_reco.recommend.blend import BlendRecommender
    from fashion_reco.recommend.ranker import RankerRecommender

__all__ = [
    "BATCH_CUSTOMERS",
    "BatchDeployment",
    "BlendScorer",
    "FittedModel",
    "Scorer",
    "ScoringPayload",
    "WarehouseFrames",
    "batch_recommend",
    "context_and_log",
    "customers_to_score",
    "deploy_batch",
    "iter_recommendations",
    "procedure_arguments",
    "procedure_handler",
    "read_frames",
    "register_procedure",
    "resume_task_sql",
    "scorer_for",
    "scorer_from_payload",
    "scorer_packages",
    "task_sql",
    "uses_prices",
]

RESULT_COLUMNS = ["CUSTOMER_ID", "ITEM_ID", "SCORE", "RANK", "REASON"]
#: version of :class:`ScoringPayload`'s JSON form (bumped when a field changes meaning)
PAYLOAD_VERSION = 2
#: customers scored (and merged) per batch inside the procedure: bounds the result frame and each MERGE
BATCH_CUSTOMERS = 20_000
#: CLICKSTREAM columns the scorers read (QUANTITY: purchase weights in the library's history matrices)
EVENT_COLUMNS = ("EVENT_ID", "CUSTOMER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "QUANTITY")
#: the price features' inputs: CATALOGUE.PRICE (``FitContext.item_prices``) and CLICKSTREAM.PRICE (the log's prices)
PRICE_COLUMN = "PRICE"
#: the feature whose presence says a model was fitted with prices (the price family is all or nothing)
PRICE_FEATURE = "item_price"
#: CUSTOMERS columns the blend's profile reads
BLEND_CUSTOMER_COLUMNS = ("AGE_BAND", "GENDER", "PREFERRED_LABELS")


@dataclass(frozen=True)
class WarehouseFrames:
    """The procedure's inputs as pandas frames, with the warehouse's (upper-case) column names.

    ``as_of`` is the scoring time (``MAX(TIMESTAMP)`` of the events on usable items); ``None``: the latest event read.
    """

    clickstream: pd.DataFrame  # CUSTOMER_ID, ITEM_ID, EVENT_TYPE, TIMESTAMP[, QUANTITY, PRICE]
    customers: pd.DataFrame | None  # CUSTOMER_ID[, AGE_BAND, GENDER, PREFERRED_LABELS, <segment column>]
    embeddings: pd.DataFrame  # ITEM_ID, EMBEDDING (list / JSON text)
    catalogue: pd.DataFrame  # ITEM_ID, LABEL[, PRICE]
    as_of: pd.Timestamp | None = None


@dataclass(frozen=True)
class ScoringPayload:
    """A fitted model's learned state, small enough to travel with the procedure (JSON, checksummed, versioned).

    ``kind``: ``blend`` or ``ranker``. Blend: ``config`` (BlendConfig), ``options``, ``weights``, ``cold_weights``
    and the half-lives. Ranker: ``config`` = ``{"ranker": RankerConfig, "blend": BlendConfig}``, ``model_file`` /
    ``model_sha256`` (the LightGBM text model on the stage), ``feature_names`` (the model's columns, checked against
    the features rebuilt in the warehouse) and ``vocabulary`` (label and segment names in the codes the model's
    categorical splits use). ``customer_columns``: the CUSTOMERS columns to read; ``lookback_days``: the events to
    read before the scoring time (``None``: all).
    """

    kind: str
    config: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    cold_weights: dict[str, float] = field(default_factory=dict)
    half_life_days: float | None = None
    trend_half_life_days: float | None = None
    model_file: str | None = None
    model_sha256: str | None = None
    feature_names: list[str] = field(default_factory=list)
    vocabulary: dict[str, list[str]] = field(default_factory=dict)
    customer_columns: list[str] = field(default_factory=list)
    lookback_days: float | None = None
    version: int = PAYLOAD_VERSION

    def to_json(self) -> str:
        """The payload as JSON text with its own SHA-256 (it holds no credentials: configs and learned values only)."""
        body = json.dumps(self.__dict__, sort_keys=True)
        return json.dumps({"payload": json.loads(body), "sha256": hashlib.sha256(body.encode()).hexdigest()})

    @classmethod
    def from_json(cls, text: str) -> ScoringPayload:
        """Inverse of :meth:`to_json`; a damaged, foreign or newer payload is a :class:`SnowflakeError`."""
        try:
            doc = json.loads(text)
            body = json.dumps(doc["payload"], sort_keys=True)
            digest = doc["sha256"]
        except (ValueError, KeyError, TypeError):
            raise SnowflakeError("unreadable scoring payload", key="payload") from None
        if hashlib.sha256(body.encode()).hexdigest() != digest:
            raise SnowflakeError("scoring payload checksum mismatch (damaged in transit?)", key="payload")
        version = doc["payload"].get("version")
        if version != PAYLOAD_VERSION:
            raise SnowflakeError(
                f"scoring payload version {version!r}, this library reads {PAYLOAD_VERSION}: redeploy",
                key="payload.version",
            )
        return cls(**doc["payload"])

    def with_lookback(self, lookback_days: float | None) -> ScoringPayload:
        """The same payload reading the last ``lookback_days`` of events (``None``: all)."""
        return replace(self, lookback_days=None if lookback_days is None else float(lookback_days))


def uses_prices(payload: ScoringPayload) -> bool:
    """Whether the deployed model has the ranker's price features (then the procedure reads the PRICE columns)."""
    return PRICE_FEATURE in payload.feature_names


class FittedModel(Protocol):
    """A recommender refitted on the warehouse frames: what the procedure calls per batch of customers."""

    def recommend(self, customer_ids: list[str], k: int) -> pd.DataFrame:
        """``customer_id, item_id, score, rank, reason`` rows."""
        ...


class Scorer(Protocol):
    """What the procedure needs from a model: its payload and a model refitted on the warehouse's frames."""

    @property
    def payload(self) -> ScoringPayload:
        """The learned state that travels with the procedure."""
        ...

    def fitted(self, frames: WarehouseFrames) -> FittedModel:
        """A model refitted on ``frames`` with the learned values (no training inside the warehouse)."""
        ...

    def recommend(self, frames: WarehouseFrames, k: int) -> pd.DataFrame:
        """``CUSTOMER_ID, ITEM_ID, SCORE, RANK, REASON`` for every customer in the clickstream or customer table."""
        ...


def _lower(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={c: str(c).lower() for c in frame.columns})


def _matrix(values: pd.Series) -> np.ndarray:
    """Embedding column (lists, arrays or JSON text) → ``(n, d)`` float32 in one conversion."""
    if len(values) and isinstance(values.iloc[0], str):
        return np.asarray(json.loads("[" + ",".join(values) + "]"), dtype=np.float32)
    return np.asarray(values.tolist(), dtype=np.float32)


def context_and_log(frames: WarehouseFrames, *, prices: bool = False) -> tuple[Any, Any]:
    """The library's interactions and fit context from the warehouse frames (items: the catalogue's order).

    ``prices``: pass the PRICE columns on as local fitting sees them — CATALOGUE.PRICE as ``FitContext.item_prices``
    (NaN where NULL), CLICKSTREAM.PRICE as the log's ``price`` column; otherwise both are left out, so a model
    fitted without prices rebuilds no price feature. (A price array that is all NaN adds nothing the other source
    does not give, so NULL prices and a local source without that column give the same features.)
    """
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.recommend.base import FitContext

    catalogue = frames.catalogue
    embedded = frames.embeddings.drop_duplicates("ITEM_ID")
    embedded_ids = embedded["ITEM_ID"].astype(str)
    items = catalogue[catalogue["ITEM_ID"].astype(str).isin(embedded_ids)]
    item_ids = items["ITEM_ID"].astype(str).to_numpy()
    if len(item_ids) == 0:
        raise SnowflakeError(
            "no catalogue item has an embedding: nothing to recommend", key="IMAGE_EMBEDDINGS"
        )
    position = pd.Index(embedded_ids).get_indexer(item_ids)
    matrix = _matrix(embedded["EMBEDDING"].iloc[position])
    labels = items["LABEL"].to_numpy(dtype=object) if "LABEL" in items.columns else None
    item_prices = None
    if prices and PRICE_COLUMN in items.columns:
        item_prices = pd.to_numeric(items[PRICE_COLUMN], errors="coerce").to_numpy(np.float64)
    customers = None
    if frames.customers is not None and not frames.customers.empty:
        customers = _lower(frames.customers.drop(columns=["ATTRIBUTES"], errors="ignore"))
    dropped = ["EVENT_ID"] if prices else ["EVENT_ID", PRICE_COLUMN]
    events = _lower(frames.clickstream.drop(columns=dropped, errors="ignore"))
    log = Interactions.from_frame(events) if not events.empty else None
    context = FitContext(
        item_ids=item_ids,
        item_embeddings=matrix,
        item_labels=labels,
        customers=customers,
        as_of=frames.as_of,
        item_prices=item_prices,
    )
    return log, context


def customers_to_score(frames: WarehouseFrames) -> list[str]:
    """Every customer of the clickstream or the customer table, sorted."""
    ids = set(frames.clickstream["CUSTOMER_ID"].astype(str))
    if frames.customers is not None:
        ids |= set(frames.customers["CUSTOMER_ID"].astype(str))
    return sorted(ids)


def iter_recommendations(
    model: FittedModel, customer_ids: list[str], k: int, batch_customers: int = BATCH_CUSTOMERS
) -> Iterator[pd.DataFrame]:
    """RECOMMENDATIONS rows (upper-case columns) for ``customer_ids``, ``batch_customers`` at a time (a model with a
    ``plan(n_customers, k)`` hook is told the whole call first, so batches behave as one call)."""
    plan = getattr(model, "plan", None)
    if plan is not None:
        plan(len(customer_ids), k)
    for start in range(0, len(customer_ids), max(1, int(batch_customers))):
        result = model.recommend(customer_ids[start : start + batch_customers], k=k)
        yield result.rename(columns={c: c.upper() for c in result.columns})[RESULT_COLUMNS]


def _all_recommendations(scorer: Scorer, frames: WarehouseFrames, k: int) -> pd.DataFrame:
    ids = customers_to_score(frames)
    if not ids:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    parts = list(iter_recommendations(scorer.fitted(frames), ids, k))
    return pd.concat(parts, ignore_index=True)


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
                customer_columns=list(BLEND_CUSTOMER_COLUMNS),
            )
        )

    def fitted(self, frames: WarehouseFrames) -> BlendRecommender:
        """A blend fitted on ``frames`` with the payload's learned values (no tuning inside the warehouse)."""
        from fashion_reco.config import BlendConfig
        from fashion_reco.recommend.blend import BlendRecommender

        log, context = context_and_log(frames)
        model = BlendRecommender(BlendConfig(**self.payload.config), **self.payload.options)
        model.fit(log, context, tune=False)
        model.weights_ = {s: float(self.payload.weights.get(s, 0.0)) for s in model.signals_}
        model.cold_weights_ = {s: float(self.payload.cold_weights.get(s, 0.0)) for s in model.cold_weights_}
        if self.payload.half_life_days is not None and self.payload.trend_half_life_days is not None:
            model.set_decay(self.payload.half_life_days, self.payload.trend_half_life_days)
        return model

    def recommend(self, frames: WarehouseFrames, k: int) -> pd.DataFrame:
        """Top-``k`` per customer known from the clickstream or the customer table."""
        return _all_recommendations(self, frames, k)


def _scorer_kinds() -> dict[str, Callable[[ScoringPayload, str | Path | None], Scorer]]:
    from fashion_reco.snowflake.ranker_scoring import RankerScorer

    return {
        "blend": lambda payload, model_dir: BlendScorer(payload),
        "ranker": RankerScorer.from_payload,
    }


def scorer_from_payload(payload: ScoringPayload, model_dir: str | Path | None = None) -> Scorer:
    """The :class:`Scorer` for ``payload.kind``; the ranker reads its model file from ``model_dir`` (default: the
    procedure's import directory)."""
    kinds = _scorer_kinds()
    if payload.kind not in kinds:
        raise SnowflakeError(
            f"unknown scorer kind {payload.kind!r} (known: {sorted(kinds)})", key="payload.kind"
        )
    return kinds[payload.kind](payload, model_dir)


def scorer_for(model: RankerRecommender | BlendRecommender) -> Scorer:
    """The scorer of a fitted recommender: the ranker's, or the blend's when it is a blend or the ranker fell back."""
    from fashion_reco.recommend.blend import BlendRecommender
    from fashion_reco.recommend.ranker import RankerRecommender

    if isinstance(model, RankerRecommender):
        if model.fallback_ is not None:
            return BlendScorer.from_recommender(model.fallback_)
        from fashion_reco.snowflake.ranker_scoring import RankerScorer

        return RankerScorer.from_recommender(model)
    if isinstance(model, BlendRecommender):
        return BlendScorer.from_recommender(model)
    raise SnowflakeError(
        f"no batch scorer for a {type(model).__name__} (expected a fitted ranker or blend)", key="recommender"
    )


def batch_recommend(
    frames: WarehouseFrames, payload: ScoringPayload, k: int, *, model_dir: str | Path | None = None
) -> pd.DataFrame:
    """The procedure's computation as a pure function: frames + fitted payload → RECOMMENDATIONS rows."""
    _check_k(k)
    return scorer_from_payload(payload, model_dir).recommend(frames, int(k))


def _check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise SnowflakeError(f"k must be a positive integer, got {k!r}", key="k")


# -- inside the warehouse -------------------------------------------------------------------------------------------
def read_frames(
    session: Session,
    names: Mapping[str, str],
    *,
    customer_columns: Sequence[str] = BLEND_CUSTOMER_COLUMNS,
    lookback_days: float | None = None,
    prices: bool = False,
) -> WarehouseFrames:
    """Read the procedure's inputs with Snowpark, selecting in the warehouse only what the features need.

    Events: those on catalogue items with an embedding (semi-joins), one row per ``EVENT_ID``,
    :data:`EVENT_COLUMNS` only, of the last ``lookback_days`` (``None``: all) before the scoring time — the latest
    of those events' ``TIMESTAMP`` (the library's ``as_of`` rule, events on unknown items left out first).
    CUSTOMERS: ``CUSTOMER_ID`` and ``customer_columns`` (see :func:`_read_customers`). CATALOGUE: ``ITEM_ID, LABEL``.
    ``prices`` (a model with price features): also the ``PRICE`` of CLICKSTREAM and CATALOGUE; a table created
    before that column existed is a :class:`SnowflakeError` naming it.
    """
    from snowflake.snowpark import functions as F

    from fashion_reco.snowflake.sql import collect_frame

    table = {base: session.table(validate_identifier(name, "table")) for base, name in names.items()}
    events: DataFrame = table["CLICKSTREAM"]
    listed = table["CATALOGUE"].select(F.col("ITEM_ID").alias("C_ITEM"))
    usable = (
        table["IMAGE_EMBEDDINGS"]
        .select(F.col("ITEM_ID").alias("E_ITEM"))
        .join(listed, F.col("E_ITEM") == F.col("C_ITEM"), how="leftsemi")
    )
    known: DataFrame = events.join(usable, events["ITEM_ID"] == usable["E_ITEM"], how="leftsemi")
    latest = known.select(F.max(F.col("TIMESTAMP")).alias("AS_OF")).collect()
    as_of = None if not latest or latest[0][0] is None else pd.Timestamp(latest[0][0])
    if as_of is not None and as_of.tzinfo is not None:
        as_of = as_of.tz_convert("UTC").tz_localize(None)
    if lookback_days is not None and as_of is not None:
        since = (as_of - pd.Timedelta(days=float(lookback_days))).to_pydatetime()
        known = known.filter(F.col("TIMESTAMP") >= F.lit(since))
    price = [PRICE_COLUMN] if prices else []
    if prices:
        for base in ("CLICKSTREAM", "CATALOGUE"):
            if PRICE_COLUMN not in {c.strip('"').upper() for c in table[base].columns}:
                raise SnowflakeError(
                    f"the model has price features but {names[base]} has no {PRICE_COLUMN} column (created by an "
                    "older release): deploy the data again (a write adds the column and fills it)",
                    key=names[base],
                )
    clicks = known.drop_duplicates("EVENT_ID").select(*EVENT_COLUMNS, *price)
    customers = _read_customers(table["CUSTOMERS"], customer_columns) if "CUSTOMERS" in table else None
    return WarehouseFrames(
        clickstream=collect_frame(clicks).sort_values("EVENT_ID", kind="stable").reset_index(drop=True),
        customers=customers,
        embeddings=collect_frame(table["IMAGE_EMBEDDINGS"].select("ITEM_ID", "EMBEDDING")),
        catalogue=collect_frame(table["CATALOGUE"].select("ITEM_ID", "LABEL", *price)),
        as_of=as_of,
    )


def _read_customers(table: DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``CUSTOMER_ID`` plus ``columns``: declared columns selected in SQL, any other one taken from ATTRIBUTES."""
    from fashion_reco.snowflake.sql import collect_frame
    from fashion_reco.snowflake.tables import TABLES

    declared = {f.name for f in TABLES["CUSTOMERS"].schema.fields}
    wanted = [c.upper() for c in columns if c.upper() != "CUSTOMER_ID"]
    direct = [c for c in dict.fromkeys(wanted) if c in declared and c != "ATTRIBUTES"]
    extra = [c for c in dict.fromkeys(wanted) if c not in declared]
    frame = collect_frame(table.select("CUSTOMER_ID", *direct, *(["ATTRIBUTES"] if extra else [])))
    if extra:
        docs = [json.loads(v) if isinstance(v, str) else (v or {}) for v in frame.pop("ATTRIBUTES")]
        for column in extra:
            frame[column] = [doc.get(column.lower(), doc.get(column)) for doc in docs]
    return frame


def import_directory() -> str | None:
    """Where Snowflake (and local testing) put a procedure's ``IMPORTS`` files, when running inside one."""
    import sys

    value = sys._xoptions.get("snowflake_import_directory")
    return str(value) if value else None


def procedure_handler(
    payload: ScoringPayload, names: Mapping[str, str], *, batch_customers: int = BATCH_CUSTOMERS
) -> Callable[[Any, int], str]:
    """The stored procedure's handler: ``(session, k) → JSON summary``, closing over the payload and table names."""
    text = payload.to_json()
    tables = {base: validate_identifier(name, "table") for base, name in names.items()}

    def run(session, k):  # no annotations: Snowpark derives SQL types from them
        import time

        from fashion_reco.snowflake.tables import recommendation_rows, write_table

        started = time.perf_counter()
        _check_k(k)
        loaded = ScoringPayload.from_json(text)
        frames = read_frames(
            session,
            {b: n for b, n in tables.items() if b != "RECOMMENDATIONS"},
            customer_columns=loaded.customer_columns,
            lookback_days=loaded.lookback_days,
            prices=uses_prices(loaded),
        )
        scorer = scorer_from_payload(loaded, import_directory())
        model = scorer.fitted(frames)
        ids = customers_to_score(frames)
        totals = {"customers": 0, "rows": 0, "inserted": 0, "updated": 0, "deleted": 0, "batches": 0}
        for result in iter_recommendations(model, ids, int(k), batch_customers):
            rows = recommendation_rows(result.rename(columns={c: c.lower() for c in result.columns}))
            written = write_table(session, tables["RECOMMENDATIONS"], rows, spec="RECOMMENDATIONS")
            totals["customers"] += int(result["CUSTOMER_ID"].nunique())
            totals["rows"] += len(result)
            totals["inserted"] += int(written.inserted)
            totals["updated"] += int(written.updated)
            totals["deleted"] += int(written.deleted)
            totals["batches"] += 1
        return json.dumps(
            {
                **totals,
                "scorer": loaded.kind,
                "events": len(frames.clickstream),
                "as_of": None if frames.as_of is None else frames.as_of.isoformat(),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )

    return run


def scorer_packages(scorer: Scorer, config: SnowflakeConfig) -> list[str]:
    """The procedure's package specs for ``scorer``: ``snowflake.procedure_packages`` when set, else the defaults
    plus what the model's sources import (a ranker with the collaborative source needs ``implicit``)."""
    from fashion_reco.snowflake.packages import parse_spec, procedure_packages

    specs = procedure_packages(config)
    if config.procedure_packages is None:
        named = {parse_spec(spec).name for spec in specs}
        extra = [parse_spec(spec).text for spec in getattr(scorer, "extra_packages", ())]
        specs += [spec for spec in extra if parse_spec(spec).name not in named]
    return specs


def procedure_arguments(
    session: Session,
    scorer: Scorer,
    names: Mapping[str, str],
    config: SnowflakeConfig,
    *,
    code_imports: list[str] | None = None,
    packages: list[str] | None = None,
    lookback_days: float | None = None,
    batch_customers: int = BATCH_CUSTOMERS,
    account: bool | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``session.sproc.register`` for the batch procedure (see :func:`register_procedure`).

    Uploads a ranker's text model to the stage (content-addressed, ``auto_compress=False``) and lists it in
    ``IMPORTS`` in both modes, so the handler reads it the same way everywhere. ``account``: the account-mode
    arguments (permanent, packages, ``COPY GRANTS``, owner's rights); default: whether ``session`` is one.
    """
    from snowflake.snowpark.types import IntegerType, StringType

    from fashion_reco.snowflake.session import is_local_session

    payload = scorer.payload.with_lookback(lookback_days)
    model_imports: list[str] = []
    upload = getattr(scorer, "upload", None)
    if upload is not None:
        model_imports.append(upload(session, config.stage))
    arguments: dict[str, Any] = {
        "func": procedure_handler(payload, names, batch_customers=batch_customers),
        "name": validate_identifier(config.procedure_name, "function"),
        "return_type": StringType(),
        "input_types": [IntegerType()],
        "replace": True,
    }
    if model_imports:
        arguments["imports"] = list(model_imports)
    if account if account is not None else not is_local_session(session):
        if code_imports is None:
            from fashion_reco.snowflake.udf import _stage_code

            code_imports = _stage_code(session, config.stage, "torch")  # the whole library's sources
        arguments.update(
            is_permanent=True,
            stage_location=stage_location(config.stage, "procedures"),
            imports=[*code_imports, *model_imports],
            packages=list(packages if packages is not None else scorer_packages(scorer, config)),
            execute_as="owner",
            copy_grants=True,
            comment="fashion-reco batch recommendations (MERGE into RECOMMENDATIONS by customer and rank)",
        )
        if config.artifact_repository:
            arguments["artifact_repository"] = validate_identifier(config.artifact_repository, "table")
    return arguments


def register_procedure(
    session: Session,
    scorer: Scorer,
    names: Mapping[str, str],
    config: SnowflakeConfig,
    *,
    code_imports: list[str] | None = None,
    packages: list[str] | None = None,
    lookback_days: float | None = None,
    batch_customers: int = BATCH_CUSTOMERS,
) -> StoredProcedure:
    """Register ``config.procedure_name(K INT) RETURNS VARCHAR``: permanent, owner's rights, grants kept
    (``COPY GRANTS``) on an account; temporary in local testing (arguments: :func:`procedure_arguments`)."""
    arguments = procedure_arguments(
        session,
        scorer,
        names,
        config,
        code_imports=code_imports,
        packages=packages,
        lookback_days=lookback_days,
        batch_customers=batch_customers,
    )
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
    scorer: Scorer,
    config: SnowflakeConfig,
    *,
    k: int = 12,
    similar_k: int = 10,
    run_now: bool = True,
    schedule: bool = True,
    lookback_days: float | None = None,
) -> BatchDeployment:
    """Register the batch procedure; on an account also the "more like this" function and view, and the task.

    The tables must exist (``deploy``). Account mode checks the procedure's packages first (one error listing what
    the channel lacks) and needs ``snowflake.warehouse`` for the task. ``run_now`` calls the procedure once.
    ``lookback_days``: the days of events the procedure reads before its scoring time (default
    ``config.batch_lookback_days``; ``None``: all).
    """
    from fashion_reco.snowflake.backend import backend_for
    from fashion_reco.snowflake.packages import check_packages
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
                session, scorer_packages(scorer, config), config.runtime_version, what="batch procedure"
            )
    lookback = lookback_days if lookback_days is not None else config.batch_lookback_days
    register_procedure(session, scorer, names, config, lookback_days=lookback)
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
