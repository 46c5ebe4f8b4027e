"""Baselines in the same API as the blend, for honest comparisons.

* :class:`PopularityRecommender` — most customers all-time.
* :class:`LastWeekPopularityRecommender` — last week's bestsellers: most distinct buyers in the ``days`` before the
  fit time (purchases; all events when the window holds none).
* :class:`OwnHistoryPopularRecommender` — the strongest simple fashion baseline: the customer's own past items,
  most recent first, then last week's bestsellers (the public "past purchases, then popular" baseline of the H&M
  Personalized Fashion Recommendations competition). Evaluate it with ``filter_already_purchased=False``: it is
  built on repurchase.
* :class:`RecentPopularityRecommender` — most customers recently (decayed with ``config.trend_half_life_days``).
* :class:`VisualOnlyRecommender` — cosine to the customer's taste vector only.
* :class:`BehaviourOnlyRecommender` — item–item co-occurrence cosine only.
* :class:`ImplicitItemKNNRecommender` / :class:`ImplicitALSRecommender` / :class:`ImplicitBPRRecommender` —
  implicit's ``CosineRecommender``, ``AlternatingLeastSquares`` and ``BayesianPersonalizedRanking`` (CPU), when
  ``implicit`` is installed.

All use the same filters and the same tie-break (popularity, then item order) as the blend, and cold customers get
popularity. The implicit wrappers score with the fitted implicit model (``user_items @ similarity`` for item-kNN,
user · item factors for ALS) so that filtering is identical across models; :meth:`recommend_native` calls
implicit's own ``recommend(userids, user_items, N, filter_already_liked_items=True)`` for cross-checking.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.columns import EventTypes
from fashion_reco.config import BlendConfig
from fashion_reco.errors import RecommendError
from fashion_reco.ids import Ids
from fashion_reco.recommend.base import FitContext, Recommender, take_rows
from fashion_reco.recommend.cooccurrence import behaviour_scores, item_item_cosine, item_item_random_walk
from fashion_reco.recommend.history import EVENT_CODES, TrainData
from fashion_reco.recommend.popularity import distinct_customer_counts, popularity_counts, trend_scores
from fashion_reco.recommend.taste import label_visual_affinity, taste_vectors

__all__ = [
    "BehaviourOnlyRecommender",
    "ImplicitALSRecommender",
    "ImplicitBPRRecommender",
    "ImplicitItemKNNRecommender",
    "LastWeekPopularityRecommender",
    "OwnHistoryPopularRecommender",
    "PopularityRecommender",
    "RecentPopularityRecommender",
    "VisualOnlyRecommender",
    "implicit_available",
    "standard_baselines",
]


class _Broadcast(Recommender):
    """A model whose scores are the same vector for every customer."""

    _vector: np.ndarray

    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._vector.astype(np.float32), (len(rows), self._vector.shape[0]))


class PopularityRecommender(_Broadcast):
    """Items ranked by the number of distinct customers who interacted with them."""

    name = "popularity"
    default_reason = "popular with customers"

    def _fit(self, data: TrainData, context: FitContext) -> None:
        self._vector = popularity_counts(data)


class RecentPopularityRecommender(_Broadcast):
    """Items ranked by recency-decayed popularity (half-life ``config.trend_half_life_days`` unless given)."""

    name = "recent_popularity"
    default_reason = "trending now"

    def __init__(self, config: BlendConfig | None = None, *, half_life_days: float | None = None) -> None:
        super().__init__(config)
        self.half_life_days = half_life_days

    def _fit(self, data: TrainData, context: FitContext) -> None:
        self._vector = trend_scores(data, self.half_life_days or self.config.trend_half_life_days)


def last_week_bestsellers(data: TrainData, days: float = 7.0) -> np.ndarray:
    """Distinct buyers per item in the last ``days`` before ``as_of`` (float64 ``(n_items,)``).

    Purchases count; when the window holds none (a view-only log) every event counts; an empty window falls back
    to all-time popularity, so the vector is never all zero while the log has events.
    """
    recent = data.age_days <= float(days)
    bought = data.event == EVENT_CODES[EventTypes.PURCHASE]
    for sel in (recent & bought, recent):
        if sel.any():
            return distinct_customer_counts(data.cust[sel], data.item[sel], data.n_items)
    return popularity_counts(data)


class LastWeekPopularityRecommender(_Broadcast):
    """Last week's bestsellers: items ranked by distinct buyers in the ``days`` (default 7) before the fit time."""

    name = "last_week_popularity"
    default_reason = "bestseller last week"

    def __init__(self, config: BlendConfig | None = None, *, days: float = 7.0) -> None:
        super().__init__(config)
        if days <= 0:
            raise RecommendError(f"days must be positive, got {days}")
        self.days = float(days)

    def _fit(self, data: TrainData, context: FitContext) -> None:
        self._vector = last_week_bestsellers(data, self.days)


class OwnHistoryPopularRecommender(Recommender):
    """The customer's own past items, most recent first, then last week's bestsellers.

    ``event_types``: which of the customer's events make an item "theirs" (default: every event type — viewed,
    carted or bought; a purchase-only log means bought); ``days``: the bestseller window. Own items score
    ``2 + 1 / (1 + days since the customer's latest such event)``, every other item ``bestsellers / (max + 1)``
    (below 1), so own items always come first and ties follow the shared popularity tie-break.
    """

    name = "own_history_popular"
    default_reason = "bestseller last week"

    def __init__(
        self,
        config: BlendConfig | None = None,
        *,
        days: float = 7.0,
        event_types: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(config)
        if days <= 0:
            raise RecommendError(f"days must be positive, got {days}")
        unknown = set(event_types or ()) - set(EventTypes.ALL)
        if unknown:
            raise RecommendError(
                f"unknown event types {sorted(unknown)}; expected some of {list(EventTypes.ALL)}"
            )
        self.days = float(days)
        self.event_types = tuple(event_types) if event_types else EventTypes.ALL

    def _fit(self, data: TrainData, context: FitContext) -> None:
        codes = np.array([EVENT_CODES[e] for e in self.event_types])
        sel = np.isin(data.event, codes)
        cust, item = data.cust[sel], data.item[sel]
        age = np.asarray(data.age_days, dtype=np.float64)[sel]
        own = sp.csr_matrix((data.n_customers, data.n_items), dtype=np.float32)
        if sel.any():  # one entry per (customer, item): the latest event's recency
            key = cust.astype(np.int64) * data.n_items + item
            order = np.lexsort((age, key))
            first = np.r_[True, key[order][1:] != key[order][:-1]]
            latest = order[first]
            own = sp.csr_matrix(
                (
                    (2.0 + 1.0 / (1.0 + np.maximum(age[latest], 0.0))).astype(np.float32),
                    (cust[latest], item[latest]),
                ),
                shape=(data.n_customers, data.n_items),
                dtype=np.float32,
            )
        popular = last_week_bestsellers(data, self.days)
        self._own = own
        self._popular = (popular / (popular.max(initial=0.0) + 1.0)).astype(np.float32)

    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
        out = np.tile(self._popular, (len(rows), 1))
        h = take_rows(self._own, rows).tocoo()
        out[h.row, h.col] = h.data
        return out

    def _reasons(
        self, rows: np.ndarray, customer_ids: np.ndarray, idx: np.ndarray, extras: Any
    ) -> np.ndarray:
        h = take_rows(self._own, rows)
        own = np.asarray(h[np.arange(len(rows))[:, None], np.maximum(idx, 0)].todense()) > 0
        return np.where(own, "you chose this before", self.default_reason).astype(object)


class _WithColdFallback(Recommender):
    """Personal scores for warm customers; popularity for cold ones."""

    def _fit_history(self, data: TrainData, half_life: float | None) -> None:
        self._history = data.history_matrix(self.config.event_weights, half_life)
        self._fallback = popularity_counts(data).astype(np.float32)

    def _rows_history(self, rows: np.ndarray) -> sp.csr_matrix:
        warm = rows >= 0
        h = self._history[np.where(warm, rows, 0)]
        return sp.csr_matrix(sp.diags(warm.astype(np.float32)) @ h)

    def _personal(self, h: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
        h = self._rows_history(rows)
        scores = self._personal(h)
        cold = np.diff(h.indptr) == 0
        if cold.any():
            scores[cold] = self._fallback
        return scores


class VisualOnlyRecommender(_WithColdFallback):
    """The blend's visual signal alone: cosine to the customer's recency-decayed taste vector (needs embeddings).

    ``visual_mode="global"`` (default: one taste vector, the stronger baseline here) or ``"label"`` (per-label taste
    vectors, as in the blend).
    """

    name = "visual_only"
    default_reason = "matches your style"

    def __init__(self, config: BlendConfig | None = None, *, visual_mode: str = "global") -> None:
        super().__init__(config)
        if visual_mode not in ("label", "global"):
            raise RecommendError(f"visual_mode must be 'label' or 'global', got {visual_mode!r}")
        self.visual_mode = visual_mode

    def _fit(self, data: TrainData, context: FitContext) -> None:
        if context.item_embeddings is None:
            raise RecommendError("VisualOnlyRecommender needs item embeddings (FitContext.item_embeddings)")
        self._emb = context.item_embeddings
        self._label = None
        if self.visual_mode == "label" and context.item_labels is not None:
            codes, _ = pd.factorize(pd.Series(context.item_labels, dtype=object), use_na_sentinel=True)
            self._label = codes.astype(np.int64)
        self._fit_history(data, self.config.half_life_days)

    def _personal(self, h: sp.csr_matrix) -> np.ndarray:
        if self._label is not None:
            return label_visual_affinity(h, self._emb, self._label)
        return np.asarray(taste_vectors(h, self._emb) @ self._emb.T, dtype=np.float32)


class BehaviourOnlyRecommender(_WithColdFallback):
    """The blend's behaviour signal alone: item–item co-occurrence scored as recency-decayed history · similarity.

    ``item_similarity``: ``"random_walk"`` (P3α, as in the blend) or ``"cosine"``.
    """

    name = "behaviour_only"
    default_reason = "customers like you chose this"

    def __init__(
        self,
        config: BlendConfig | None = None,
        *,
        n_neighbours: int = 100,
        item_similarity: str = "random_walk",
    ) -> None:
        super().__init__(config)
        self.n_neighbours = n_neighbours
        if item_similarity not in ("random_walk", "cosine"):
            raise RecommendError(
                f"item_similarity must be 'random_walk' or 'cosine', got {item_similarity!r}"
            )
        self.item_similarity = item_similarity

    def _fit(self, data: TrainData, context: FitContext) -> None:
        self._fit_history(data, self.config.half_life_days)
        raw = data.history_matrix(self.config.event_weights, None)
        if self.item_similarity == "cosine":
            self._sim = item_item_cosine(raw, n_neighbours=self.n_neighbours)
        else:
            self._sim = item_item_random_walk(raw, n_neighbours=self.n_neighbours)

    def _personal(self, h: sp.csr_matrix) -> np.ndarray:
        return behaviour_scores(h, self._sim)


@contextlib.contextmanager
def _quiet_implicit() -> Iterator[None]:
    """Silence implicit's advisory warnings (BLAS threads: handled by threadpool_limits; input-format notes)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*OpenBLAS is configured.*")
        warnings.filterwarnings("ignore", message=".*expects CSR input.*")
        yield


def implicit_available() -> bool:
    """Whether the optional ``implicit`` package imports."""
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


class _ImplicitBase(_WithColdFallback):
    """Shared plumbing: the confidence matrix implicit is fitted on (event-weighted counts, log-scaled)."""

    model: Any  # the fitted implicit model
    _user_items_matrix: sp.csr_matrix

    def __init__(
        self, config: BlendConfig | None = None, *, num_threads: int = 1, **model_kwargs: Any
    ) -> None:
        super().__init__(config)
        if not implicit_available():
            raise RecommendError("implicit is not installed: pip install implicit")
        self.num_threads = int(num_threads)
        self.model_kwargs = model_kwargs

    def _user_items(self, data: TrainData) -> sp.csr_matrix:
        m = data.history_matrix(self.config.event_weights, None)
        m = sp.csr_matrix(m, dtype=np.float32)
        m.data = np.log1p(m.data).astype(np.float32)
        return m

    def recommend_native(self, customer_ids: Ids, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """implicit's own ``recommend`` (known customers only; filters everything already interacted with)."""
        data = self._require_fitted()
        rows = data.customer_rows(customer_ids)
        if (rows < 0).any():
            raise RecommendError("recommend_native handles known customers only")
        with _quiet_implicit():
            ids, scores = self.model.recommend(
                rows, self._user_items_matrix[rows], N=k, filter_already_liked_items=True
            )
        return np.asarray(ids), np.asarray(scores)


class ImplicitItemKNNRecommender(_ImplicitBase):
    """implicit's ``CosineRecommender`` (item-kNN with cosine similarity, ``K`` neighbours)."""

    name = "implicit_item_knn"
    default_reason = "customers like you chose this"

    def _fit(self, data: TrainData, context: FitContext) -> None:
        from implicit.nearest_neighbours import CosineRecommender

        self._fit_history(data, None)
        ui = self._user_items(data)
        self._user_items_matrix = ui
        self._history = ui
        kwargs = {"K": 100, **self.model_kwargs}
        self.model = CosineRecommender(num_threads=self.num_threads, **kwargs)
        with _quiet_implicit():
            self.model.fit(ui, show_progress=False)
        self._sim = sp.csr_matrix(self.model.similarity, dtype=np.float32)

    def _personal(self, h: sp.csr_matrix) -> np.ndarray:
        return np.asarray((h @ self._sim).toarray(), dtype=np.float32)


class _ImplicitFactorModel(_ImplicitBase):
    """A latent-factor model of implicit (CPU) on log-scaled, event-weighted confidences; cold rows get popularity."""

    defaults: ClassVar[dict[str, float | int]] = {}

    def _model_class(self) -> type:
        raise NotImplementedError

    def _fit(self, data: TrainData, context: FitContext) -> None:
        from threadpoolctl import threadpool_limits

        self._fit_history(data, None)
        ui = self._user_items(data)
        self._user_items_matrix = ui
        self._history = ui
        kwargs = {**self.defaults, **self.model_kwargs}
        with threadpool_limits(1, "blas"), _quiet_implicit():
            self.model = self._model_class()(num_threads=self.num_threads, **kwargs)
            if ui.nnz:
                self.model.fit(ui, show_progress=False)
        fitted = ui.nnz and getattr(self.model, "user_factors", None) is not None
        n_factors = int(kwargs["factors"]) + 1
        self._user_factors = (
            np.asarray(self.model.user_factors, dtype=np.float32)
            if fitted
            else np.zeros((data.n_customers, n_factors), dtype=np.float32)
        )
        self._item_factors = (
            np.asarray(self.model.item_factors, dtype=np.float32)
            if fitted
            else np.zeros((data.n_items, n_factors), dtype=np.float32)
        )

    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
        h = self._rows_history(rows)
        cold = np.diff(h.indptr) == 0
        scores = self._user_factors[np.maximum(rows, 0)] @ self._item_factors.T
        if cold.any():
            scores[cold] = self._fallback
        return scores.astype(np.float32)


class ImplicitALSRecommender(_ImplicitFactorModel):
    """implicit's ``AlternatingLeastSquares`` (CPU) on log-scaled, event-weighted confidences."""

    name = "implicit_als"
    default_reason = "customers like you chose this"
    defaults: ClassVar[dict[str, float | int]] = {
        "factors": 32,
        "regularization": 0.05,
        "iterations": 15,
        "alpha": 2.0,
        "random_state": 0,
    }

    def _model_class(self) -> type:
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares


class ImplicitBPRRecommender(_ImplicitFactorModel):
    """implicit's ``BayesianPersonalizedRanking`` (CPU; 64 factors, 100 epochs, seeded) on the same matrix."""

    name = "implicit_bpr"
    default_reason = "customers like you chose this"
    defaults: ClassVar[dict[str, float | int]] = {
        "factors": 64,
        "learning_rate": 0.05,
        "regularization": 0.01,
        "iterations": 100,
        "random_state": 0,
    }

    def _model_class(self) -> type:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking


def standard_baselines(config: BlendConfig | None = None, *, with_visual: bool = True) -> list[Recommender]:
    """Unfitted instances of every baseline available here (visual only when embeddings will be given)."""
    config = config or BlendConfig()
    models: list[Recommender] = [
        PopularityRecommender(config),
        RecentPopularityRecommender(config),
        BehaviourOnlyRecommender(config),
    ]
    if with_visual:
        models.insert(2, VisualOnlyRecommender(config))
    if implicit_available():
        models += [ImplicitItemKNNRecommender(config), ImplicitALSRecommender(config)]
    return models
