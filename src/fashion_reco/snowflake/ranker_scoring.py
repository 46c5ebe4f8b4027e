"""The batch procedure's ranker scoring: the fitted two-stage LightGBM ranker, inside the warehouse.

What travels, and how:

* **the booster** — LightGBM's own text model (``RankerState.model_text``, never a pickle), written under a
  content-addressed name ``ranker-<sha256[:16]>.txt`` and uploaded to ``@<stage>/ranker/`` with
  ``file.put(..., auto_compress=False)`` (idempotent: the same model is the same file). The procedure lists it in
  its ``IMPORTS``; the handler reads it from the import directory and verifies its SHA-256 before parsing it;
* **a small payload** (:class:`~fashion_reco.snowflake.batch.ScoringPayload`, JSON with its own checksum and a
  version): the ranker and blend configs, the model's feature names, the label / segment vocabularies the model's
  categorical splits were learned on, the model file's name and digest.

**Decision: the candidate sources' and features' fitted state is rebuilt from the warehouse tables inside the
procedure, not shipped.** That state (co-occurrence and visual-neighbour tables, per-customer histories and label
counts, popularity, pair / item / customer statistics) is a function of the event log at a cut — it is as large as
the log, and stale the day after deployment. The procedure exists to recommend from *today's* CLICKSTREAM, so it
re-fits exactly the library's sources and :class:`~fashion_reco.recommend.features.FeatureState` at the scoring time
(``MAX(TIMESTAMP)``), with the same code and the deployed configuration; only the learned part — the booster, which
was trained on several past cuts precisely so that it generalises to a new cut — comes from the laptop. On the same
data the rebuilt state is the one ``RankerRecommender.fit`` built, so the lists equal local ``recommend``.

Two guards keep a rebuilt state and the frozen model consistent: label and segment codes are pinned to the
payload's vocabularies (a new label in the warehouse is "unlabelled" to the model rather than shifting every other
code), and the rebuilt feature names must equal the model's (else one error saying to redeploy — e.g. a source
whose package, such as ``implicit``, the procedure lacks).

**Prices.** A model with the price features (``batch.uses_prices``: its feature names include them) has the
procedure read CATALOGUE.PRICE and CLICKSTREAM.PRICE and pass them on as local fitting sees them — the catalogue's
price as ``FitContext.item_prices``, the events' as the log's ``price`` column; a model without them never reads
those columns, so its features are rebuilt as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fashion_reco.errors import NotFittedError, SnowflakeError
from fashion_reco.recommend.ranker import RankerRecommender
from fashion_reco.snowflake.batch import (
    ScoringPayload,
    WarehouseFrames,
    _all_recommendations,
    context_and_log,
    uses_prices,
)
from fashion_reco.snowflake.identifiers import stage_location

if TYPE_CHECKING:
    from snowflake.snowpark import Session

    from fashion_reco.recommend.base import FitContext
    from fashion_reco.recommend.candidates import CandidateEnv
    from fashion_reco.recommend.history import TrainData

__all__ = ["MODEL_DIR", "RankerScorer", "WarehouseRanker", "model_file_name", "pin_vocabulary"]

#: folder of the stage holding the ranker's text models
MODEL_DIR = "ranker"


def model_file_name(text: str) -> tuple[str, str]:
    """``(file name, sha256)`` of a LightGBM text model: ``ranker-<sha256[:16]>.txt``."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"ranker-{digest[:16]}.txt", digest


def pin_vocabulary(
    env: CandidateEnv,
    labels_now: np.ndarray,
    segments_now: np.ndarray,
    labels: list[str],
    segments: list[str],
) -> CandidateEnv:
    """``env`` with label / segment codes re-expressed in the model's vocabularies (unknown values → ``-1``).

    ``n_labels`` / ``n_segments`` become the largest code present + 1, so every count table the sources and
    features index by code stays in range.
    """

    def recode(codes: np.ndarray, names_now: np.ndarray, names: list[str]) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        if len(names_now) == 0 or codes.size == 0:
            return np.full(codes.shape, -1, dtype=np.int64)
        mapping = pd.Index(pd.Series(names, dtype=object)).get_indexer(
            pd.Index(list(names_now), dtype=object)
        )
        return np.where(codes >= 0, mapping[np.maximum(codes, 0)], -1).astype(np.int64)

    item_label = recode(env.item_label, labels_now, labels)
    segment = recode(env.customer_segment, segments_now, segments)
    return replace(
        env,
        item_label=item_label,
        n_labels=int(item_label.max(initial=-1)) + 1,
        customer_segment=segment,
        n_segments=int(segment.max(initial=-1)) + 1,
    )


class WarehouseRanker(RankerRecommender):
    """A :class:`RankerRecommender` whose ``fit`` rebuilds sources and features and takes a trained booster.

    ``fit`` trains nothing: at the data's end (``as_of``) it fits the configured candidate sources and the feature
    state with the library's code, then serves the given LightGBM text model (module docstring).
    """

    def __init__(self, payload: ScoringPayload, model_text: str) -> None:
        from fashion_reco.config import BlendConfig, RankerConfig

        super().__init__(
            RankerConfig(**payload.config["ranker"]), blend=BlendConfig(**payload.config["blend"])
        )
        self._payload = payload
        self._model_text = model_text

    def _fit(self, data: TrainData, context: FitContext) -> None:
        from fashion_reco.recommend.eventlog import EventLog, as_ns
        from fashion_reco.recommend.ranker import RankerState, stage_at

        cfg, payload = self.ranker_config, self._payload
        log = (
            EventLog.from_frame(self._frame, data)
            if self._frame is not None
            else EventLog.from_train_data(data)
        )
        env, labels_now, segments_now = self._env(data, context)
        labels = list(payload.vocabulary.get("labels", []))
        segments = list(payload.vocabulary.get("segments", []))
        env = pin_vocabulary(env, labels_now, segments_now, labels, segments)
        end_ns = (as_ns(data.as_of) if data.as_of is not None else 0) + 1
        generator, features = stage_at(log, end_ns, env, cfg, data.n_items)
        names = list(features.names)
        if names != list(payload.feature_names):
            missing = [n for n in payload.feature_names if n not in names]
            extra = [n for n in names if n not in payload.feature_names]
            raise SnowflakeError(
                "the features rebuilt in the warehouse do not match the deployed model's "
                f"(model only: {missing[:5]}, rebuilt only: {extra[:5]}); a source's package may be missing from "
                "the procedure, or the library changed since the model was trained: redeploy",
                key="feature_names",
            )
        self.state_ = RankerState.with_booster(
            cut_ns=end_ns,
            generator=generator,
            features=features,
            model_text=self._model_text,
            feature_names=tuple(names),
            params=dict(payload.options.get("params", {})),
            best_iteration=int(payload.options.get("best_iteration", 0)),
            label_names=np.asarray(labels, dtype=object),
            segment_names=np.asarray(segments, dtype=object),
        )
        self.fit_summary_ = {"model": "ranker", "events": log.n_events, "fallback": None, "rebuilt": True}

    def plan(self, n_customers: int, k: int) -> None:
        """Explain every batch as one ``recommend`` call over all ``n_customers`` would (``auto``: exact TreeSHAP up
        to ``shap_max_rows`` rows, else path attribution), so batching never changes a reason."""
        cfg = self.ranker_config
        if cfg.explain_method == "auto":
            method = "shap" if n_customers * k <= cfg.shap_max_rows else "path"
            self.ranker_config = cfg.model_copy(update={"explain_method": method})


@dataclass(frozen=True)
class RankerScorer:
    """The fitted ranker as the procedure's scorer: payload + LightGBM text model (module docstring)."""

    payload: ScoringPayload
    model_text: str

    @classmethod
    def from_recommender(cls, recommender: RankerRecommender) -> RankerScorer:
        """The scorer of a fitted ranker that did not fall back (see ``batch.scorer_for`` for the fallback)."""
        state = recommender.state_
        if state is None:
            raise NotFittedError(
                "the ranker has no LightGBM model (not fitted, or it fell back to the blend: deploy the blend)"
            )
        name, digest = model_file_name(state.model_text)
        segment_column = recommender.ranker_config.segment_column
        return cls(
            ScoringPayload(
                kind="ranker",
                config={
                    "ranker": recommender.ranker_config.model_dump(mode="json"),
                    "blend": recommender.config.model_dump(mode="json"),
                },
                options={
                    "best_iteration": int(state.best_iteration),
                    "params": _json_params(state.params),
                    "sources": list(state.generator.names),
                },
                model_file=name,
                model_sha256=digest,
                feature_names=list(state.feature_names),
                vocabulary={
                    "labels": [str(v) for v in state.label_names],
                    "segments": [str(v) for v in state.segment_names],
                },
                customer_columns=[segment_column.upper()],
            ),
            state.model_text,
        )

    @classmethod
    def from_payload(cls, payload: ScoringPayload, model_dir: str | Path | None) -> RankerScorer:
        """Read the payload's model file from ``model_dir`` (the procedure's import directory) and verify it."""
        if not payload.model_file or not payload.model_sha256:
            raise SnowflakeError("ranker payload names no model file", key="payload.model_file")
        if model_dir is None:
            raise SnowflakeError(
                f"no import directory to read {payload.model_file} from (is it in the procedure's IMPORTS?)",
                key="payload.model_file",
            )
        path = Path(model_dir) / payload.model_file
        try:
            raw = path.read_bytes()
        except OSError:
            raise SnowflakeError(
                "the ranker's model file is missing from the procedure's imports", key=str(path)
            ) from None
        if hashlib.sha256(raw).hexdigest() != payload.model_sha256:
            raise SnowflakeError("the ranker's model file does not match its checksum", key=str(path))
        return cls(payload, raw.decode())

    @property
    def extra_packages(self) -> tuple[str, ...]:
        """Channel packages the rebuilt sources import beyond the procedure's defaults (``implicit`` for the
        collaborative source: without it the warehouse could not rebuild that source's features)."""
        return ("implicit>=0.7",) if "collaborative" in self.payload.options.get("sources", []) else ()

    @property
    def model_file(self) -> str:
        """The model's content-addressed file name."""
        return str(self.payload.model_file)

    def write_model(self, directory: str | Path) -> Path:
        """Write the text model under its content-addressed name in ``directory`` (for ``PUT`` / tests)."""
        path = Path(directory) / self.model_file
        path.write_bytes(self.model_text.encode())
        return path

    def upload(self, session: Session, stage: str) -> str:
        """``PUT`` the text model to ``@<stage>/ranker/`` (uncompressed; skipped when already there) → its path."""
        import tempfile

        from fashion_reco.snowflake.backend import backend_for

        canonical = backend_for(session).ensure_stage(stage)
        location = stage_location(canonical, MODEL_DIR)
        with tempfile.TemporaryDirectory(prefix="fashion-reco-ranker-") as tmp:
            try:
                results = session.file.put(
                    str(self.write_model(tmp)), location, auto_compress=False, overwrite=False
                )
            except Exception as exc:
                raise SnowflakeError(f"upload of the ranker model to {location} failed: {exc}") from None
        if not {r.status for r in results} <= {"UPLOADED", "SKIPPED"}:
            raise SnowflakeError(f"upload of the ranker model to {location} failed: {results}")
        return f"{location}/{self.model_file}"

    def fitted(self, frames: WarehouseFrames) -> WarehouseRanker:
        """The ranker's sources and features rebuilt on ``frames`` at their scoring time, serving the booster."""
        if frames.clickstream.empty:
            raise SnowflakeError(
                "CLICKSTREAM has no event on a catalogue item with an embedding (within the lookback window): the "
                "ranker has nothing to rebuild its candidates and features from",
                key="CLICKSTREAM",
            )
        log, context = context_and_log(frames, prices=uses_prices(self.payload))
        model = WarehouseRanker(self.payload, self.model_text)
        model.fit(log, context)
        return model

    def recommend(self, frames: WarehouseFrames, k: int) -> pd.DataFrame:
        """Top-``k`` per customer known from the clickstream or the customer table."""
        return _all_recommendations(self, frames, k)


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """LightGBM parameters as JSON-safe values (the booster's text model is what scores; these are for the record)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | float | str) or value is None:
            out[str(key)] = value
        elif isinstance(value, list | tuple):
            out[str(key)] = [v.item() if isinstance(v, np.generic) else v for v in value]
        else:
            out[str(key)] = str(value)
    return out
