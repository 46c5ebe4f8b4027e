"""Offline evaluation on a later time window: time split, test customers, one metrics row per model.

Protocol:

* :func:`time_split` holds out the last ``test_days`` of the log (cut = latest event − ``test_days``; events
  before the cut train, the others test).
* Test customers are those with a test event *and* at least one training event ("warm"); customers with test events
  only are the cold-start segment (``segment="cold"``).
* Relevance is binary: the items a customer interacted with in the test window (``relevance="any"``), or only
  those bought (``relevance="purchase"``).
* Every model recommends ``k`` items per test customer with the same filters (already-purchased items removed).

:func:`evaluate_models` returns one row per model with ``model, precision, recall, map, ndcg, hit_rate, coverage,
novelty, diversity, n_customers``, all computed on boolean hit matrices (no per-customer Python loop).
:func:`evaluate_time_split` runs the whole protocol on one log: split, fit a fresh blend and the baselines on the
earlier part, score them on the test window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.config import BlendConfig
from fashion_reco.errors import NotFittedError, RecommendError
from fashion_reco.recommend import metrics as M
from fashion_reco.recommend.base import FitContext, Recommender
from fashion_reco.recommend.history import interactions_frame

if TYPE_CHECKING:
    from fashion_reco.data.interactions import Interactions

__all__ = [
    "METRIC_COLUMNS",
    "TimeSplitEvaluation",
    "evaluate_models",
    "evaluate_recommenders",
    "evaluate_time_split",
    "time_split",
    "warm_cold_customers",
]

METRIC_COLUMNS = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage", "novelty", "diversity")


def time_split(interactions: Any, test_days: float) -> tuple[Any, Any]:
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


def warm_cold_customers(train: Any, test: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(warm, cold)`` test customer ids: with / without a training event (sorted)."""
    tr = interactions_frame(train)
    te = interactions_frame(test)
    seen = set(tr[Columns.CUSTOMER_ID].unique())
    ids = np.array(sorted(te[Columns.CUSTOMER_ID].unique()), dtype=object)
    warm = np.array([c in seen for c in ids], dtype=bool)
    return ids[warm], ids[~warm]


def _relevant(test: Any, relevance: str) -> pd.DataFrame:
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
    train: Any,
    test: Any,
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
    relevant = relevant[relevant[Columns.CUSTOMER_ID].isin(set(customers))]
    customers = np.array([c for c in customers if c in set(relevant[Columns.CUSTOMER_ID])], dtype=object)
    rows = []
    for name, model in _named(models):
        if fit:
            model.fit(train, ctx)
        elif model.data_ is None:
            raise NotFittedError(f"model {name!r} is not fitted and fit=False")
        rows.append(_score_model(name, model, customers, relevant, k, filter_already_purchased))
    return pd.DataFrame(rows, columns=["model", *METRIC_COLUMNS, "n_customers"])


def _score_model(
    name: str,
    model: Recommender,
    customers: np.ndarray,
    relevant: pd.DataFrame,
    k: int,
    filter_already_purchased: bool,
) -> dict[str, Any]:
    data = model._require_fitted()
    if len(customers) == 0:
        return {"model": name, **{m: float("nan") for m in METRIC_COLUMNS}, "n_customers": 0}
    recs = model.recommend(customers, k=k, filter_already_purchased=filter_already_purchased)
    hits, n_rel = M.hit_matrix(recs, relevant, customers, k)
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
    return {
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


def evaluate_recommenders(
    recommender: Any,
    test: Any,
    k: int = 12,
    *,
    train: Any = None,
    baselines: Iterable[Recommender] | None = None,
    relevance: str = "any",
    segment: str = "warm",
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
    return evaluate_models(models, train_frame, test, ctx, k, fit=False, relevance=relevance, segment=segment)


def _frame_from_data(data: Any) -> pd.DataFrame:
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


@dataclass(frozen=True)
class TimeSplitEvaluation:
    """The metrics table of :func:`evaluate_time_split` and the split it was measured on."""

    table: pd.DataFrame
    test_days: float
    cutoff: pd.Timestamp  # the test window is ``[cutoff, end]``; training events are before ``cutoff``
    end: pd.Timestamp
    train_events: int
    test_events: int
    train_customers: int
    test_customers: int
    k: int
    relevance: str
    segment: str

    def summary(self) -> str:
        """What was held out and who was scored, in three lines (the table is printed separately)."""
        scored = int(self.table["n_customers"].max()) if len(self.table) else 0
        return (
            f"time split: the last {self.test_days:g} days are the test window [{self.cutoff}, {self.end}]\n"
            f"train: {self.train_events} events from {self.train_customers} customers; "
            f"test: {self.test_events} events from {self.test_customers} customers\n"
            f"scored: {scored} {self.segment} test customers at k={self.k} (relevant: {self.relevance} events)"
        )


def evaluate_time_split(
    interactions: Interactions | pd.DataFrame,
    test_days: float,
    context: FitContext | None = None,
    config: BlendConfig | None = None,
    k: int | None = None,
    *,
    baselines: Iterable[Recommender] | None = None,
    relevance: str = "any",
    segment: str = "warm",
) -> TimeSplitEvaluation:
    """Hold out the last ``test_days`` of ``interactions``, fit a fresh blend (``config``) and every baseline on the
    earlier events with ``context``, and score them all on the held-out window (``k`` defaults to ``config.k``).

    Raises :class:`RecommendError` when the window leaves no training events.
    """
    from fashion_reco.recommend.blend import BlendRecommender

    config = config or BlendConfig()
    train, test = time_split(interactions, test_days)
    train_frame, test_frame = interactions_frame(train), interactions_frame(test)
    if train_frame.empty:
        span = (test_frame[Columns.TIMESTAMP].max() - test_frame[Columns.TIMESTAMP].min()) / pd.Timedelta(
            days=1
        )
        raise RecommendError(
            f"a test window of {test_days:g} days leaves no training events (the log spans {span:.2f} days): "
            "hold out fewer days"
        )
    k = int(config.k if k is None else k)
    blend = BlendRecommender(config).fit(train, context)
    table = evaluate_recommenders(
        blend, test, k, train=train, baselines=baselines, relevance=relevance, segment=segment
    )
    end = test_frame[Columns.TIMESTAMP].max()
    return TimeSplitEvaluation(
        table=table,
        test_days=float(test_days),
        cutoff=end - pd.Timedelta(days=float(test_days)),
        end=end,
        train_events=len(train_frame),
        test_events=len(test_frame),
        train_customers=int(train_frame[Columns.CUSTOMER_ID].nunique()),
        test_customers=int(test_frame[Columns.CUSTOMER_ID].nunique()),
        k=k,
        relevance=relevance,
        segment=segment,
    )
