"""Gather what the report shows from a fitted ``FashionRecommender``, using only the facade's public attributes.

Nothing here writes HTML: these helpers pick the sampled items and customers (seeded, so a report is reproducible),
look up photos and labels, and normalise the classifier metrics and the evaluation table into plain shapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.model.metrics import ClassificationMetrics

__all__ = [
    "KNOWN_METRICS",
    "ClassifierView",
    "EvaluationView",
    "ItemInfo",
    "ItemLookup",
    "RollingView",
    "classifier_view",
    "collapse_warning",
    "customer_histories",
    "evaluation_view",
    "rolling_view",
    "sample_customers",
    "sample_items",
]

# Ranking metrics in display order; for all of them higher is better.
KNOWN_METRICS: tuple[str, ...] = (
    "precision",
    "recall",
    "map",
    "ndcg",
    "hit_rate",
    "coverage",
    "novelty",
    "diversity",
)
# Numeric columns of an evaluation frame that describe the run rather than score it: shown, never ranked or charted.
INFO_COLUMNS: tuple[str, ...] = ("n_customers",)
METRIC_TITLES: dict[str, str] = {
    "precision": "Precision",
    "recall": "Recall",
    "map": "MAP",
    "ndcg": "NDCG",
    "hit_rate": "Hit rate",
    "coverage": "Coverage",
    "novelty": "Novelty",
    "diversity": "Diversity",
    "n_customers": "Customers",
}


# -- items ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemInfo:
    item_id: str
    image_path: str | None
    label: str | None


class ItemLookup:
    """``item_id`` → photo path and label, from the catalogue's ``items`` frame."""

    def __init__(self, items: pd.DataFrame) -> None:
        ids = items[Columns.ITEM_ID].astype(str).to_numpy()
        paths = (
            items[Columns.IMAGE_PATH]
            if Columns.IMAGE_PATH in items.columns
            else pd.Series([None] * len(items))
        )
        labels = items[Columns.LABEL] if Columns.LABEL in items.columns else pd.Series([None] * len(items))
        self._info = {
            item_id: ItemInfo(item_id, _clean(path), _clean(label))
            for item_id, path, label in zip(ids, paths.to_numpy(), labels.to_numpy(), strict=True)
        }

    def __getitem__(self, item_id: object) -> ItemInfo:
        key = str(item_id)
        return self._info.get(key) or ItemInfo(key, None, None)

    def __len__(self) -> int:
        return len(self._info)


def _clean(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text or None


def sample_items(items: pd.DataFrame, n: int, seed: int) -> list[str]:
    """``n`` item ids drawn without replacement, spread over the labels (one per label in turn), reproducible."""
    if n <= 0 or items.empty:
        return []
    rng = np.random.default_rng(seed)
    ids = items[Columns.ITEM_ID].astype(str).to_numpy()
    if Columns.LABEL in items.columns:
        labels = items[Columns.LABEL].astype("string").fillna("").to_numpy()
    else:
        labels = np.full(len(ids), "", dtype=object)
    pools: dict[str, list[str]] = {}
    for position in rng.permutation(len(ids)):
        pools.setdefault(str(labels[position]), []).append(str(ids[position]))
    order = list(pools)  # first-seen order of a random permutation: a random label order
    picked: list[str] = []
    while len(picked) < min(n, len(ids)):
        for label in order:
            if pools[label] and len(picked) < n:
                picked.append(pools[label].pop())
    return picked


# -- customers --------------------------------------------------------------------------------------------------------
def sample_customers(
    events: pd.DataFrame | None, profiles: pd.DataFrame | None, n: int, seed: int, *, min_events: int = 3
) -> list[str]:
    """Up to ``n`` customers: warm ones with at least ``min_events`` events (fewer when too few qualify), plus one
    cold customer (a profile with no events) when one exists, so the cold-start path shows too."""
    if n <= 0 or events is None or events.empty:
        return []
    rng = np.random.default_rng(seed)
    counts = events[Columns.CUSTOMER_ID].astype(str).value_counts()
    warm = counts[counts >= min_events].index.to_numpy()
    if len(warm) < n:
        warm = counts.index.to_numpy()
    cold: list[str] = []
    if profiles is not None and not profiles.empty and Columns.CUSTOMER_ID in profiles.columns:
        known = set(counts.index)
        candidates = sorted(c for c in profiles[Columns.CUSTOMER_ID].astype(str) if c not in known)
        if candidates and n >= 2:
            cold = [candidates[int(rng.integers(len(candidates)))]]
    n_warm = min(n - len(cold), len(warm))
    chosen = sorted(rng.choice(np.sort(warm), size=n_warm, replace=False).tolist()) if n_warm else []
    return [str(c) for c in chosen] + cold


def customer_histories(
    events: pd.DataFrame, customer_ids: Sequence[str], limit: int
) -> dict[str, pd.DataFrame]:
    """Each customer's ``limit`` most recent events, newest first (an empty frame for a cold customer)."""
    frame = events.assign(**{Columns.CUSTOMER_ID: events[Columns.CUSTOMER_ID].astype(str)})
    frame = frame[frame[Columns.CUSTOMER_ID].isin(set(customer_ids))]
    if Columns.TIMESTAMP in frame.columns:
        frame = frame.sort_values(Columns.TIMESTAMP, kind="stable")
    frame = frame.iloc[::-1]  # newest first; among equal timestamps, the later logged first
    grouped = {cid: group.head(limit) for cid, group in frame.groupby(Columns.CUSTOMER_ID, sort=False)}
    return {cid: grouped.get(cid, frame.iloc[0:0]) for cid in customer_ids}


# -- evaluation -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationView:
    """The evaluation table at one k (``table``), the metric columns in display order (ranked and charted), the
    informational columns (shown only, e.g. ``n_customers``), and — when the input had several k values — the full
    long frame for metric@k lines."""

    table: pd.DataFrame
    metrics: list[str]
    info: list[str]
    highlight: str | None
    k: float | None
    by_k: pd.DataFrame | None


def evaluation_view(evaluation: pd.DataFrame, highlight: str | None = None) -> EvaluationView:
    """Normalise an ``evaluate`` result: one row per model (at the largest k when a ``k`` column is present)."""
    frame = evaluation.reset_index(drop=evaluation.index.name is None)
    if Columns.MODEL not in frame.columns:
        frame = frame.rename(columns={frame.columns[0]: Columns.MODEL})
    frame[Columns.MODEL] = frame[Columns.MODEL].astype(str)
    numeric = [
        c for c in frame.columns if c not in (Columns.MODEL, "k") and pd.api.types.is_numeric_dtype(frame[c])
    ]
    info = [c for c in INFO_COLUMNS if c in numeric]
    metrics = [m for m in KNOWN_METRICS if m in numeric]
    metrics += [c for c in numeric if c not in KNOWN_METRICS and c not in info]
    models = list(dict.fromkeys(frame[Columns.MODEL]))
    if highlight is None:
        highlight = next((m for m in models if m.lower() in ("ranker", "blend")), None) or next(
            (m for m in models if "ranker" in m.lower() or "blend" in m.lower()), None
        )
    by_k = None
    k_value: float | None = None
    if "k" in frame.columns and frame["k"].notna().any():
        k_value = float(frame["k"].max())
        if frame["k"].nunique() > 1:
            by_k = frame
        table = frame[frame["k"] == frame["k"].max()]
    else:
        table = frame
    table = table.drop_duplicates(Columns.MODEL, keep="last").reset_index(drop=True)
    return EvaluationView(table=table, metrics=metrics, info=info, highlight=highlight, k=k_value, by_k=by_k)


@dataclass(frozen=True)
class RollingView:
    """A rolling-origin evaluation in plain shapes: one row per fold (window, customers, MAP per model) and one row
    per baseline × metric (candidate − baseline with its bootstrap interval)."""

    candidate: str
    k: int
    window_days: float
    confidence: float
    models: list[str]
    folds: pd.DataFrame  # fold, cutoff, until, n_customers, then one MAP column per model
    intervals: pd.DataFrame  # baseline, metric, candidate − baseline: diff, low, high, ratio, n, verdict
    recall: pd.DataFrame | None = (
        None  # pooled candidate recall per source (source, recall, candidates_per_customer)
    )


def rolling_view(result: object) -> RollingView | None:
    """The fold table and intervals of an ``evaluate_time_split`` result (``None`` for a plain metrics frame)."""
    fold_table = getattr(result, "fold_table", None)
    intervals = getattr(result, "intervals", None)
    if (
        not isinstance(fold_table, pd.DataFrame)
        or not isinstance(intervals, pd.DataFrame)
        or fold_table.empty
    ):
        return None
    models = list(dict.fromkeys(fold_table["model"].astype(str)))
    info = fold_table.drop_duplicates("fold").set_index("fold")[["cutoff", "until", "n_customers"]]
    maps = fold_table.pivot_table(index="fold", columns="model", values="map", aggfunc="first", dropna=False)
    folds = info.join(maps.reindex(columns=models)).reset_index()
    return RollingView(
        candidate=str(getattr(result, "candidate", models[0])),
        k=int(getattr(result, "k", 0)),
        window_days=float(getattr(result, "test_days", float("nan"))),
        confidence=float(getattr(result, "confidence", 0.95)),
        models=models,
        folds=folds,
        intervals=intervals.reset_index(drop=True),
        recall=_pooled_recall(getattr(result, "candidate_recall", None)),
    )


def _pooled_recall(recall: object) -> pd.DataFrame | None:
    if not isinstance(recall, pd.DataFrame) or recall.empty or "fold" not in recall.columns:
        return None
    return recall[recall["fold"] == 0].reset_index(drop=True)


# -- classifier metrics -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifierView:
    """Held-out classification quality (a :class:`~fashion_reco.model.metrics.ClassificationMetrics`) and the name of
    the split it was measured on."""

    metrics: ClassificationMetrics
    split: str | None


_SPLIT_PREFERENCE = ("test", "validation")


def collapse_warning(model: Any) -> str | None:
    """The report's warning when training flagged the image model's embeddings as collapsed (else None)."""
    training = getattr(model, "training", None) or {}
    if not training.get("collapsed"):
        return None
    cosine = training.get("embedding_mean_cosine")
    threshold = training.get("collapse_threshold")
    measured = (
        f" (mean pairwise cosine {cosine:.2f} > {threshold:g})" if cosine is not None and threshold else ""
    )
    return (
        f"Warning: the image model's embeddings are nearly identical{measured}, so visual neighbours are close to "
        "random. Train longer, on more photos, or from pretrained weights before trusting “more like this”."
    )


def classifier_view(
    metrics: ClassificationMetrics | Mapping[str, ClassificationMetrics] | None,
) -> ClassifierView | None:
    """``ImageModel.metrics`` (split name → metrics) → the split to show: ``test``, else ``validation``, else the first
    one; a bare ``ClassificationMetrics`` is shown as is. ``None`` when there are no metrics."""
    if metrics is None:
        return None
    if isinstance(metrics, ClassificationMetrics):
        return ClassifierView(metrics, None)
    names = [n for n in _SPLIT_PREFERENCE if n in metrics] + [
        n for n in metrics if n not in _SPLIT_PREFERENCE
    ]
    for name in names:
        value = metrics[name]
        if isinstance(value, ClassificationMetrics):
            return ClassifierView(value, str(name))
    return None
