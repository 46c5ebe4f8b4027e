"""Learning the blend's weights and half-lives on a time-split validation window.

The last ``config.validation_days`` of the training log are held out; a blend is fitted on the earlier events and
every candidate is scored by ``config.tune_metric``@``config.k`` on the held-out events of the customers seen
before the cut (the same protocol as :mod:`.evaluation`, one window earlier). The winner's values are then used to
fit the final model on the whole training log.

Search (``config.tune_method``):

* ``"grid"`` (default): every weight vector on a simplex with step ``1 / weight_steps`` over the signals the data
  supports × every (half-life, trend half-life) pair. Signal blocks are computed once per half-life pair; each
  weight vector is then one linear combination and one top-k, so the grid stays cheap.
* ``"optuna"`` (extra ``tune``): TPE over weights in [0, 1] and log-uniform half-lives, ``config.tune_trials``
  trials, the configured values enqueued first.

Customers without history are ranked with separate ``cold_weights`` (profile, popularity, trend), chosen the same
way on the validation window's new customers at the selected half-lives.

Selection follows the one-standard-error rule (Hastie, Tibshirani & Friedman, *ESL* §7.10): every candidate whose
mean per-customer deficit to the best is within one standard error of that paired difference is eligible, and the
eligible candidate closest to the configured values (L1 distance of the normalised weights) wins. A validation
window with a handful of customers therefore keeps the configuration, a large one follows the data.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fashion_reco.config import BlendConfig
from fashion_reco.errors import RecommendError
from fashion_reco.recommend import metrics as M
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.history import TrainData
from fashion_reco.recommend.topk import topk_rows

if TYPE_CHECKING:
    from fashion_reco.data.interactions import Interactions

__all__ = ["TuningResult", "TuningSpace", "simplex_grid", "tune_blend", "tune_on_data"]

_METRICS = {
    "ndcg": M.ndcg_at_k,
    "map": M.map_at_k,
    "recall": M.recall_at_k,
    "precision": M.precision_at_k,
    "hit_rate": M.hit_rate_at_k,
}


@dataclass(frozen=True)
class TuningSpace:
    """What the tuner may try.

    Attributes:
        weight_steps: simplex resolution of the grid (weights are multiples of ``1 / weight_steps`` summing to 1).
        half_life_days: history half-lives to try; default ``{config, span / 10, span / 2}`` of the log's span.
        trend_half_life_days: trend half-lives to try; default ``{config, span / 20}``.
        max_customers: validation customers sampled (bounds time and memory: ``max_customers × n_items`` floats
            per signal).
        n_folds: at most this many rolling validation windows (the last ``validation_days``, the
            ``validation_days`` before, ...); their customers are pooled, which steadies the choice on small logs.
        min_customers: no further window is added once the pooled windows hold this many customers.
        selection: ``"one_se"`` (default): among the candidates within one standard error of the best (paired
            differences over validation customers), the one closest to the configured values — on a small
            validation window the configuration stands unless the data clearly beat it; ``"best"``: the top score.
        seed: sampling seed (validation customers, Optuna).
    """

    weight_steps: int = 4
    half_life_days: tuple[float, ...] | None = None
    trend_half_life_days: tuple[float, ...] | None = None
    max_customers: int = 500
    n_folds: int = 3
    min_customers: int = 200
    selection: str = "one_se"
    seed: int = 0


@dataclass
class TuningResult:
    """Outcome of tuning: the chosen values, their validation score and every trial."""

    tuned: bool
    reason: str
    method: str
    metric: str
    k: int
    weights: dict[str, float]
    half_life_days: float
    trend_half_life_days: float
    best_score: float = float("nan")
    default_score: float = float("nan")
    n_validation_customers: int = 0
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    selection: str = "one_se"
    n_eligible: int = 0
    cold_weights: dict[str, float] = field(default_factory=dict)
    n_cold_validation_customers: int = 0

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no trial table)."""

        def num(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "tuned": self.tuned,
            "reason": self.reason,
            "method": self.method,
            "metric": self.metric,
            "k": self.k,
            "weights": {k: float(v) for k, v in self.weights.items()},
            "half_life_days": float(self.half_life_days),
            "trend_half_life_days": float(self.trend_half_life_days),
            "best_score": num(self.best_score),
            "default_score": num(self.default_score),
            "n_validation_customers": int(self.n_validation_customers),
            "n_trials": len(self.trials),
            "selection": self.selection,
            "n_eligible": int(self.n_eligible),
            "cold_weights": {k: float(v) for k, v in self.cold_weights.items()},
            "n_cold_validation_customers": int(self.n_cold_validation_customers),
        }


def simplex_grid(names: tuple[str, ...] | list[str], steps: int) -> list[dict[str, float]]:
    """All weight vectors over ``names`` with entries in ``{0, 1/steps, …, 1}`` summing to 1."""
    names = tuple(names)
    if not names:
        return [{}]
    steps = max(1, int(steps))
    out = []
    for combo in itertools.product(range(steps + 1), repeat=len(names)):
        if sum(combo) == steps:
            out.append({n: c / steps for n, c in zip(names, combo, strict=True)})
    return out


def tune_blend(
    train: Interactions | pd.DataFrame | TrainData | None,
    context: FitContext | None,
    config: BlendConfig,
    *,
    space: TuningSpace | None = None,
    options: dict[str, Any] | None = None,
) -> TuningResult:
    """Tune a :class:`~fashion_reco.recommend.blend.BlendRecommender` on ``train`` (see the module docstring)."""
    ctx = FitContext.coerce(context)
    from fashion_reco.recommend.base import Recommender

    data = Recommender._build_data(train, ctx)
    return tune_on_data(data, ctx, config, space=space, options=options)


def _normalised(w: dict[str, float]) -> dict[str, float]:
    total = sum(max(v, 0.0) for v in w.values())
    return {k: (max(v, 0.0) / total if total > 0 else 0.0) for k, v in w.items()}


def _default_grids(config: BlendConfig, span: float, space: TuningSpace) -> tuple[list[float], list[float]]:
    """Half-life candidates: the space's, or the configured value plus fractions of the log's span.

    Candidates within 20 % of an earlier one (the configured value comes first) are dropped.
    """

    def dedupe(values: list[float]) -> list[float]:
        out: list[float] = []
        for v in values:
            if v > 0 and math.isfinite(v) and all(abs(math.log(v / u)) > math.log(1.2) for u in out):
                out.append(float(v))
        return sorted(out)

    span = max(span, 1e-3)
    hl = list(space.half_life_days) if space.half_life_days else [config.half_life_days, span / 10, span / 2]
    thl = (
        list(space.trend_half_life_days)
        if space.trend_half_life_days
        else [config.trend_half_life_days, span / 20]
    )
    return dedupe(hl), dedupe(thl)


def tune_on_data(
    data: TrainData,
    context: FitContext,
    config: BlendConfig,
    *,
    space: TuningSpace | None = None,
    options: dict[str, Any] | None = None,
) -> TuningResult:
    """Tune on indexed data (called by ``BlendRecommender.fit``); see the module docstring."""
    from fashion_reco.recommend.blend import COLD_SIGNALS, config_weights

    space = space or TuningSpace()
    metric_fn = _METRICS[config.tune_metric]
    k = int(config.k)
    defaults = config_weights(config)

    def untuned(reason: str) -> TuningResult:
        return TuningResult(
            tuned=False,
            reason=reason,
            method=config.tune_method,
            metric=config.tune_metric,
            k=k,
            weights=dict(defaults),
            half_life_days=config.half_life_days,
            trend_half_life_days=config.trend_half_life_days,
        )

    v_days = float(config.validation_days)
    if data.n_events == 0:
        return untuned("no interactions")
    span = float(data.age_days.max())
    folds: list[_Fold] = []
    cold_folds: list[_Fold] = []
    for j in range(max(1, int(space.n_folds))):
        if folds and sum(f.customers.size for f in folds) >= space.min_customers:
            break  # enough validation customers: earlier windows would only cost time
        warm, cold = _make_fold(data, context, config, options, offset=j * v_days, v_days=v_days, space=space)
        if warm is not None:
            folds.append(warm)
        if cold is not None:
            cold_folds.append(cold)
    if not folds:
        return untuned(
            f"no validation window of {v_days} days has customers with earlier history (log spans {span:.2f} days)"
        )
    model = folds[0].model
    names = model.signals_
    if not names:
        return untuned("no signal available")
    n_val = sum(f.customers.size for f in folds)

    per_customer: list[np.ndarray] = []

    def evaluate_all(
        weights: dict[str, float], sigs: list[dict[str, np.ndarray]], *, keep: bool = True
    ) -> float:
        per = [f.evaluate(sig, weights, metric_fn, k) for f, sig in zip(folds, sigs, strict=True)]
        allv = np.nan_to_num(np.concatenate(per), nan=0.0)
        if keep:
            per_customer.append(allv.astype(np.float32))
        return float(allv.mean()) if allv.size else 0.0

    def signals_at(hl: float, thl: float) -> list[dict[str, np.ndarray]]:
        out = []
        for f in folds:
            f.model.set_decay(hl, thl)
            out.append(f.model.signals(f.customers))
        return out

    default_w = _normalised({s: defaults[s] for s in names})
    records: list[dict[str, Any]] = []
    hl_grid, thl_grid = _default_grids(config, span - v_days, space)

    if config.tune_method == "optuna":
        try:
            import optuna
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise RecommendError(
                "tune_method='optuna' needs optuna: pip install 'fashion-reco[tune]'"
            ) from exc
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        lo_h, hi_h = min(hl_grid), max(hl_grid)
        lo_t, hi_t = min(thl_grid), max(thl_grid)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=space.seed))
        study.enqueue_trial(
            {
                **{f"w_{s}": default_w[s] for s in names},
                "half_life_days": min(max(config.half_life_days, lo_h), hi_h),
                "trend_half_life_days": min(max(config.trend_half_life_days, lo_t), hi_t),
            }
        )

        def objective(trial: Any) -> float:
            w = {s: trial.suggest_float(f"w_{s}", 0.0, 1.0) for s in names}
            hl = trial.suggest_float("half_life_days", lo_h, hi_h, log=True) if hi_h > lo_h else lo_h
            thl = trial.suggest_float("trend_half_life_days", lo_t, hi_t, log=True) if hi_t > lo_t else lo_t
            if sum(w.values()) <= 0:
                w = dict(default_w)
            score = evaluate_all(w, signals_at(hl, thl))
            records.append(
                {**_normalised(w), "half_life_days": hl, "trend_half_life_days": thl, "score": score}
            )
            return score

        study.optimize(objective, n_trials=int(config.tune_trials), show_progress_bar=False)
    else:
        grid = simplex_grid(names, space.weight_steps)
        if all(any(abs(g[s] - default_w[s]) > 1e-9 for s in names) for g in grid):
            grid.append(default_w)
        for hl in hl_grid:
            for thl in thl_grid:
                sigs = signals_at(hl, thl)
                for w in grid:
                    records.append(
                        {
                            **w,
                            "half_life_days": hl,
                            "trend_half_life_days": thl,
                            "score": evaluate_all(w, sigs),
                        }
                    )
    trials = pd.DataFrame.from_records(records)
    for s in names:
        if s not in trials.columns:
            trials[s] = 0.0
    trials["distance"] = sum((trials[s] - default_w[s]).abs() for s in names)
    trials["distance"] += (np.log(trials["half_life_days"] / config.half_life_days)).abs() * 1e-3
    trials["distance"] += (np.log(trials["trend_half_life_days"] / config.trend_half_life_days)).abs() * 1e-3
    trials["eligible"] = _eligible(trials["score"].to_numpy(), np.stack(per_customer), space.selection)
    best = (
        trials[trials["eligible"]]
        .sort_values(["distance", "score"], ascending=[True, False], kind="stable")
        .iloc[0]
    )
    default_score = evaluate_all(
        default_w, signals_at(config.half_life_days, config.trend_half_life_days), keep=False
    )
    cold_weights = _tune_cold(
        cold_folds,
        [s for s in names if s in COLD_SIGNALS],
        defaults,
        float(best["half_life_days"]),
        float(best["trend_half_life_days"]),
        metric_fn,
        k,
        space,
    )
    return TuningResult(
        tuned=True,
        reason="tuned",
        method=config.tune_method,
        metric=config.tune_metric,
        k=k,
        weights={s: float(best[s]) for s in names},
        half_life_days=float(best["half_life_days"]),
        trend_half_life_days=float(best["trend_half_life_days"]),
        best_score=float(best["score"]),
        default_score=default_score,
        n_validation_customers=int(n_val),
        trials=trials.drop(columns=["distance"]),
        selection=space.selection,
        n_eligible=int(trials["eligible"].sum()),
        cold_weights=cold_weights,
        n_cold_validation_customers=int(sum(f.customers.size for f in cold_folds)),
    )


def _tune_cold(
    folds: list[_Fold],
    names: list[str],
    defaults: dict[str, float],
    hl: float,
    thl: float,
    metric_fn: Any,
    k: int,
    space: TuningSpace,
) -> dict[str, float]:
    """Weights for customers without history, over the signals they have (profile, popularity, trend)."""
    default_w = _normalised({s: defaults[s] for s in names})
    if not folds or len(names) <= 1:
        return default_w
    sigs = []
    for f in folds:
        f.model.set_decay(hl, thl)
        sigs.append(f.model.signals(f.customers))
    grid = simplex_grid(names, 2 * space.weight_steps)
    grid.append(default_w)
    scores, per_customer, distance = [], [], []
    for w in grid:
        per = np.concatenate([f.evaluate(sig, w, metric_fn, k) for f, sig in zip(folds, sigs, strict=True)])
        per = np.nan_to_num(per, nan=0.0)
        per_customer.append(per)
        scores.append(float(per.mean()))
        distance.append(sum(abs(w[s] - default_w[s]) for s in names))
    eligible = _eligible(np.asarray(scores), np.stack(per_customer), space.selection)
    order = sorted(np.flatnonzero(eligible), key=lambda i: (distance[i], -scores[i]))
    return {s: float(grid[order[0]][s]) for s in names}


def _eligible(scores: np.ndarray, per_customer: np.ndarray, selection: str) -> np.ndarray:
    """Candidates the rule may pick: the best only, or all within one standard error of it (paired by customer)."""
    best = int(np.argmax(scores))
    if selection == "best":
        out = np.zeros(scores.shape[0], dtype=bool)
        out[np.flatnonzero(scores == scores[best])] = True
        return out
    if selection != "one_se":
        raise RecommendError(f"selection must be 'one_se' or 'best', got {selection!r}")
    n = per_customer.shape[1]
    diff = per_customer[best][None, :].astype(np.float64) - per_customer.astype(np.float64)
    mean = diff.mean(axis=1)
    se = diff.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.full(diff.shape[0], np.inf)
    return mean <= se + 1e-12


@dataclass
class _Fold:
    """One validation window: a blend fitted before it, its customers and their relevant items."""

    model: Any
    customers: np.ndarray
    rel: np.ndarray
    n_rel: np.ndarray
    blocked: np.ndarray

    def evaluate(
        self, sig: dict[str, np.ndarray], weights: dict[str, float], metric_fn: Any, k: int
    ) -> np.ndarray:
        blend = self.model.combine(sig, weights)
        blend[self.blocked] = -np.inf
        idx, vals = topk_rows(blend, k, order=self.model._tiebreak_order, check_nan=False)
        hits = self.rel[np.arange(self.customers.size)[:, None], idx] & np.isfinite(vals)
        return np.asarray(metric_fn(hits, self.n_rel, k, per_customer=True), dtype=np.float64)


def _fold_for(model: Any, data: TrainData, val_sel: np.ndarray, customers: np.ndarray) -> _Fold:
    pos = np.full(data.n_customers, -1, dtype=np.int64)
    pos[customers] = np.arange(customers.size)
    sel = val_sel & (pos[data.cust] >= 0)
    rel = np.zeros((customers.size, data.n_items), dtype=bool)
    rel[pos[data.cust[sel]], data.item[sel]] = True
    blocked = model._purchased()[customers].toarray().astype(bool)
    return _Fold(
        model=model, customers=customers, rel=rel, n_rel=rel.sum(axis=1).astype(np.float64), blocked=blocked
    )


def _make_fold(
    data: TrainData,
    context: FitContext,
    config: BlendConfig,
    options: dict[str, Any] | None,
    *,
    offset: float,
    v_days: float,
    space: TuningSpace,
) -> tuple[_Fold | None, _Fold | None]:
    """The warm and the cold validation fold of the window ``[offset, offset + v_days)`` days before ``as_of``."""
    from fashion_reco.recommend.blend import BlendRecommender

    val_sel = (data.age_days >= offset) & (data.age_days < offset + v_days)
    if not val_sel.any() or not (data.age_days >= offset + v_days).any():
        return None, None
    inner = data.subset_before(offset + v_days)
    inner_customers = np.unique(inner.cust)
    val_cust = np.unique(data.cust[val_sel])
    seen = np.isin(val_cust, inner_customers)
    rng = np.random.default_rng(space.seed)
    groups = []
    for customers in (val_cust[seen], val_cust[~seen]):
        if customers.size > space.max_customers:
            customers = np.sort(rng.choice(customers, size=space.max_customers, replace=False))
        groups.append(customers)
    if groups[0].size == 0 and groups[1].size == 0:
        return None, None
    model = BlendRecommender(config.model_copy(update={"tune": False}), **(options or {}))
    model.fit(inner, context, tune=False)
    warm = _fold_for(model, data, val_sel, groups[0]) if groups[0].size else None
    cold = _fold_for(model, data, val_sel, groups[1]) if groups[1].size else None
    return warm, cold
