"""Offline evaluation on later time windows: time split, rolling-origin folds, one metrics row per model, intervals.

Protocol:

* :func:`time_split` holds out the last ``test_days`` of the log (cut = latest event − ``test_days``; events
  before the cut train, the others test).
* Rolling origin (Tashman 2000, "Out-of-sample tests of forecasting accuracy", *IJF* 16(4)):
  :func:`evaluate_time_split` with ``folds=N`` uses N consecutive windows of ``test_days`` ending at the last event
  (:func:`rolling_windows`); each fold fits fresh models on the events strictly before its cut and scores its
  window. The window defaults to 28, 7 or 1 days — the longest that leaves N windows plus one of history
  (:func:`default_window_days`) — so monthly, weekly and daily logs work without configuration.
* Test customers are those with a test event *and* at least one training event ("warm"); customers with test events
  only are the cold-start segment (``segment="cold"``).
* Relevance is binary: the items a customer interacted with in the test window (``relevance="any"``), or only
  those bought (``relevance="purchase"``).
* Every model recommends ``k`` items per test customer with the same filters.

:func:`evaluate_models` returns one row per model with ``model, precision, recall, map, ndcg, hit_rate, coverage,
novelty, diversity, n_customers``, all computed on boolean hit matrices (no per-customer Python loop).
:func:`evaluate_time_split` returns a :class:`TimeSplitEvaluation`: the per-fold table, the table pooled over
customer-windows, and for every baseline the paired bootstrap interval of the candidate's difference
(:func:`interval_table`). Models are given as factories (``() -> Recommender``) so every fold starts fresh; the
candidate defaults to :func:`default_candidate`, the baselines to :func:`baseline_factories`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.errors import NotFittedError, RecommendError
from fashion_reco.recommend import metrics as M
from fashion_reco.recommend.base import FitContext, Recommender
from fashion_reco.recommend.history import TrainData, interactions_frame

if TYPE_CHECKING:
    from fashion_reco.data.interactions import Interactions

__all__ = [
    "INTERVAL_METRICS",
    "METRIC_COLUMNS",
    "PER_CUSTOMER_METRICS",
    "ModelFactory",
    "TimeSplitEvaluation",
    "baseline_factories",
    "default_candidate",
    "default_window_days",
    "evaluate_models",
    "evaluate_recommenders",
    "evaluate_time_split",
    "interval_table",
    "rolling_windows",
    "time_split",
    "warm_cold_customers",
]

METRIC_COLUMNS = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage", "novelty", "diversity")
#: metrics defined per customer (pooled over customer-windows and bootstrapped); the others are per list set
PER_CUSTOMER_METRICS = ("precision", "recall", "map", "ndcg", "hit_rate")
#: metrics with a paired bootstrap interval of the candidate's difference to every baseline
INTERVAL_METRICS = ("map", "ndcg", "recall")


@overload
def time_split(interactions: Interactions, test_days: float) -> tuple[Interactions, Interactions]: ...
@overload
def time_split(interactions: pd.DataFrame, test_days: float) -> tuple[pd.DataFrame, pd.DataFrame]: ...
def time_split(
    interactions: Interactions | pd.DataFrame, test_days: float
) -> tuple[Interactions, Interactions] | tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)``: the last ``test_days`` of the log are the test window.

    Uses ``Interactions.split_by_time`` when the object has it (so the data layer's types come back); plain
    DataFrames are split the same way.
    """
    if test_days <= 0:
        raise RecommendError(f"test_days must be positive, got {test_days}")
    if hasattr(interactions, "split_by_time"):
        return interactions.split_by_time(test_days)
    frame = interactions_frame(interactions)
    if frame.empty:
        return frame, frame
    cut = frame[Columns.TIMESTAMP].max() - pd.Timedelta(days=float(test_days))
    late = frame[Columns.TIMESTAMP] >= cut
    return frame.loc[~late].reset_index(drop=True), frame.loc[late].reset_index(drop=True)


def warm_cold_customers(
    train: Interactions | pd.DataFrame, test: Interactions | pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """``(warm, cold)`` test customer ids: with / without a training event (sorted)."""
    tr = interactions_frame(train)
    te = interactions_frame(test)
    ids = np.array(sorted(te[Columns.CUSTOMER_ID].unique()), dtype=object)
    warm = pd.Index(ids).isin(tr[Columns.CUSTOMER_ID].unique())
    return ids[warm], ids[~warm]


def _relevant(test: Interactions | pd.DataFrame, relevance: str) -> pd.DataFrame:
    te = interactions_frame(test)
    if relevance == "purchase":
        te = te[te[Columns.EVENT_TYPE] == EventTypes.PURCHASE]
    elif relevance != "any":
        raise RecommendError(f"relevance must be 'any' or 'purchase', got {relevance!r}")
    return te[[Columns.CUSTOMER_ID, Columns.ITEM_ID]].drop_duplicates()


def _named(models: Mapping[str, Recommender] | Iterable[Recommender]) -> list[tuple[str, Recommender]]:
    if isinstance(models, Mapping):
        return list(models.items())
    out: list[tuple[str, Recommender]] = []
    seen: dict[str, int] = {}
    for m in models:
        name = m.name
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}_{seen[name]}", m))
    return out


def evaluate_models(
    models: Mapping[str, Recommender] | Iterable[Recommender],
    train: Interactions | pd.DataFrame,
    test: Interactions | pd.DataFrame,
    context: FitContext | None = None,
    k: int = 12,
    *,
    fit: bool = True,
    relevance: str = "any",
    segment: str = "warm",
    filter_already_purchased: bool = True,
) -> pd.DataFrame:
    """Fit (unless ``fit=False``) and score every model on the test window → one row per model.

    Args:
        models: recommenders (named by their ``name``) or a mapping name → recommender.
        train, test: the two sides of :func:`time_split` (``Interactions`` or DataFrames).
        context: item ids / embeddings / labels / customers for fitting and for the diversity metric.
        k: list length.
        fit: fit each model on ``train`` with ``context`` first.
        relevance: ``"any"`` event or ``"purchase"`` only.
        segment: ``"warm"`` (test customers with history), ``"cold"`` (without) or ``"all"``.
        filter_already_purchased: passed to every model's ``recommend``.
    """
    ctx = FitContext.coerce(context)
    customers, relevant = _scored_customers(train, test, relevance, segment)
    table, _ = _evaluate_detailed(
        _named(models),
        train,
        ctx,
        customers,
        relevant,
        k,
        fit=fit,
        filter_already_purchased=filter_already_purchased,
    )
    return table


def _scored_customers(
    train: Interactions | pd.DataFrame, test: Interactions | pd.DataFrame, relevance: str, segment: str
) -> tuple[np.ndarray, pd.DataFrame]:
    """The test customers of ``segment`` with at least one relevant item, and their relevant pairs."""
    warm, cold = warm_cold_customers(train, test)
    if segment == "warm":
        customers = warm
    elif segment == "cold":
        customers = cold
    elif segment == "all":
        customers = np.concatenate([warm, cold])
    else:
        raise RecommendError(f"segment must be 'warm', 'cold' or 'all', got {segment!r}")
    relevant = _relevant(test, relevance)
    relevant = relevant[relevant[Columns.CUSTOMER_ID].isin(customers)]
    keep = pd.Index(customers).isin(relevant[Columns.CUSTOMER_ID].unique())
    return np.asarray(customers, dtype=object)[keep], relevant


def _evaluate_detailed(
    named: list[tuple[str, Recommender]],
    train: Interactions | pd.DataFrame,
    ctx: FitContext,
    customers: np.ndarray,
    relevant: pd.DataFrame,
    k: int,
    *,
    fit: bool,
    filter_already_purchased: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics table (one row per model) and the per-customer scores (``model, customer_id`` + metrics)."""
    rows, per_customer = [], []
    for name, model in named:
        if fit:
            model.fit(train, ctx)
        elif model.data_ is None:
            raise NotFittedError(f"model {name!r} is not fitted and fit=False")
        row, values = _score_model(name, model, customers, relevant, k, filter_already_purchased)
        rows.append(row)
        per_customer.append(pd.DataFrame({"model": name, Columns.CUSTOMER_ID: customers, **values}))
    table = pd.DataFrame(rows, columns=["model", *METRIC_COLUMNS, "n_customers"])
    detail = (
        pd.concat(per_customer, ignore_index=True)
        if per_customer
        else pd.DataFrame(columns=["model", Columns.CUSTOMER_ID, *PER_CUSTOMER_METRICS])
    )
    return table, detail


def _score_model(
    name: str,
    model: Recommender,
    customers: np.ndarray,
    relevant: pd.DataFrame,
    k: int,
    filter_already_purchased: bool,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    data = model._require_fitted()
    if len(customers) == 0:
        empty = {m: np.empty(0, dtype=np.float64) for m in PER_CUSTOMER_METRICS}
        return {"model": name, **{m: float("nan") for m in METRIC_COLUMNS}, "n_customers": 0}, empty
    recs = model.recommend(customers, k=k, filter_already_purchased=filter_already_purchased)
    hits, n_rel = M.hit_matrix(recs, relevant, customers, k)
    values = {
        "precision": np.asarray(M.precision_at_k(hits, n_rel, k, per_customer=True)),
        "recall": np.asarray(M.recall_at_k(hits, n_rel, k, per_customer=True)),
        "map": np.asarray(M.map_at_k(hits, n_rel, k, per_customer=True)),
        "ndcg": np.asarray(M.ndcg_at_k(hits, n_rel, k, per_customer=True)),
        "hit_rate": np.asarray(M.hit_rate_at_k(hits, n_rel, k, per_customer=True)),
    }
    counts = pd.Series(model.popularity_, index=data.item_ids)
    n_train_customers = int(np.unique(data.cust).size)
    emb = getattr(model.context_, "item_embeddings", None)
    diversity = float("nan")
    if emb is not None and len(recs):
        item_idx = data.item_rows(recs[Columns.ITEM_ID].to_numpy())
        lists = np.full((len(customers), k), -1, dtype=np.int64)
        cpos = pd.Index(customers).get_indexer(recs[Columns.CUSTOMER_ID])
        lists[cpos, recs[Columns.RANK].to_numpy(np.int64) - 1] = item_idx
        diversity = M.intra_list_diversity(lists, emb)
    row: dict[str, Any] = {
        "model": name,
        "precision": M.precision_at_k(hits, n_rel, k),
        "recall": M.recall_at_k(hits, n_rel, k),
        "map": M.map_at_k(hits, n_rel, k),
        "ndcg": M.ndcg_at_k(hits, n_rel, k),
        "hit_rate": M.hit_rate_at_k(hits, n_rel, k),
        "coverage": M.coverage(recs[Columns.ITEM_ID], data.n_items),
        "novelty": M.novelty(recs[Columns.ITEM_ID], counts, n_train_customers),
        "diversity": diversity,
        "n_customers": len(customers),
    }
    return row, values


def evaluate_recommenders(
    recommender: Recommender,
    test: Interactions | pd.DataFrame,
    k: int = 12,
    *,
    train: Interactions | pd.DataFrame | None = None,
    baselines: Iterable[Recommender] | None = None,
    relevance: str = "any",
    segment: str = "warm",
    filter_already_purchased: bool = True,
) -> pd.DataFrame:
    """The fitted blend against every baseline on ``test``: one row per model (blend first).

    Baselines are fitted on ``train`` — by default the log the blend was fitted on (its indexed training data) —
    with the blend's own context, so all models see exactly the same information.
    """
    from fashion_reco.recommend.baselines import standard_baselines

    data = recommender.data_
    if data is None:
        raise NotFittedError("the recommender is not fitted: call fit() first")
    if data.n_events == 0 and train is None:
        raise RecommendError(
            "the recommender was fitted without interactions: there is nothing to compare against"
        )
    ctx = recommender.context_ or FitContext()
    train_input = train if train is not None else data
    train_frame = _frame_from_data(data) if train is None else interactions_frame(train)
    if baselines is None:
        baselines = standard_baselines(recommender.config, with_visual=ctx.item_embeddings is not None)
    models: dict[str, Recommender] = {recommender.name: recommender}
    for b in baselines:
        b.fit(train_input, ctx)
        models[b.name] = b
    return evaluate_models(
        models,
        train_frame,
        test,
        ctx,
        k,
        fit=False,
        relevance=relevance,
        segment=segment,
        filter_already_purchased=filter_already_purchased,
    )


def _frame_from_data(data: TrainData) -> pd.DataFrame:
    """A minimal interactions frame (ids and event types) rebuilt from indexed training data."""
    names = np.array(EventTypes.ALL, dtype=object)
    ts = (data.as_of or pd.Timestamp(0)) - pd.to_timedelta(data.age_days, unit="D")
    return pd.DataFrame(
        {
            Columns.CUSTOMER_ID: data.customer_ids[data.cust],
            Columns.ITEM_ID: data.item_ids[data.item],
            Columns.EVENT_TYPE: names[data.event],
            Columns.TIMESTAMP: ts,
        }
    )


# ---------------------------------------------------------------------------------------------- rolling-origin folds
ModelFactory = Callable[[], Recommender]
ModelSpec = Recommender | ModelFactory

#: window lengths tried, longest first, by :func:`default_window_days` (a month, a week, a day)
WINDOW_CHOICES_DAYS = (28.0, 7.0, 1.0)


def default_window_days(span_days: float, folds: int) -> float:
    """The fold window for a log spanning ``span_days``: the longest of 28 / 7 / 1 days that leaves ``folds``
    windows plus at least one window of training history, else ``span / (folds + 1)``.

    So a two-year log gets monthly folds, a quarter weekly ones, a fortnight daily ones — without being told.
    """
    if folds < 1:
        raise RecommendError(f"folds must be >= 1, got {folds}")
    for window in WINDOW_CHOICES_DAYS:
        if span_days >= (folds + 1) * window:
            return window
    return span_days / (folds + 1)


def rolling_windows(
    end: pd.Timestamp, folds: int, window_days: float
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``folds`` consecutive test windows ``[cut, until)``, oldest first, the last one ending at ``end`` (inclusive).

    Fold ``i`` trains on the events strictly before its ``cut``; with ``folds=1`` this is :func:`time_split`.
    """
    if folds < 1:
        raise RecommendError(f"folds must be >= 1, got {folds}")
    if not window_days > 0:
        raise RecommendError(f"the fold window must be positive, got {window_days} days")
    w = pd.Timedelta(days=float(window_days))
    return [(end - (folds - i) * w, end - (folds - 1 - i) * w) for i in range(folds)]


def baseline_factories(
    config: BlendConfig | None = None, *, with_visual: bool = False
) -> dict[str, ModelFactory]:
    """Fresh-model factories of the baselines every candidate is compared with, by name.

    Own history then last week's bestsellers (the strongest simple fashion baseline), last week's bestsellers,
    all-time and recency-decayed popularity, the visual signal alone (``with_visual``: when embeddings are given),
    co-occurrence alone, implicit's item-kNN / ALS / BPR (when installed) and the linear blend.
    """
    from fashion_reco.recommend import baselines as B
    from fashion_reco.recommend.blend import BlendRecommender

    cfg = config or BlendConfig()
    out: dict[str, ModelFactory] = {
        B.OwnHistoryPopularRecommender.name: lambda: B.OwnHistoryPopularRecommender(cfg),
        B.LastWeekPopularityRecommender.name: lambda: B.LastWeekPopularityRecommender(cfg),
        B.PopularityRecommender.name: lambda: B.PopularityRecommender(cfg),
        B.RecentPopularityRecommender.name: lambda: B.RecentPopularityRecommender(cfg),
    }
    if with_visual:
        out[B.VisualOnlyRecommender.name] = lambda: B.VisualOnlyRecommender(cfg)
    out[B.BehaviourOnlyRecommender.name] = lambda: B.BehaviourOnlyRecommender(cfg)
    if B.implicit_available():
        out[B.ImplicitItemKNNRecommender.name] = lambda: B.ImplicitItemKNNRecommender(cfg)
        out[B.ImplicitALSRecommender.name] = lambda: B.ImplicitALSRecommender(cfg)
        out[B.ImplicitBPRRecommender.name] = lambda: B.ImplicitBPRRecommender(cfg)
    out[BlendRecommender.name] = lambda: BlendRecommender(cfg)
    return out


def default_candidate(config: BlendConfig | None = None, ranker: RankerConfig | None = None) -> ModelFactory:
    """The factory of the library's default personalised model, the two-stage ranker (which falls back to the blend
    on logs too small to learn from): the candidate of :func:`evaluate_time_split`."""
    from fashion_reco.recommend.ranker import RankerRecommender

    cfg = config or BlendConfig()
    rcfg = ranker or RankerConfig()
    return lambda: RankerRecommender(rcfg, blend=cfg)


def _fresh(spec: ModelSpec) -> Recommender:
    """A model to fit: the instance itself (refitted each fold) or a factory's new instance."""
    if isinstance(spec, Recommender):
        return spec
    model = spec()
    if not isinstance(model, Recommender):
        raise RecommendError(f"a model factory returned {type(model).__name__}, not a Recommender")
    return model


def _spec_name(spec: ModelSpec) -> str:
    return spec.name if isinstance(spec, Recommender) else _fresh(spec).name


def _baseline_specs(
    baselines: Iterable[ModelSpec] | Mapping[str, ModelSpec] | None,
    config: BlendConfig,
    candidate: str,
    with_visual: bool,
) -> list[tuple[str, ModelSpec]]:
    if baselines is None:
        factories = baseline_factories(config, with_visual=with_visual)
        return [(n, f) for n, f in factories.items() if n != candidate]
    if isinstance(baselines, Mapping):
        return list(baselines.items())
    out: list[tuple[str, ModelSpec]] = []
    seen: dict[str, int] = {}
    for spec in baselines:
        name = _spec_name(spec)
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}_{seen[name]}", spec))
    return out


@dataclass(frozen=True)
class TimeSplitEvaluation:
    """What :func:`evaluate_time_split` measured: the pooled table, the fold table, the intervals, the windows.

    ``table`` has one row per model (candidate first): per-customer metrics pooled over all customer-windows of all
    folds, coverage / novelty / diversity averaged over the folds that scored anyone, ``n_customers`` the number of
    customer-windows. With one fold it is exactly that fold's table.
    """

    table: pd.DataFrame
    test_days: float  # the length of each fold's test window
    cutoff: pd.Timestamp  # the first fold's cut: everything from here to ``end`` is test data for some fold
    end: pd.Timestamp
    train_events: int  # events before ``cutoff`` (the first fold's training log)
    test_events: int  # events in ``[cutoff, end]``
    train_customers: int
    test_customers: int
    k: int
    relevance: str
    segment: str
    folds: int = 1
    candidate: str = "ranker"
    fold_table: pd.DataFrame | None = None  # fold, cutoff, until, train_events, test_events, model, metrics…
    intervals: pd.DataFrame | None = None  # candidate − baseline per metric with the bootstrap interval
    per_customer: pd.DataFrame | None = None  # fold, model, customer_id, per-customer metrics
    confidence: float = 0.95
    filter_already_purchased: bool = False
    #: for a candidate with candidate sources (the ranker): share of the test window's relevant pairs among each
    #: source's candidates and the union's, per fold and pooled (``fold = 0``); None for other candidates
    candidate_recall: pd.DataFrame | None = None

    @property
    def scored_folds(self) -> int:
        """Folds in which at least one customer was scored."""
        if self.fold_table is None or self.fold_table.empty:
            return 0
        return int(self.fold_table.groupby("fold")["n_customers"].max().gt(0).sum())

    def summary(self) -> str:
        """What was held out and who was scored; with several folds one line per fold and the intervals on MAP@k."""
        scored = int(self.table["n_customers"].max()) if len(self.table) else 0
        if self.folds == 1:
            return (
                f"time split: the last {self.test_days:g} days are the test window [{self.cutoff}, {self.end}]\n"
                f"train: {self.train_events} events from {self.train_customers} customers; "
                f"test: {self.test_events} events from {self.test_customers} customers\n"
                f"scored: {scored} {self.segment} test customers at k={self.k} (relevant: {self.relevance} events)"
            )
        lines = [
            f"rolling-origin evaluation: {self.folds} folds of {self.test_days:g} days over [{self.cutoff}, "
            f"{self.end}]; each fold fits fresh models on the events before its cut",
            f"scored: {scored} {self.segment} customer-windows in {self.scored_folds} folds at k={self.k} "
            f"(relevant: {self.relevance} events)",
        ]
        if self.fold_table is not None:
            info = self.fold_table.drop_duplicates("fold")
            for r in info.itertuples(index=False):
                lines.append(
                    f"  fold {r.fold}: [{r.cutoff}, {r.until}) train {r.train_events} events, "
                    f"test {r.test_events} events, {r.n_customers} customers scored"
                )
        if self.candidate_recall is not None and len(self.candidate_recall):
            pooled = self.candidate_recall[self.candidate_recall["fold"] == 0]
            windows = int(pooled["n_customers"].max()) if len(pooled) else 0
            lines.append(
                f"candidate recall of {self.candidate} on the test windows where it used its sources "
                f"({windows} customer-windows; share of relevant pairs found):"
            )
            for r in pooled.itertuples(index=False):
                lines.append(
                    f"  {r.source}: {r.recall:.3f} ({r.candidates_per_customer:.1f} candidates/customer)"
                )
        if self.intervals is not None and len(self.intervals):
            pct = f"{100 * self.confidence:g}%"
            lines.append(
                f"{self.candidate} − baseline, MAP@{self.k} pooled (paired bootstrap {pct} interval):"
            )
            for r in self.intervals[self.intervals["metric"] == "map"].itertuples(index=False):
                lines.append(
                    f"  vs {r.baseline}: {r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}] ratio {r.ratio:.2f} — {r.verdict}"
                )
        return "\n".join(lines)


def interval_table(
    per_customer: pd.DataFrame,
    candidate: str,
    *,
    metrics: Iterable[str] = INTERVAL_METRICS,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """``candidate`` minus every other model on pooled customer-windows, with paired bootstrap intervals.

    Columns: ``baseline, metric, candidate_value, baseline_value, diff, low, high, ratio, n, verdict``; ``verdict``
    is ``better`` / ``worse`` when the interval excludes zero, else ``no clear difference``.
    """
    columns = [
        "baseline",
        "metric",
        "candidate_value",
        "baseline_value",
        "diff",
        "low",
        "high",
        "ratio",
        "n",
        "verdict",
    ]
    if per_customer.empty or candidate not in set(per_customer["model"]):
        return pd.DataFrame(columns=columns)
    rows = []
    keys = ["fold", Columns.CUSTOMER_ID] if "fold" in per_customer.columns else [Columns.CUSTOMER_ID]
    for metric in metrics:
        wide = per_customer.pivot_table(
            index=keys, columns="model", values=metric, aggfunc="first", dropna=False
        )
        cand = wide[candidate].to_numpy(np.float64)
        others = [m for m in dict.fromkeys(per_customer["model"]) if m != candidate]
        for j, name in enumerate(others):
            base = wide[name].to_numpy(np.float64)
            diff, low, high = M.paired_bootstrap(
                cand, base, n_boot=n_boot, confidence=confidence, seed=seed + 7919 * j
            )
            ok = np.isfinite(cand) & np.isfinite(base)
            cv, bv = (
                float(cand[ok].mean()) if ok.any() else np.nan,
                float(base[ok].mean()) if ok.any() else np.nan,
            )
            verdict = "better" if low > 0 else "worse" if high < 0 else "no clear difference"
            rows.append(
                {
                    "baseline": name,
                    "metric": metric,
                    "candidate_value": cv,
                    "baseline_value": bv,
                    "diff": diff,
                    "low": low,
                    "high": high,
                    "ratio": cv / bv if bv > 0 else float("inf") if cv > 0 else float("nan"),
                    "n": int(ok.sum()),
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def _source_recall(model: Recommender, customers: np.ndarray, relevant: pd.DataFrame) -> pd.DataFrame | None:
    """Each candidate source's recall of ``relevant`` for a model with candidate sources (``state_.generator``,
    the ranker); None for any other model or a ranker that fell back to the blend."""
    generator = getattr(getattr(model, "state_", None), "generator", None)
    if generator is None or getattr(model, "fallback_", None) is not None or len(customers) == 0:
        return None
    from fashion_reco.recommend.candidates import candidate_recall

    data = model._require_fitted()
    pos = pd.Index(customers).get_indexer(relevant[Columns.CUSTOMER_ID])
    items = data.item_rows(relevant[Columns.ITEM_ID].to_numpy())
    keep = (pos >= 0) & (items >= 0)
    frame = candidate_recall(generator, data.customer_rows(customers), (pos[keep], items[keep]))
    return frame.assign(n_relevant=int(keep.sum()))


def _pool_recall(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
    """Per-fold recall frames plus a pooled row per source (``fold = 0``, weighted by relevant pairs)."""
    if not parts:
        return None
    folds = pd.concat(parts, ignore_index=True)
    hits = (folds["recall"].fillna(0.0) * folds["n_relevant"]).groupby(folds["source"], sort=False).sum()
    n = folds.groupby("source", sort=False)["n_relevant"].sum()
    cand = (
        (folds["candidates_per_customer"] * folds["n_customers"]).groupby(folds["source"], sort=False).sum()
    )
    m = folds.groupby("source", sort=False)["n_customers"].sum()
    pooled = pd.DataFrame(
        {
            "fold": 0,
            "source": n.index,
            "recall": (hits / n.where(n > 0)).to_numpy(),
            "candidates_per_customer": (cand / m.where(m > 0)).to_numpy(),
            "n_relevant": n.to_numpy(),
            "n_customers": m.to_numpy(),
        }
    )
    return pd.concat([folds, pooled], ignore_index=True)


def _pooled_table(fold_table: pd.DataFrame, per_customer: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per model: per-customer metrics pooled over customer-windows, list metrics averaged over folds."""
    rows = []
    for name in models:
        pc = per_customer[per_customer["model"] == name]
        ft = fold_table[(fold_table["model"] == name) & (fold_table["n_customers"] > 0)]
        row: dict[str, Any] = {"model": name}
        for m in METRIC_COLUMNS:
            if m in PER_CUSTOMER_METRICS:
                row[m] = float(pc[m].mean()) if len(pc) else float("nan")
            else:
                row[m] = float(ft[m].mean()) if len(ft) else float("nan")
        row["n_customers"] = len(pc)
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", *METRIC_COLUMNS, "n_customers"])


def evaluate_time_split(
    interactions: Interactions | pd.DataFrame,
    test_days: float | None = None,
    context: FitContext | None = None,
    config: BlendConfig | None = None,
    k: int | None = None,
    *,
    folds: int = 1,
    candidate: ModelSpec | None = None,
    ranker_config: RankerConfig | None = None,
    baselines: Iterable[ModelSpec] | Mapping[str, ModelSpec] | None = None,
    relevance: str = "any",
    segment: str = "warm",
    filter_already_purchased: bool = False,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> TimeSplitEvaluation:
    """Rolling-origin evaluation: ``folds`` consecutive test windows of ``test_days`` at the end of the log; in each
    fold a fresh candidate and fresh baselines are fitted (with ``context``) on the events strictly before the fold's
    cut and scored on its window. Returns per-fold and pooled tables and, for every baseline, a paired bootstrap
    ``confidence`` interval of the candidate's difference over customer-windows (see :class:`TimeSplitEvaluation`).

    Args:
        test_days: window length; default ``config.test_days`` for one fold, else :func:`default_window_days`.
        candidate: the model under test — a factory of fresh models (preferred) or an instance refitted each fold;
            default :func:`default_candidate` (the two-stage ranker with ``ranker_config``).
        baselines: instances, factories, or a mapping name → either; default :func:`baseline_factories` (minus
            the candidate's own name).
        filter_already_purchased: passed to every model's ``recommend``. Off by default: repurchase is the
            strongest fashion signal, and a model that should not use it must not be helped by the protocol.
        n_boot, confidence, seed: the bootstrap.

    ``k`` defaults to ``config.k``. Raises :class:`RecommendError` when the first fold has no training events.
    """
    config = config or BlendConfig()
    if folds < 1:
        raise RecommendError(f"folds must be >= 1, got {folds}")
    if relevance not in ("any", "purchase"):
        raise RecommendError(f"relevance must be 'any' or 'purchase', got {relevance!r}")
    if segment not in ("warm", "cold", "all"):
        raise RecommendError(f"segment must be 'warm', 'cold' or 'all', got {segment!r}")
    if n_boot < 1 or not 0.0 < confidence < 1.0:
        raise RecommendError(f"need n_boot >= 1 and 0 < confidence < 1, got {n_boot} and {confidence}")
    frame = interactions_frame(interactions)
    if frame.empty:
        raise RecommendError("the log has no events: there is nothing to evaluate")
    ts = frame[Columns.TIMESTAMP]
    end, start = ts.max(), ts.min()
    span = (end - start) / pd.Timedelta(days=1)
    if test_days is None:
        test_days = float(config.test_days) if folds == 1 else default_window_days(span, folds)
    if not test_days > 0:
        raise RecommendError(f"test_days must be positive, got {test_days}")
    windows = rolling_windows(end, folds, float(test_days))
    first_cut = windows[0][0]
    if not (ts < first_cut).any():
        what = "a test window" if folds == 1 else f"{folds} folds"
        raise RecommendError(
            f"{what} of {test_days:g} days leaves no training events (the log spans {span:.2f} days): "
            + ("hold out fewer days" if folds == 1 else "use fewer folds or a shorter window")
        )
    k = int(config.k if k is None else k)
    cand_spec: ModelSpec = candidate if candidate is not None else default_candidate(config, ranker_config)
    cand_name = _spec_name(cand_spec)
    ctx = replace(FitContext.coerce(context), as_of=None)  # each fold's recency is measured from its own cut
    with_visual = ctx.item_embeddings is not None
    specs = [(cand_name, cand_spec), *_baseline_specs(baselines, config, cand_name, with_visual)]
    names = [n for n, _ in specs]
    if len(set(names)) != len(names):
        raise RecommendError(f"model names must be unique, got {names}")

    fold_rows, details = [], []
    recalls: list[pd.DataFrame] = []
    for i, (cut, until) in enumerate(windows):
        last = i == folds - 1
        train = frame.loc[ts < cut].reset_index(drop=True)
        test = frame.loc[(ts >= cut) & ((ts <= until) if last else (ts < until))].reset_index(drop=True)
        info = {
            "fold": i + 1,
            "cutoff": cut,
            "until": until,
            "train_events": len(train),
            "test_events": len(test),
        }
        if train.empty:
            customers, relevant = np.empty(0, dtype=object), test.iloc[:0]
        else:
            customers, relevant = _scored_customers(train, test, relevance, segment)
        if len(customers) == 0:  # nothing to score: no model is fitted for this window
            for name in names:
                fold_rows.append(
                    {**info, "model": name, **{m: float("nan") for m in METRIC_COLUMNS}, "n_customers": 0}
                )
            continue
        named = [(n, _fresh(s)) for n, s in specs]
        table, detail = _evaluate_detailed(
            named,
            train,
            ctx,
            customers,
            relevant,
            k,
            fit=True,
            filter_already_purchased=filter_already_purchased,
        )
        recall = _source_recall(named[0][1], customers, relevant)
        if recall is not None:
            recalls.append(recall.assign(fold=i + 1, n_customers=len(customers)))
        fold_rows.extend({**info, **r} for r in table.to_dict("records"))
        details.append(detail.assign(fold=i + 1))

    fold_table = pd.DataFrame(fold_rows)
    per_customer = (
        pd.concat(details, ignore_index=True)
        if details
        else pd.DataFrame(columns=["model", Columns.CUSTOMER_ID, *PER_CUSTOMER_METRICS, "fold"])
    )
    per_customer = per_customer[["fold", "model", Columns.CUSTOMER_ID, *PER_CUSTOMER_METRICS]]
    if folds == 1 and len(per_customer):
        table = fold_table[["model", *METRIC_COLUMNS, "n_customers"]].reset_index(drop=True)
    else:
        table = _pooled_table(fold_table, per_customer, names)
    intervals = interval_table(per_customer, cand_name, n_boot=n_boot, confidence=confidence, seed=seed)
    before = ts < first_cut
    return TimeSplitEvaluation(
        table=table,
        test_days=float(test_days),
        cutoff=first_cut,
        end=end,
        train_events=int(before.sum()),
        test_events=int((~before).sum()),
        train_customers=int(frame.loc[before, Columns.CUSTOMER_ID].nunique()),
        test_customers=int(frame.loc[~before, Columns.CUSTOMER_ID].nunique()),
        k=k,
        relevance=relevance,
        segment=segment,
        folds=folds,
        candidate=cand_name,
        fold_table=fold_table,
        intervals=intervals,
        per_customer=per_customer,
        confidence=confidence,
        filter_already_purchased=filter_already_purchased,
        candidate_recall=_pool_recall(recalls),
    )
