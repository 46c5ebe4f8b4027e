"""The library's default personalised model: candidate sources, then a LightGBM ``lambdarank`` ranker.

Two stages, as in the winning solutions of the H&M Personalized Fashion Recommendations competition (Kaggle 2022:
candidates from repurchase, co-occurrence and bestsellers, then a gradient-boosted learning-to-rank model over
customer × item features) and RecTools' ``rectools.models.ranking`` (``CandidateGenerator`` →
``CandidateRankingModel`` with a ``Reranker``):

1. **Candidates** — :mod:`fashion_reco.recommend.candidates`: own history, co-occurrence, visual neighbours,
   collaborative (implicit ALS / BPR), bestsellers (global, trending, per segment) and label affinity.
2. **Features** — :mod:`fashion_reco.recommend.features`, from the events strictly before the cut.
3. **Ranker** — LightGBM ``lambdarank`` (Burges 2010) trained on ``n_windows`` past windows: for each cut, the
   candidates and features at the cut, labelled by what the customer bought (``label_event``) in the
   ``window_days`` after it; early-stopped on the latest window by MAP@k, then refitted on every window with the
   best number of rounds. Optional Optuna search over its main parameters (extra ``tune``).

Repurchase is a feature, not a filter: :meth:`RankerRecommender.recommend` keeps already-bought items by default
(``filter_already_purchased=False``) and lets the model decide; ``True`` is still there for business rules.

Logs too small to learn from — fewer than ``min_train_customers`` customers with a relevant item among their
candidates over the training windows, or none in the validation window — fall back to the linear
:class:`~fashion_reco.recommend.blend.BlendRecommender`; :attr:`RankerRecommender.fit_summary_` says so.

Each row's reason comes from LightGBM's per-feature contributions (``pred_contrib``, TreeSHAP) of that row: the
evidence group that pushed the item up most is phrased for people ("you bought this 5 weeks ago", "often bought with
the shirt you bought", "bestseller in your age group this week", "looks like the dress you viewed").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.checks import check_k
from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.errors import NotFittedError, RecommendError
from fashion_reco.ids import Ids
from fashion_reco.recommend.base import FitContext, Recommender
from fashion_reco.recommend.candidates import (
    CandidateEnv,
    CandidateGenerator,
    CandidateSet,
    build_env,
    candidate_recall,
    fit_sources,
)
from fashion_reco.recommend.candidates.base import union
from fashion_reco.recommend.candidates.collaborative import CollaborativeSource
from fashion_reco.recommend.candidates.cooccurrence import CoOccurrenceSource
from fashion_reco.recommend.eventlog import DAY_NS, EventLog, as_ns
from fashion_reco.recommend.features import CATEGORICAL, FeatureBlock, FeatureState
from fashion_reco.recommend.history import EVENT_CODES, TrainData, as_id_array, interactions_frame
from fashion_reco.recommend.similarity import (
    SimilarityIndex,
    build_index,
    neighbours_frame,
    similar_items_frame,
)
from fashion_reco.recommend.topk import segment_topk

if TYPE_CHECKING:
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.recommend.blend import BlendRecommender

__all__ = ["RankerRecommender", "RankerState"]

SCHEMA_VERSION = 1
_BLOCK_CUSTOMERS = 2048
_TRAIN_BLOCK = 4096
#: the explanation method of the recommend call in progress (per thread / task; set by ``recommend``)
_EXPLAIN_METHOD: ContextVar[str] = ContextVar("fashion_reco_explain_method", default="path")


@dataclass(frozen=True)
class RankerState:
    """The fitted ranker at serving time: sources and features at the fit cut, the LightGBM model and its inputs."""

    cut_ns: int
    generator: CandidateGenerator
    features: FeatureState
    model_text: str
    feature_names: tuple[str, ...]
    params: dict[str, Any]
    best_iteration: int
    label_names: np.ndarray
    segment_names: np.ndarray
    booster: lgb.Booster = field(compare=False, repr=False)
    groups: tuple[str, ...] = field(compare=False, default=())
    leaf_groups: np.ndarray = field(compare=False, repr=False, default_factory=lambda: np.zeros((0, 0, 0)))
    #: how ``similar_index`` is built (BlendConfig's exact_max_items, ann_backend, similarity_chunk_size)
    similarity: dict[str, Any] = field(default_factory=dict)
    #: "more like this" over the feature state's item embeddings (None without embeddings); rebuilt on load
    similar_index: SimilarityIndex | None = field(compare=False, repr=False, default=None)

    @classmethod
    def with_booster(cls, **values: Any) -> RankerState:
        """A state whose derived parts — the booster (from ``model_text``, LightGBM's text), the path-attribution
        tables and the similar-items index (from the features' embeddings) — are rebuilt from the saved ones."""
        from fashion_reco.recommend.ranker_reasons import explanation_groups, path_tables

        booster = lgb.Booster(model_str=values["model_text"])
        groups, member = explanation_groups(values["feature_names"])
        emb = values["features"].embeddings
        index = None
        if emb is not None and emb.shape[0]:
            index = build_index(emb, BlendConfig(**values.get("similarity", {})))
        return cls(
            **values,
            booster=booster,
            groups=groups,
            leaf_groups=path_tables(booster, member),
            similar_index=index,
        )


@dataclass(frozen=True)
class _Window:
    """One labelled training window: features, labels, group sizes and the candidate recall found there."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    n_customers: int
    n_positive_pairs: int
    recall: pd.DataFrame
    cut: pd.Timestamp
    names: tuple[str, ...]
    #: the sources and features at the cut (fit-time only: reused by the validation gate)
    generator: CandidateGenerator | None = field(default=None, compare=False, repr=False)
    features: FeatureState | None = field(default=None, compare=False, repr=False)


class RankerRecommender(Recommender):
    """Two-stage personalised ranking (module docstring): candidates, features, LightGBM lambdarank.

    Args:
        config: the ``ranker`` section of the configuration.
        blend: the ``blend`` section — the fallback model for small logs, event weights and block sizes.
        item_names: optional display names per item id (a catalogue's ``name`` column), used in reasons; labels
            are used otherwise.
    """

    name = "ranker"
    default_reason = "picked for you"

    def __init__(
        self,
        config: RankerConfig | None = None,
        *,
        blend: BlendConfig | None = None,
        item_names: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(blend)
        self.ranker_config = config or RankerConfig()
        self.item_names = dict(item_names) if item_names else None
        self.state_: RankerState | None = None
        self.fallback_: BlendRecommender | None = None
        self.fit_summary_: dict[str, Any] = {}
        self._frame: pd.DataFrame | None = None

    # ------------------------------------------------------------------ configuration
    def get_config(self) -> RankerConfig:
        """The ranker's configuration (a copy)."""
        return self.ranker_config.model_copy(deep=True)

    @classmethod
    def from_config(cls, config: RankerConfig | Mapping[str, Any], **kwargs: Any) -> RankerRecommender:
        """An unfitted ranker from a :class:`RankerConfig` or its dict form."""
        cfg = config if isinstance(config, RankerConfig) else RankerConfig(**dict(config))
        return cls(cfg, **kwargs)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions | pd.DataFrame | TrainData | None,
        context: FitContext | None = None,
        **context_kwargs: Any,
    ) -> RankerRecommender:
        """Fit sources, features and the LightGBM ranker on ``train`` (module docstring)."""
        self._frame = None if isinstance(train, TrainData) else interactions_frame(train)
        try:
            super().fit(train, context, **context_kwargs)
        finally:
            self._frame = None
        return self

    def _fit(self, data: TrainData, context: FitContext) -> None:
        cfg = self.ranker_config
        t0 = time.perf_counter()
        self.state_ = None
        self.fallback_ = None
        log = (
            EventLog.from_frame(self._frame, data)
            if self._frame is not None
            else EventLog.from_train_data(data)
        )
        env, label_names, segment_names = self._env(data, context)
        end_ns = (as_ns(data.as_of) if data.as_of is not None else 0) + 1
        summary: dict[str, Any] = {"model": "ranker", "events": log.n_events}
        windows = self._cuts(log, end_ns)
        summary["window_days"] = windows[0] if windows else None
        train_sets: list[_Window] = []
        val: _Window | None = None
        by_cut: list[_Window | None] = []
        if windows:
            width, cuts = windows
            rng = np.random.default_rng(cfg.seed)
            for i, cut in enumerate(cuts):
                w = self._window(log, env, cut, width, rng)
                gate_window = cfg.validate_against_blend and i >= len(cuts) - cfg.validation_windows
                if w is not None and not gate_window:  # only the gate reuses a window's sources and features
                    w = replace(w, generator=None, features=None)
                by_cut.append(w)
                if i == len(cuts) - 1:
                    val = w
                elif w is not None:
                    train_sets.append(w)
        n_train = sum(w.n_customers for w in train_sets)
        summary["train_windows"] = [
            {
                "cut": str(w.cut),
                "customers": w.n_customers,
                "rows": int(w.y.size),
                "positives": w.n_positive_pairs,
            }
            for w in train_sets
        ]
        if val is not None:
            summary["validation_window"] = {
                "cut": str(val.cut),
                "customers": val.n_customers,
                "rows": int(val.y.size),
                "positives": val.n_positive_pairs,
            }
            summary["candidate_recall"] = val.recall.to_dict("records")
        if n_train < cfg.min_train_customers or val is None or val.n_customers == 0:
            reason = (
                f"{n_train} customers with a relevant item among their candidates over the training windows "
                f"(threshold min_train_customers={cfg.min_train_customers})"
                if n_train < cfg.min_train_customers
                else "no labelled customers in the validation window"
            )
            self._fit_fallback(data, context, summary, reason, t0)
            return
        params, best_iter, val_map, tuned, trial = self._train(train_sets, val)
        if cfg.validate_against_blend and windows and data.as_of is not None:
            gate = self._validation_gate(data, context, log, by_cut, windows[0], params, trial, best_iter)
            summary["validation_gate"] = gate
            if gate["decision"] != "ranker":
                n_win = len(gate["windows"])
                reason = (
                    f"on the latest {n_win} validation window{'s' if n_win != 1 else ''} ({gate['customers']} "
                    f"customer-windows) the ranker's MAP@{cfg.k} {gate['ranker']:.4f} did not exceed the blend's "
                    f"{gate['blend']:.4f} (gain {gate['gain']:+.4f})"
                )
                self._fit_fallback(data, context, summary, reason, t0, why="ranker did not beat the blend")
                return
        full = _concat([*train_sets, val])
        booster = lgb.train(params, _dataset(full), num_boost_round=best_iter)
        # the served sources: the collaborative one with every customer's candidates precomputed (read per call)
        generator, features = stage_at(log, end_ns, env, cfg, data.n_items, precompute_collaborative=True)
        text = booster.model_to_string()
        self.state_ = RankerState.with_booster(
            cut_ns=end_ns,
            generator=generator,
            features=features,
            model_text=text,
            feature_names=tuple(features.names),
            params=params,
            best_iteration=int(best_iter),
            label_names=label_names,
            segment_names=segment_names,
            similarity={
                "exact_max_items": self.config.exact_max_items,
                "ann_backend": self.config.ann_backend,
                "similarity_chunk_size": self.config.similarity_chunk_size,
            },
        )
        summary.update(
            {
                "best_iteration": int(best_iter),
                f"validation_map@{cfg.k}": val_map,
                "params": {k: v for k, v in params.items() if k not in ("verbose",)},
                "tuned": tuned,
                "features": len(features.names),
                "fallback": None,
                "fit_seconds": round(time.perf_counter() - t0, 2),
            }
        )
        self.fit_summary_ = summary

    def _fit_fallback(
        self,
        data: TrainData,
        context: FitContext,
        summary: dict[str, Any],
        reason: str,
        t0: float,
        why: str = "log too small to train the ranker",
    ) -> None:
        from fashion_reco.recommend.blend import BlendRecommender

        self.fallback_ = BlendRecommender(self.config).fit(data, context)
        summary.update({"model": "blend", "fallback": f"{why}: {reason}; using the blend"})
        summary["fit_seconds"] = round(time.perf_counter() - t0, 2)
        self.fit_summary_ = summary

    def _env(self, data: TrainData, context: FitContext) -> tuple[CandidateEnv, np.ndarray, np.ndarray]:
        cfg = self.ranker_config
        segments = None
        customers = context.customers
        if customers is not None and cfg.segment_column in customers.columns:
            col = customers.set_index(Columns.CUSTOMER_ID)[cfg.segment_column].reindex(data.customer_ids)
            segments = col.astype(object).where(col.notna(), None).to_numpy(object)
        labels = context.item_labels
        if labels is None:
            labels = np.full(data.n_items, None, dtype=object)
        return build_env(
            data.n_customers,
            labels,
            segments,
            context.item_embeddings,
            visual_k=int(cfg.candidates.get("visual", 0)),
            blend_config=self.config,
            item_prices=context.item_prices,
        )

    def _cuts(self, log: EventLog, end_ns: int) -> tuple[float, list[pd.Timestamp]] | None:
        """Window length and the cuts (oldest first; the last one is the validation window)."""
        cfg = self.ranker_config
        if log.n_events == 0 or log.first_ns is None:
            return None
        span = (end_ns - log.first_ns) / DAY_NS
        n = cfg.n_windows + 1
        width = min(cfg.window_days, span / (n + 2))
        if width <= 0:
            return None
        cuts = [pd.Timestamp(end_ns - int((n - i) * width * DAY_NS)) for i in range(n)]
        return width, cuts

    def _window(
        self, log: EventLog, env: CandidateEnv, cut: pd.Timestamp, width: float, rng: np.random.Generator
    ) -> _Window | None:
        """Candidates, features and labels of the customers with a relevant event in ``[cut, cut + width)``."""
        cfg = self.ranker_config
        cut_ns = as_ns(cut)
        label_code = EVENT_CODES[cfg.label_event]
        future = log.between(cut_ns, cut_ns + int(width * DAY_NS)).of_type(label_code)
        customers = np.unique(future.cust)
        if customers.size == 0:
            return None
        if customers.size > cfg.max_customers_per_window:
            customers = np.sort(rng.choice(customers, cfg.max_customers_per_window, replace=False))
        n_items = log.n_items
        target = np.unique(future.cust * n_items + future.item)
        generator, features = stage_at(log, cut_ns, env, cfg, n_items)
        Xs, ys, groups, recalls = [], [], [], []
        for start in range(0, customers.size, _TRAIN_BLOCK):
            rows = customers[start : start + _TRAIN_BLOCK]
            parts = generator.generate_each(rows)
            cand = union(parts, n_items)
            keys = rows[cand.row] * n_items + cand.item
            y = np.isin(keys, target)
            sizes = np.bincount(cand.row, minlength=rows.size)
            pos_per_row = np.bincount(cand.row, weights=y, minlength=rows.size)
            keep_rows = pos_per_row > 0
            keep = keep_rows[cand.row]
            Xs.append(features.transform(rows, cand).X[keep])
            ys.append(y[keep].astype(np.float32))
            groups.append(sizes[keep_rows])
            in_block = np.isin(target // n_items, rows)
            t = target[in_block]
            pos = np.searchsorted(rows, t // n_items)
            recalls.append(
                (candidate_recall(generator, rows, (pos, t % n_items), parts=parts, merged=cand), t.size)
            )
        X = np.concatenate(Xs) if Xs else np.zeros((0, len(features.names)), np.float32)
        group = np.concatenate(groups).astype(np.int64)
        recall = _pool_recall(recalls)
        return _Window(
            X=X,
            y=np.concatenate(ys),
            group=group,
            n_customers=int(group.size),
            n_positive_pairs=int(np.concatenate(ys).sum()),
            recall=recall,
            cut=cut,
            names=tuple(features.names),
            generator=generator,
            features=features,
        )

    def _base_params(self) -> dict[str, Any]:
        cfg = self.ranker_config
        return {
            "objective": "lambdarank",
            "metric": "map",
            "eval_at": [cfg.k],
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": cfg.feature_fraction,
            "lambda_l2": cfg.lambda_l2,
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": cfg.num_threads,
            "verbose": -1,
        }

    def _train(
        self, train_sets: list[_Window], val: _Window
    ) -> tuple[dict[str, Any], int, float, dict[str, Any] | None, lgb.Booster]:
        """Early-stopped LightGBM (optionally after an Optuna search): params, best rounds, validation MAP@k, and the
        booster trained on the earlier windows only (for the validation gate)."""
        cfg = self.ranker_config
        dtrain = _dataset(_concat(train_sets))
        dval = _dataset(val, reference=dtrain)
        params = self._base_params()
        tuned = None
        if cfg.tune:
            params, tuned = self._tune(params, dtrain, dval)
        best_iter, best, booster = _early_stopped(params, dtrain, dval, cfg)
        return params, best_iter, best, tuned, booster

    def _validation_gate(
        self,
        data: TrainData,
        context: FitContext,
        log: EventLog,
        by_cut: list[_Window | None],
        width: float,
        params: dict[str, Any],
        booster: lgb.Booster,
        best_iter: int,
    ) -> dict[str, Any]:
        """Ranker vs blend by MAP@k on the latest ``validation_windows`` windows, pooled over customer-windows.

        Rolling origin inside the fit (Tashman 2000): on the window at each gate cut, a ranker trained only on the
        windows before it (``booster`` for the latest; the same parameters and rounds refitted on fewer windows for
        earlier ones) and a blend fitted on the events before the cut are scored on the same customers. The ranker
        is served only when its pooled gain is positive; per-window numbers, the pooled ones, the gain's paired
        bootstrap 95 % interval and the decision are returned for the fit summary.
        """
        from fashion_reco.recommend.metrics import paired_bootstrap

        cfg = self.ranker_config
        n = len(by_cut)
        first = max(1, n - cfg.validation_windows)
        per_window: list[dict[str, Any]] = []
        ranker_ap: list[np.ndarray] = []
        blend_ap: list[np.ndarray] = []
        for j in range(first, n):
            w = by_cut[j]
            earlier = [x for x in by_cut[:j] if x is not None]
            if w is None or not earlier or w.generator is None or w.features is None:
                continue
            model = booster if j == n - 1 else lgb.train(params, _dataset(_concat(earlier)), best_iter)
            r_ap, b_ap = self._gate_window(data, context, log, w, width, model, best_iter)
            per_window.append(
                {
                    "cut": str(w.cut),
                    "train_windows": len(earlier),
                    "customers": int(r_ap.size),
                    "ranker": float(r_ap.mean()) if r_ap.size else 0.0,
                    "blend": float(b_ap.mean()) if b_ap.size else 0.0,
                }
            )
            ranker_ap.append(r_ap)
            blend_ap.append(b_ap)
        r = np.concatenate(ranker_ap) if ranker_ap else np.empty(0)
        b = np.concatenate(blend_ap) if blend_ap else np.empty(0)
        gain, low, high = paired_bootstrap(r, b, n_boot=1000, seed=cfg.seed) if r.size else (0.0, 0.0, 0.0)
        return {
            "windows": per_window,
            "cut": per_window[0]["cut"] if per_window else None,
            "customers": int(r.size),
            "ranker": float(r.mean()) if r.size else 0.0,
            "blend": float(b.mean()) if b.size else 0.0,
            "gain": float(gain),
            "interval": [float(low), float(high)],
            "decision": "ranker" if r.size and gain > 0 else "blend",
        }

    def _gate_window(
        self,
        data: TrainData,
        context: FitContext,
        log: EventLog,
        window: _Window,
        width: float,
        booster: lgb.Booster,
        best_iter: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-customer average precision@k of the ranker and of the blend on one window's customers.

        Both are scored on every customer with a relevant event in ``[cut, cut + width)`` (at most
        ``max_customers_per_window``, sampled with the configured seed) against all of that customer's relevant
        items, repurchases allowed for both, so the comparison includes what each model's candidates miss.
        """
        from fashion_reco.recommend.blend import BlendRecommender
        from fashion_reco.recommend.metrics import map_at_k

        cfg = self.ranker_config
        k = cfg.k
        n_items = log.n_items
        cut = window.cut
        cut_ns = as_ns(cut)
        future = log.between(cut_ns, cut_ns + int(width * DAY_NS)).of_type(EVENT_CODES[cfg.label_event])
        customers = np.unique(future.cust)
        if customers.size > cfg.max_customers_per_window:
            rng = np.random.default_rng(cfg.seed)
            customers = np.sort(rng.choice(customers, cfg.max_customers_per_window, replace=False))
        target = np.unique(future.cust * n_items + future.item)
        target = target[_contains(customers, target // n_items)]
        n_rel = np.bincount(np.searchsorted(customers, target // n_items), minlength=customers.size)
        if customers.size == 0:
            return np.empty(0), np.empty(0)

        # the ranker as it would have served at the cut: that window's sources and features, the earlier booster
        generator, features = window.generator, window.features
        if generator is None or features is None:
            raise RecommendError("internal: a validation window without its sources and features")
        cand = generator.generate(customers)
        if len(cand):
            X = features.transform(customers, cand).X
            scores = np.asarray(booster.predict(X, num_iteration=best_iter, num_threads=cfg.num_threads))
        else:
            scores = np.empty(0)
        idx, vals, _ = segment_topk(cand.row, cand.item, scores, customers.size, k, self._tiebreak_position())
        keys = np.arange(customers.size)[:, None] * n_items + idx
        local = _local_keys(target, customers, n_items)
        ranker_hits = np.isfinite(vals) & _contains(local, keys)

        # the blend fitted on the events strictly before the cut (same customer and item index space)
        as_of_ns = as_ns(data.as_of) if data.as_of is not None else cut_ns
        age = float(np.nextafter((as_of_ns - cut_ns) / DAY_NS, np.inf))
        earlier = data.subset_before(age)
        blend = BlendRecommender(self.config).fit(earlier, replace(context, as_of=cut))
        recs = blend.recommend(data.customer_ids[customers], k, filter_already_purchased=False)
        r_row = np.searchsorted(customers, data.customer_rows(recs[Columns.CUSTOMER_ID].to_numpy()))
        r_item = data.item_rows(recs[Columns.ITEM_ID].to_numpy())
        blend_hits = np.zeros((customers.size, k), dtype=bool)
        hit = _contains(local, r_row * n_items + r_item)
        blend_hits[r_row, recs[Columns.RANK].to_numpy() - 1] = hit
        ranker_ap = np.asarray(map_at_k(ranker_hits, n_rel, k, per_customer=True), dtype=np.float64)
        blend_ap = np.asarray(map_at_k(blend_hits, n_rel, k, per_customer=True), dtype=np.float64)
        return ranker_ap, blend_ap

    def _tune(
        self, params: dict[str, Any], dtrain: lgb.Dataset, dval: lgb.Dataset
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            import optuna
        except ImportError:
            raise RecommendError("tune=True needs optuna: pip install 'fashion-reco[tune]'") from None
        cfg = self.ranker_config
        optuna.logging.set_verbosity(optuna.logging.WARNING)

        def objective(trial: Any) -> float:
            p = {
                **params,
                "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
                "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 200, log=True),
                "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
                "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
            }
            it, score, _ = _early_stopped(p, dtrain, dval, cfg)
            trial.set_user_attr("best_iteration", it)
            return score

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed))
        study.optimize(objective, n_trials=cfg.tune_trials)
        best = {**params, **study.best_params}
        return best, {"trials": cfg.tune_trials, "best_value": float(study.best_value), **study.best_params}

    # ------------------------------------------------------------------ scoring
    def _require_state(self) -> RankerState:
        if self.state_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")
        return self.state_

    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
        """Dense scores: the ranker's score on each customer's candidates, ``-inf`` elsewhere (fallback: blend)."""
        if self.fallback_ is not None:
            res = self.fallback_._score_rows(rows, customer_ids)
            return res[0] if isinstance(res, tuple) else res
        st = self._require_state()
        out = np.full((len(rows), st.generator.n_items), -np.inf, dtype=np.float32)
        cand, scores, _ = self._scored(st, rows)
        out[cand.row, cand.item] = scores
        return out

    def _scored(self, st: RankerState, rows: np.ndarray) -> tuple[CandidateSet, np.ndarray, FeatureBlock]:
        cand = st.generator.generate(rows)
        block = st.features.transform(rows, cand)
        if len(cand) == 0:
            return cand, np.empty(0, np.float32), block
        raw = st.booster.predict(block.X, num_threads=self.ranker_config.num_threads)
        scores = np.asarray(raw, dtype=np.float32)
        return cand, scores, block

    def _recommend_rows(self) -> int:
        return _BLOCK_CUSTOMERS

    def _recommend_block(
        self,
        rows: np.ndarray,
        customer_ids: np.ndarray,
        k: int,
        allowed: np.ndarray,
        exclude: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.fallback_ is not None:
            return self.fallback_._recommend_block(rows, customer_ids, k, allowed, exclude)
        st = self._require_state()
        n_items = st.generator.n_items
        k = int(min(k, n_items))
        cand, scores, block = self._scored(st, rows)
        ok = allowed[cand.item] if len(cand) else np.zeros(0, bool)
        if exclude is not None and exclude.nnz and len(cand):
            ex = exclude.tocoo()
            ex_keys = np.sort(ex.row.astype(np.int64) * n_items + ex.col)
            ok &= ~_contains(ex_keys, cand.row * n_items + cand.item)
        # pad with the most popular allowed items so that every customer gets k rows when the catalogue allows
        position = self._tiebreak_position()
        n_excl = 0 if exclude is None else int(np.diff(exclude.indptr).max(initial=0))
        per_row = (
            np.bincount(cand.row[ok], minlength=len(rows)) if len(cand) else np.zeros(len(rows), np.int64)
        )
        need_pad = per_row < k
        fill_items = self._tiebreak_order[allowed[self._tiebreak_order]][
            : k + n_excl + int(per_row.max(initial=0))
        ]
        # float32 throughout: segment_topk then orders (row, -score, position) by one uint64 sort (5× a lexsort)
        fill_score = np.float32(0.0)
        if ok.any():
            low = np.float32(scores[ok].min())
            fill_score = min(np.float32(low - 1.0), np.nextafter(low, np.float32(-np.inf)))
        pad_rows = np.flatnonzero(need_pad)
        pr = np.repeat(pad_rows, fill_items.size)
        pi = np.tile(fill_items, pad_rows.size)
        pad_keys = pr * n_items + pi
        cand_keys = cand.row * n_items + cand.item  # sorted: the union is ordered by (row, item)
        pad_ok = ~_contains(cand_keys, pad_keys)
        if exclude is not None and exclude.nnz:
            pad_ok &= ~_contains(ex_keys, pad_keys)
        pr, pi = pr[pad_ok], pi[pad_ok]
        e_row = np.concatenate([cand.row[ok], pr])
        e_item = np.concatenate([cand.item[ok], pi])
        e_val = np.concatenate([scores[ok], np.full(pr.size, fill_score, dtype=np.float32)])
        idx, vals, src = segment_topk(e_row, e_item, e_val, len(rows), k, position)
        n_cand = int(ok.sum())
        cand_index = np.flatnonzero(ok)
        reasons = np.full(idx.shape, "popular right now", dtype=object)
        from_model = (src >= 0) & (src < n_cand)
        if self.ranker_config.explain and from_model.any():
            pair = cand_index[src[from_model]]
            reasons[from_model] = self._explain(st, rows, cand, block, pair)
        elif from_model.any():
            reasons[from_model] = self.default_reason
        reasons[~np.isfinite(vals)] = ""
        return idx, vals.astype(np.float32), reasons

    # ------------------------------------------------------------------ explanations
    def _explain(
        self, st: RankerState, rows: np.ndarray, cand: CandidateSet, block: FeatureBlock, pair: np.ndarray
    ) -> np.ndarray:
        """Reason strings for candidate pairs ``pair`` (indices into ``cand``) from their feature contributions."""
        from fashion_reco.recommend.ranker_reasons import explain_pairs, group_contributions

        by_group = group_contributions(
            st, block.X[pair], _EXPLAIN_METHOD.get(), self.ranker_config.num_threads
        )
        return explain_pairs(self, st, rows, cand, block, pair, by_group)

    # ------------------------------------------------------------------ public API
    def recommend(
        self,
        customer_ids: Ids,
        k: int | None = None,
        filter_already_purchased: bool = False,
        filter_items: Ids | None = None,
        *,
        allowed_items: Ids | None = None,
    ) -> pd.DataFrame:
        """Top-k per customer with a reason per row; already-bought items stay unless filtered (module docstring)."""
        cfg = self.ranker_config
        if k is None:
            k = cfg.k
        method = cfg.explain_method
        if method == "auto":
            n_rows = len(self._unique_ids(customer_ids)) * int(k)
            method = "shap" if n_rows <= cfg.shap_max_rows else "path"
        token = _EXPLAIN_METHOD.set(method)
        try:
            return super().recommend(
                customer_ids, k, filter_already_purchased, filter_items, allowed_items=allowed_items
            )
        finally:
            _EXPLAIN_METHOD.reset(token)

    def similar_items(self, item_ids: Ids, k: int = 10, filter_items: Ids | None = None) -> pd.DataFrame:
        """More like this (image cosine, else co-occurrence links) → ``item_id, similar_item_id, score, rank``."""
        if self.fallback_ is not None and hasattr(self.fallback_, "similar_items"):
            result: pd.DataFrame = self.fallback_.similar_items(item_ids, k=k, filter_items=filter_items)
            return result
        k = check_k(k)
        data = self._require_fitted()
        st = self._require_state()
        if st.similar_index is not None:
            ids = as_id_array(item_ids)
            q = data.item_rows(ids, strict=True)
            denied = data.item_mask(filter_items) if filter_items is not None else None
            return similar_items_frame(st.similar_index, data.item_ids, ids, q, k, denied)
        links = next((s.links for s in st.generator.sources if isinstance(s, CoOccurrenceSource)), None)
        if links is None:
            raise RecommendError("similar_items needs item embeddings or the co-occurrence source")
        ids = as_id_array(item_ids)
        q = data.item_rows(ids, strict=True)
        sub = sp.csr_matrix(links[q])
        denied = data.item_mask(filter_items) if filter_items is not None else np.zeros(data.n_items, bool)
        counts = np.diff(sub.indptr)
        r = np.repeat(np.arange(len(q)), counts)
        keep = (sub.indices != q[r]) & ~denied[sub.indices]
        idx, vals, _ = segment_topk(
            r[keep],
            sub.indices[keep].astype(np.int64),
            sub.data[keep].astype(np.float64),
            len(q),
            k,
            self._tiebreak_position(),
        )
        return neighbours_frame(data.item_ids, ids, idx, vals)

    def candidate_recall(
        self, test: Interactions | pd.DataFrame, *, event_type: str | None = None
    ) -> pd.DataFrame:
        """Share of the relevant (customer, item) pairs of a later log found by each source and by their union.

        ``test``: held-out interactions (after the fit); ``event_type``: what counts (default the configured
        ``label_event``). Returns ``source, recall, candidates_per_customer`` — where recall is lost before ranking.
        """
        data = self._require_fitted()
        st = self._require_state()
        frame = interactions_frame(test)
        kind = event_type or self.ranker_config.label_event
        frame = frame[frame[Columns.EVENT_TYPE] == kind]
        items = data.item_rows(frame[Columns.ITEM_ID].to_numpy(object))
        frame = frame.loc[items >= 0]
        ids = self._unique_ids(frame[Columns.CUSTOMER_ID])
        rows = data.customer_rows(ids)
        pos = pd.Index(ids).get_indexer(frame[Columns.CUSTOMER_ID].to_numpy(object))
        parts: list[pd.DataFrame] = []
        weights: list[int] = []
        for start in range(0, len(ids), _BLOCK_CUSTOMERS):
            sel = (pos >= start) & (pos < start + _BLOCK_CUSTOMERS)
            block = rows[start : start + _BLOCK_CUSTOMERS]
            rel = (pos[sel] - start, items[items >= 0][sel])
            n_rel = np.unique(rel[0] * data.n_items + rel[1]).size
            parts.append(candidate_recall(st.generator, block, rel))
            weights.append(n_rel)
        return _pool_recall(list(zip(parts, weights, strict=True)))

    def summary(self) -> str:
        """The fit summary in a few lines (model used, windows, validation MAP@k, fallback reason)."""
        s = self.fit_summary_
        if not s:
            return "not fitted"
        lines = [f"model: {s.get('model')}"]
        if s.get("fallback"):
            lines.append(str(s["fallback"]))
        for w in s.get("train_windows", []):
            lines.append(
                f"train window from {_shown(w['cut'])}: {w['customers']} customers, {w['rows']} rows"
            )
        if "best_iteration" in s:
            lines.append(
                f"best iteration {s['best_iteration']}, validation MAP@{self.ranker_config.k} "
                f"{s[f'validation_map@{self.ranker_config.k}']:.4f}"
            )
        gate = s.get("validation_gate")
        if gate:
            low, high = gate["interval"]
            lines.append(
                f"validation gate ({len(gate['windows'])} windows, {gate['customers']} customer-windows from "
                f"{_shown(gate['cut'])}): MAP@{self.ranker_config.k} ranker {gate['ranker']:.4f} vs blend "
                f"{gate['blend']:.4f}, gain {gate['gain']:+.4f} [{low:+.4f}, {high:+.4f}] → {gate['decision']}"
            )
        for r in s.get("candidate_recall", []):
            lines.append(
                f"candidate recall {r['source']}: {r['recall']:.3f} ({r['candidates_per_customer']:.1f}/customer)"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the fitted model (LightGBM text model, arrays, manifest last; no pickle) to ``directory``."""
        from fashion_reco.recommend.ranker_io import save_ranker

        self._require_fitted()
        return save_ranker(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> RankerRecommender:
        """Load a directory written by :meth:`save`, verifying schema version and checksums."""
        from fashion_reco.recommend.ranker_io import load_ranker

        return load_ranker(cls, Path(directory))


# ---------------------------------------------------------------------- training helpers
def _contains(sorted_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Whether each ``query`` key is in the sorted array ``sorted_keys`` (one binary search per query)."""
    if sorted_keys.size == 0 or query.size == 0:
        return np.zeros(query.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    return sorted_keys[pos] == query


def _concat(windows: list[_Window]) -> _Window:
    return _Window(
        X=np.concatenate([w.X for w in windows]),
        y=np.concatenate([w.y for w in windows]),
        group=np.concatenate([w.group for w in windows]),
        n_customers=sum(w.n_customers for w in windows),
        n_positive_pairs=sum(w.n_positive_pairs for w in windows),
        recall=windows[-1].recall,
        cut=windows[-1].cut,
        names=windows[-1].names,
    )


def _dataset(w: _Window, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    names = list(w.names)
    cats = [c for c in CATEGORICAL if c in names]
    return lgb.Dataset(
        w.X,
        label=w.y,
        group=w.group,
        feature_name=names,
        categorical_feature=cats,
        reference=reference,
        free_raw_data=False,
        params={"verbose": -1},
    )


def _early_stopped(
    params: dict[str, Any], dtrain: lgb.Dataset, dval: lgb.Dataset, cfg: RankerConfig
) -> tuple[int, float, lgb.Booster]:
    """Train with early stopping on ``dval`` by MAP@k → (best rounds, best validation MAP@k, the booster)."""
    result: dict[str, Any] = {}
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=cfg.max_rounds,
        valid_sets=[dval],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(result),
        ],
    )
    best = max(int(booster.best_iteration), 1)
    curve = result["validation"][f"map@{cfg.k}"]
    return best, float(curve[best - 1]), booster


def _local_keys(target: np.ndarray, customers: np.ndarray, n_items: int) -> np.ndarray:
    """Sorted ``position-in-customers * n_items + item`` keys of global ``customer * n_items + item`` targets."""
    return np.sort(np.searchsorted(customers, target // n_items) * n_items + target % n_items)


def _pool_recall(parts: list[tuple[pd.DataFrame, int]]) -> pd.DataFrame:
    """Recall per source over several blocks, weighted by each block's number of relevant pairs."""
    if not parts:
        return pd.DataFrame(columns=["source", "recall", "candidates_per_customer"])
    frames = []
    for df, n in parts:
        d = df.copy()
        d["hits"] = d["recall"].fillna(0.0) * n
        d["n"] = n
        frames.append(d)
    all_ = pd.concat(frames)
    g = all_.groupby("source", sort=False).agg(
        hits=("hits", "sum"), n=("n", "sum"), cpc=("candidates_per_customer", "mean")
    )
    return pd.DataFrame(
        {
            "source": g.index,
            "recall": (g["hits"] / g["n"].where(g["n"] > 0)).to_numpy(),
            "candidates_per_customer": g["cpc"].to_numpy(),
        }
    )


def stage_at(
    log: EventLog,
    cut_ns: int,
    env: CandidateEnv,
    cfg: RankerConfig,
    n_items: int,
    *,
    precompute_collaborative: bool = False,
) -> tuple[CandidateGenerator, FeatureState]:
    """The candidate sources and feature state fitted on the events before ``cut_ns`` — one recipe for training
    windows, the served model and the warehouse; ``precompute_collaborative`` stores every customer's
    collaborative top-n (read per call when serving) instead of scoring the catalogue per call."""
    sources = fit_sources(log, cut_ns, env, cfg)
    if precompute_collaborative:
        sources = tuple(s.with_table() if isinstance(s, CollaborativeSource) else s for s in sources)
    generator = CandidateGenerator(sources, n_items)
    features = FeatureState.fit(
        log,
        cut_ns,
        env,
        generator.names,
        windows=cfg.feature_windows,
        half_life_days=cfg.history_half_life_days,
    )
    return generator, features


def _shown(cut: object) -> str:
    """A window cut for people: to the second (cuts sit one nanosecond after the last event they follow)."""
    try:
        stamp = pd.Timestamp(str(cut))
    except (TypeError, ValueError):
        return str(cut)
    return str(cut) if cut is None or pd.isna(stamp) else str(stamp.floor("s"))
