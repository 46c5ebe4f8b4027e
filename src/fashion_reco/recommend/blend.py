"""The personalised ranking: a learned, explainable blend of five signals per (customer, item).

Signals (each normalised per customer — by its largest magnitude by default, see :mod:`.normalise` — so the
weights compare like with like):

* ``visual``     cosine between the item's image embedding and the customer's taste vector (recency-decayed,
                 event-weighted mean of the embeddings of what they viewed / added / bought) — :mod:`.taste`;
* ``behaviour``  item–item co-occurrence (random-walk transition probabilities, or cosine) on the customer × item
                 matrix, scored as history · similarity — :mod:`.cooccurrence`;
* ``popularity`` distinct customers per item (log) — :mod:`.popularity`;
* ``trend``      recency-decayed popularity with a short half-life (log);
* ``profile``    label affinity (probability) from attributes, stated preferences and history — :mod:`.profile`.

``score = Σ_s w_s · z_s``. A signal the data cannot support is absent (no embeddings → no visual; no labels → no
profile). Weights and half-lives are learned on a time-split validation window (:mod:`.tuning`) unless
``config.tune`` is off, and stored as ``weights_``, ``half_life_days_``, ``trend_half_life_days_``. Customers
without history (unknown ids, or known only from the customer table) are ranked with ``cold_weights_`` over the
signals that exist for them (profile, popularity, trend), learned on the validation window's new customers.

Every row of :meth:`BlendRecommender.recommend` carries a ``reason`` naming the signal that contributed most:
"similar to <item> you viewed", "often bought with <item>", "trending now", "popular in <label>",
"matches your preferred <label>", ...

Scoring. With ``max`` normalisation a per-customer signal enters as ``raw · (w / peak)``, one in-place multiply
(:func:`.normalise.max_scale`), and the shared rows (popularity, trend) are summed once per weight group. Without
visual and profile signals :meth:`BlendRecommender.recommend` never builds dense blocks at all: behaviour is the
sparse ``history · similarity`` and everything else a shared row, so only each customer's behaviour non-zeros and
the shared row's top-(k + purchased) are scored (:func:`.topk.topk_sparse_plus_rows`), with the same float32
operations as the dense path — the lists, scores and reasons are identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.checks import check_k
from fashion_reco.columns import Columns, EventTypes
from fashion_reco.config import BlendConfig
from fashion_reco.errors import NotFittedError, RecommendError
from fashion_reco.ids import Ids
from fashion_reco.recommend.base import FitContext, Recommender, customers_frame, take_rows
from fashion_reco.recommend.cooccurrence import (
    item_item_cosine,
    item_item_random_walk,
    prune_rows,
    strongest_links,
)
from fashion_reco.recommend.history import EVENT_CODES, TrainData, as_id_array
from fashion_reco.recommend.normalise import NORMALISATIONS, max_scale, normalise_rows, row_peaks
from fashion_reco.recommend.popularity import popularity_counts, trend_scores
from fashion_reco.recommend.profile import ProfileModel
from fashion_reco.recommend.reasons import fill_linked, join_text, lookup, strongest_event_matrix
from fashion_reco.recommend.similarity import (
    SimilarityIndex,
    build_index,
    neighbours_frame,
    similar_items_frame,
)
from fashion_reco.recommend.taste import closest_history_items, label_visual_affinity, taste_vectors
from fashion_reco.recommend.topk import topk_rows, topk_sparse_plus_rows

if TYPE_CHECKING:
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.recommend.tuning import TuningResult, TuningSpace

__all__ = ["COLD_SIGNALS", "SIGNALS", "BlendRecommender", "config_weights"]

SIGNALS: tuple[str, ...] = ("visual", "behaviour", "popularity", "trend", "profile")
#: signals that exist for a customer without history (cold start)
COLD_SIGNALS: tuple[str, ...] = ("popularity", "trend", "profile")
FORMAT = "fashion-reco-blend/1"
MANIFEST = "recommender.json"
_VERBS = {0: "viewed", 1: "added to cart", 2: "bought"}
#: signals that are one row shared by every customer of a weight group (no per-customer part)
_SHARED: tuple[str, ...] = ("popularity", "trend")
#: sparse candidate scoring: expected history · similarity entries per block of customers
_SPARSE_BLOCK_ENTRIES = 1 << 22
#: the ``customers`` frame of the recommend call in progress (a ContextVar: concurrent calls never see each other's)
_CALL_CUSTOMERS: ContextVar[pd.DataFrame | None] = ContextVar(
    "fashion_reco_blend_call_customers", default=None
)


def config_weights(config: BlendConfig) -> dict[str, float]:
    """The weights written in a :class:`BlendConfig` (used when tuning is off, and as the tuning tie-break)."""
    return {
        "visual": config.visual_weight,
        "behaviour": config.behaviour_weight,
        "popularity": config.popularity_weight,
        "trend": config.trend_weight,
        "profile": config.profile_weight,
    }


class BlendRecommender(Recommender):
    """Personalised ranking blending visual taste, behaviour, popularity, trend and profile (module docstring).

    Args:
        config: the ``blend`` section of the configuration.
        normalisation: per-customer signal normalisation, ``"max"`` (default: divide by the row's largest
            magnitude, so absent evidence stays 0), ``"zscore"`` or ``"rank"``.
        n_neighbours: item–item neighbours kept per item for the behaviour signal.
        shrink: co-occurrence shrinkage of the item–item cosine.
        item_similarity: behaviour similarity, ``"random_walk"`` (P3α/RP3β, default) or ``"cosine"``.
        rp3_beta: popularity penalty of the random-walk similarity (0 = P3α).
        profile_strength: Dirichlet prior strength of the profile (in event-weight units).
        max_history: history items per customer considered when explaining a recommendation.
        visual_mode: ``"label"`` (default): taste vectors per label (:func:`.taste.label_visual_affinity`);
            ``"global"``: one taste vector per customer.
        tuning_space: grid / search space for :func:`fashion_reco.recommend.tuning.tune_blend`.

    Attributes:
        sparse_candidates: let :meth:`recommend` score only candidates when that is exact (default ``True``;
            ``False`` forces dense blocks, e.g. to compare the two).
    """

    name = "blend"
    default_reason = "recommended for you"
    #: the tuning summary stored with a saved model (set by ``load`` only)
    tuning_summary_: dict[str, Any] | None

    def __init__(
        self,
        config: BlendConfig | None = None,
        *,
        normalisation: str = "max",
        n_neighbours: int = 100,
        shrink: float = 0.0,
        profile_strength: float = 5.0,
        max_history: int = 50,
        visual_mode: str = "label",
        item_similarity: str = "random_walk",
        rp3_beta: float = 0.0,
        tuning_space: TuningSpace | None = None,
    ) -> None:
        super().__init__(config)
        if normalisation not in NORMALISATIONS:
            raise RecommendError(
                f"unknown normalisation {normalisation!r} (expected one of {NORMALISATIONS})"
            )
        self.normalisation = normalisation
        self.n_neighbours = int(n_neighbours)
        self.shrink = float(shrink)
        self.profile_strength = float(profile_strength)
        self.max_history = int(max_history)
        if visual_mode not in ("label", "global"):
            raise RecommendError(f"visual_mode must be 'label' or 'global', got {visual_mode!r}")
        self.visual_mode = visual_mode
        if item_similarity not in ("random_walk", "cosine"):
            raise RecommendError(
                f"item_similarity must be 'random_walk' or 'cosine', got {item_similarity!r}"
            )
        self.item_similarity = item_similarity
        self.rp3_beta = float(rp3_beta)
        self.tuning_space = tuning_space
        self.sparse_candidates = True
        self.weights_: dict[str, float] = {}
        self.cold_weights_: dict[str, float] = {}
        self.half_life_days_: float = self.config.half_life_days
        self.trend_half_life_days_: float = self.config.trend_half_life_days
        self.tuning_: TuningResult | None = None
        self.signals_: tuple[str, ...] = ()
        self._index: SimilarityIndex | None = None

    def options(self) -> dict[str, Any]:
        """Constructor options (everything but the config), e.g. to build an identical unfitted copy."""
        return {
            "normalisation": self.normalisation,
            "n_neighbours": self.n_neighbours,
            "shrink": self.shrink,
            "profile_strength": self.profile_strength,
            "max_history": self.max_history,
            "visual_mode": self.visual_mode,
            "item_similarity": self.item_similarity,
            "rp3_beta": self.rp3_beta,
        }

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions | pd.DataFrame | TrainData | None = None,
        context: FitContext | None = None,
        *,
        tune: bool | None = None,
        **context_kwargs: Any,
    ) -> BlendRecommender:
        """Fit on ``train`` (may be ``None``: similar items and cold-start profile only).

        Tunes weights and half-lives first when ``tune`` (default ``config.tune``) and the log spans more than the
        validation window; the final model is fitted on all of ``train`` with the tuned values.
        """
        self._tune_flag = self.config.tune if tune is None else bool(tune)
        return super().fit(train, context, **context_kwargs)  # type: ignore[return-value]

    def _fit(self, data: TrainData, context: FitContext) -> None:
        self.signals_ = self._available(data, context)
        weights = {s: w for s, w in config_weights(self.config).items() if s in self.signals_}
        cold = {s: w for s, w in weights.items() if s in COLD_SIGNALS}
        hl, thl = self.config.half_life_days, self.config.trend_half_life_days
        self.tuning_ = None
        if getattr(self, "_tune_flag", False) and data.n_events > 0:
            from fashion_reco.recommend.tuning import tune_on_data

            result = tune_on_data(data, context, self.config, space=self.tuning_space, options=self.options())
            self.tuning_ = result
            if result.tuned:
                weights, hl, thl = result.weights, result.half_life_days, result.trend_half_life_days
                cold = result.cold_weights or cold
        self.weights_ = {s: float(weights.get(s, 0.0)) for s in self.signals_}
        self.cold_weights_ = {s: float(cold.get(s, 0.0)) for s in self.signals_ if s in COLD_SIGNALS}
        self._prepare_static(data, context)
        self.set_decay(hl, thl)

    def _available(self, data: TrainData, context: FitContext) -> tuple[str, ...]:
        out = []
        has_events = data.n_events > 0
        if context.item_embeddings is not None and has_events:
            out.append("visual")
        if has_events:
            out += ["behaviour", "popularity", "trend"]
        if context.item_labels is not None and any(v is not None for v in context.item_labels):
            out.append("profile")
        return tuple(s for s in SIGNALS if s in out)

    def _prepare_static(self, data: TrainData, context: FitContext) -> None:
        """Everything that does not depend on the half-lives: co-occurrence, popularity, profile tables."""
        self.embeddings_ = context.item_embeddings
        self.labels_ = context.item_labels
        raw = data.history_matrix(self.config.event_weights, None)
        if "behaviour" not in self.signals_:
            self.similarity_ = sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
        elif self.item_similarity == "cosine":
            self.similarity_ = item_item_cosine(raw, n_neighbours=self.n_neighbours, shrink=self.shrink)
        else:
            self.similarity_ = item_item_random_walk(raw, n_neighbours=self.n_neighbours, beta=self.rp3_beta)
        counts = getattr(self, "popularity_", None)
        self.popularity_counts_ = (
            counts if counts is not None and counts.shape == (data.n_items,) else (popularity_counts(data))
        )
        self._z_popularity = normalise_rows(np.log1p(self.popularity_counts_)[None, :], self.normalisation)
        self.profile_ = None
        if "profile" in self.signals_:
            self.profile_ = ProfileModel.fit(
                data, self._labels(context), context.customers, raw, strength=self.profile_strength
            )
        self._purchase_share = (
            float((data.event == EVENT_CODES[EventTypes.PURCHASE]).mean()) if data.n_events else 0.0
        )
        self._derive_static()

    def _derive_static(self) -> None:
        """Read-only helpers derived from the fitted arrays (at fit and at load, never while recommending): the
        similarity's transpose, each history pair's strongest event, the "more like this" index."""
        self._similarity_t_matrix = self.similarity_.T.tocsr()
        self._strongest = strongest_event_matrix(self._require_fitted())
        self._index = None if self.embeddings_ is None else build_index(self.embeddings_, self.config)

    def set_decay(self, half_life_days: float, trend_half_life_days: float) -> None:
        """Recompute the decay-dependent state (history matrix, trend) for new half-lives."""
        data = self._require_fitted()
        self.half_life_days_ = float(half_life_days)
        self.trend_half_life_days_ = float(trend_half_life_days)
        self.history_ = data.history_matrix(self.config.event_weights, self.half_life_days_)
        self._history_top = prune_rows(self.history_, self.max_history)
        self.trend_counts_ = trend_scores(data, self.trend_half_life_days_)
        self._z_trend = normalise_rows(np.log1p(self.trend_counts_)[None, :], self.normalisation)

    # ------------------------------------------------------------------ signals
    def _embeddings(self) -> np.ndarray:
        """The fitted item embeddings (the visual signal is only active when the fit context had them)."""
        if self.embeddings_ is None:
            raise RecommendError("this blend was fitted without item embeddings: no visual signal")
        return self.embeddings_

    @staticmethod
    def _labels(context: FitContext) -> np.ndarray:
        """The catalogue's item labels (the profile signal is only active when the fit context had them)."""
        if context.item_labels is None:
            raise RecommendError("the profile signal needs item labels in the fit context")
        return context.item_labels

    def _history_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        return take_rows(self.history_, rows)

    def _raw_signal(
        self, name: str, rows: np.ndarray, h: sp.csr_matrix, cold_prior: np.ndarray | None
    ) -> np.ndarray:
        """A fresh float32 ``(len(rows), n_items)`` block of a per-customer signal, before normalisation."""
        if name == "visual":
            if self.visual_mode == "label" and self.profile_ is not None:
                return label_visual_affinity(h, self._embeddings(), self.profile_.item_label)
            emb = self._embeddings()
            return np.asarray(taste_vectors(h, emb) @ emb.T, dtype=np.float32)
        if name == "behaviour":
            return np.asarray((h @ self.similarity_).toarray(), dtype=np.float32)
        if name == "profile" and self.profile_ is not None:
            aff = self.profile_.affinity(rows, h, cold_prior=cold_prior)
            return self.profile_.item_scores(aff, log=self.normalisation != "max")
        raise RecommendError(f"{name!r} is not a per-customer signal of this model")

    def signals(
        self, rows: np.ndarray, *, cold_prior: np.ndarray | None = None, normalised: bool = True
    ) -> dict[str, np.ndarray]:
        """Signal blocks ``(len(rows), n_items)`` per available signal for customer rows (``-1`` = cold).

        Popularity and trend are the same for every customer and come back as ``(1, n_items)`` rows.
        """
        self._require_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        h = self._history_rows(rows)
        out: dict[str, np.ndarray] = {}
        for name in self.signals_:
            if name in _SHARED:
                if normalised:
                    out[name] = self._z_popularity if name == "popularity" else self._z_trend
                else:
                    counts = self.popularity_counts_ if name == "popularity" else self.trend_counts_
                    out[name] = np.log1p(counts)[None, :]
                continue
            if name == "profile" and self.profile_ is None:
                continue
            x = self._raw_signal(name, rows, h, cold_prior)
            out[name] = normalise_rows(x, self.normalisation) if normalised else x
        return out

    def combine(
        self, signals: dict[str, np.ndarray], weights: Mapping[str, float | np.ndarray] | None = None
    ) -> np.ndarray:
        """``Σ_s w_s · signal_s`` as a float32 block (broadcasting the shared popularity / trend rows).

        A weight may be a scalar or one value per row (as :meth:`row_weights` returns). Shared rows with scalar
        weights are summed into one row first; every block is added through one scratch buffer.
        """
        weights = self.weights_ if weights is None else weights
        n = max((v.shape[0] for v in signals.values()), default=0)
        n_items = self._require_fitted().n_items
        total = np.zeros((n, n_items), dtype=np.float32)
        shared: np.ndarray | None = None
        scratch: np.ndarray | None = None
        for name, block in signals.items():
            w = np.asarray(weights.get(name, 0.0), dtype=np.float32)
            if not np.any(w != 0):
                continue
            if w.ndim == 0 and block.shape[0] == 1:
                term = w * np.asarray(block[0], dtype=np.float32)
                shared = term if shared is None else shared + term
                continue
            wb = w if w.ndim == 0 else w[:, None]
            if block.shape[0] == 1:
                total += wb * np.asarray(block, dtype=np.float32)
                continue
            if scratch is None:
                scratch = np.empty((n, n_items), dtype=np.float32)
            np.multiply(block, wb, out=scratch)
            total += scratch
        if shared is not None:
            total += shared
        return total

    def row_weights(self, cold: np.ndarray) -> dict[str, np.ndarray]:
        """Per-row weights: ``cold_weights_`` where ``cold`` (no history), ``weights_`` elsewhere."""
        cold = np.asarray(cold, dtype=bool)
        return {
            s: np.where(cold, self.cold_weights_.get(s, 0.0), self.weights_.get(s, 0.0)).astype(np.float32)
            for s in self.signals_
        }

    def _is_cold(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(self.history_.indptr)
        return (rows < 0) | (counts[np.maximum(rows, 0)] == 0)

    def _cold_attributes(self, customer_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        frame = _CALL_CUSTOMERS.get()
        if frame is None or self.profile_ is None:
            return None, None
        sub = frame.set_index(Columns.CUSTOMER_ID).reindex(customer_ids).reset_index()
        return self.profile_.prior_for_frame(sub)

    # ------------------------------------------------------------------ scoring
    def _shared_rows(self, weights: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
        """The weighted sum of the shared signals per distinct weight vector: rows ``(G, n_items)``, group ``(n,)``."""
        n_items = self._require_fitted().n_items
        names = [s for s in _SHARED if s in self.signals_]
        if not names or n == 0:
            return np.zeros((1, n_items), dtype=np.float32), np.zeros(n, dtype=np.int64)
        w = np.stack([np.broadcast_to(np.asarray(weights[s], dtype=np.float32), (n,)) for s in names], axis=1)
        distinct, group = np.unique(w, axis=0, return_inverse=True)
        z = {"popularity": self._z_popularity[0], "trend": self._z_trend[0]}
        out = np.empty((distinct.shape[0], n_items), dtype=np.float32)
        for g, wg in enumerate(distinct):
            acc = wg[0] * z[names[0]]
            for j in range(1, len(names)):
                acc = acc + wg[j] * z[names[j]]
            out[g] = acc
        return out, np.asarray(group, dtype=np.int64).reshape(-1)

    def _scaled_signals(
        self, rows: np.ndarray, weights: dict[str, np.ndarray], cold_prior: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """``w · normalised signal`` blocks of the per-customer signals that carry weight in this block.

        With ``max`` normalisation the weight and ``1 / peak`` are one multiplier applied in place to the raw block.
        """
        h = self._history_rows(rows)
        out: dict[str, np.ndarray] = {}
        for name in self.signals_:
            if name in _SHARED or (name == "profile" and self.profile_ is None):
                continue
            w = weights[name]
            if not np.any(w != 0):
                continue
            x = self._raw_signal(name, rows, h, cold_prior)
            if self.normalisation == "max":
                x *= max_scale(row_peaks(x), w)[:, None]
            else:
                x = normalise_rows(x, self.normalisation)
                x *= w[:, None]
            out[name] = x
        return out

    def _score_rows(self, rows: np.ndarray, customer_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        rows = np.asarray(rows, dtype=np.int64)
        cold_prior, cold_pref = self._cold_attributes(customer_ids)
        weights = self.row_weights(self._is_cold(rows))
        shared, group = self._shared_rows(weights, len(rows))
        total = shared[group]
        scaled = self._scaled_signals(rows, weights, cold_prior)
        for block in scaled.values():
            total += block
        return total, (scaled, weights, cold_pref)

    def _contributions(
        self, idx: np.ndarray, weights: dict[str, np.ndarray], picked: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """``w · signal`` of every chosen item per signal, ``(n, k)``; ``-inf`` where the row's weight is <= 0.

        ``picked`` holds the per-customer signals' weighted values at ``idx`` already; the shared ones are looked up.
        """
        safe = np.maximum(idx, 0)
        z = {"popularity": self._z_popularity, "trend": self._z_trend}
        out: dict[str, np.ndarray] = {}
        for name in self.signals_:
            w = weights.get(name)
            if w is None or not np.any(w > 0):
                continue
            if name in _SHARED:
                value = w[:, None] * z[name][0][safe]
            elif name in picked:
                value = picked[name]
            else:
                continue
            out[name] = np.where((w > 0)[:, None], value, np.float32(-np.inf))
        return out

    # ------------------------------------------------------------------ sparse candidate scoring
    def _sparse_ready(self) -> bool:
        """Whether :meth:`recommend` may score only candidates (see :meth:`_recommend_block`)."""
        if not getattr(self, "sparse_candidates", True) or self.normalisation != "max":
            return False
        if not set(self.signals_) <= {"behaviour", *_SHARED}:
            return False
        if any(w < 0 for w in (*self.weights_.values(), *self.cold_weights_.values())):
            return False
        cached = getattr(self, "_nonnegative", None)
        if cached is None or cached[0] is not self.history_ or cached[1] is not self.similarity_:
            ok = bool(
                self.history_.data.min(initial=0.0) >= 0 and self.similarity_.data.min(initial=0.0) >= 0
            )
            cached = (self.history_, self.similarity_, ok)
            self._nonnegative = cached
        return cached[2]

    def _recommend_rows(self) -> int:
        data = self._require_fitted()
        if not self._sparse_ready():
            return super()._recommend_rows()
        # Block size bounded by the expected non-zeros of history · similarity rather than by dense cells.
        per_row = (self.history_.nnz / max(data.n_customers, 1)) * (
            self.similarity_.nnz / max(data.n_items, 1)
        )
        per_row = min(max(per_row, 1.0), float(data.n_items))
        return int(max(1, min(self.config.similarity_chunk_size, _SPARSE_BLOCK_ENTRIES // per_row)))

    def _recommend_block(
        self,
        rows: np.ndarray,
        customer_ids: np.ndarray,
        k: int,
        allowed: np.ndarray,
        exclude: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense scoring, or — without visual and profile signals — the same ranking from candidates only.

        Then every signal but behaviour is a row shared by all warm (or all cold) customers, and behaviour is the
        sparse ``history · similarity`` (non-negative), so a customer's top-k lies within their behaviour non-zeros
        plus the shared row's top-(k + excluded) (:func:`.topk.topk_sparse_plus_rows`). Scores are computed with the
        same float32 operations as the dense block, so both paths return identical lists and reasons.
        """
        if not self._sparse_ready():
            return super()._recommend_block(rows, customer_ids, k, allowed, exclude)
        rows = np.asarray(rows, dtype=np.int64)
        n, n_items = len(rows), self._require_fitted().n_items
        weights = self.row_weights(self._is_cold(rows))
        shared, group = self._shared_rows(weights, n)
        if not allowed.all():
            shared = np.where(allowed[None, :], shared, np.float32(-np.inf))
        w_beh = weights.get("behaviour")
        if w_beh is not None and np.any(w_beh != 0):
            beh = sp.csr_matrix(self._history_rows(rows) @ self.similarity_, dtype=np.float32)
            peak = np.zeros(n, dtype=np.float32)
            has = np.diff(beh.indptr) > 0
            if has.any():
                peak[has] = np.maximum.reduceat(beh.data, beh.indptr[:-1][has])
            scale = max_scale(peak, w_beh)
        else:
            beh = sp.csr_matrix((n, n_items), dtype=np.float32)
            scale = np.zeros(n, dtype=np.float32)
        idx, vals, part = topk_sparse_plus_rows(
            beh, scale, shared, group, k, self._tiebreak_position(), exclude=exclude
        )
        scaled = {"behaviour": part} if w_beh is not None and np.any(w_beh != 0) else {}
        contrib = self._contributions(idx, weights, scaled)
        return idx, vals, self._explain(rows, idx, contrib, None)

    # ------------------------------------------------------------------ reasons
    def _reasons(
        self, rows: np.ndarray, customer_ids: np.ndarray, idx: np.ndarray, extras: Any
    ) -> np.ndarray:
        scaled, weights, cold_pref = extras
        safe = np.maximum(idx, 0)
        picked = {name: np.take_along_axis(block, safe, 1) for name, block in scaled.items()}
        return self._explain(
            np.asarray(rows, dtype=np.int64), idx, self._contributions(idx, weights, picked), cold_pref
        )

    def _explain(
        self,
        rows: np.ndarray,
        idx: np.ndarray,
        contrib: dict[str, np.ndarray],
        cold_pref: np.ndarray | None,
    ) -> np.ndarray:
        """Reason strings ``(n, k)``: the signal contributing most to each chosen item, phrased for the customer."""
        n, k = idx.shape
        out = np.full((n, k), self.default_reason, dtype=object)
        names = [s for s in SIGNALS if s in contrib]
        if not names or k == 0:
            return out
        safe = np.maximum(idx, 0)
        stacked = np.stack([contrib[s] for s in names])
        dominant = np.asarray(names, dtype=object)[np.argmax(stacked, axis=0)]
        dominant[~np.isfinite(stacked.max(axis=0))] = ""  # no signal with weight for this customer
        data = self._require_fitted()
        labels = self.labels_ if self.labels_ is not None else np.full(data.n_items, None, dtype=object)
        item_label = labels[safe]
        has_label = pd.notna(item_label)
        # an item the customer already engaged with (and did not buy): say so
        seen_code = self._seen_codes(rows, safe)
        seen = (seen_code > 0) & ((dominant == "visual") | (dominant == "behaviour"))
        if seen.any():
            verbs = np.array(
                ["", "you viewed this recently", "you added this to your cart", "you bought this before"],
                dtype=object,
            )
            out[seen] = verbs[np.clip(seen_code[seen], 0, 3)]
            dominant = np.where(seen, "seen", dominant)
        vis = dominant == "visual"
        beh = dominant == "behaviour"
        if vis.any() or beh.any():
            active = np.flatnonzero((vis | beh).any(axis=1))
            h = take_rows(self._history_top, rows[active])
        if vis.any():
            # the history item whose photo is closest to the recommended one
            best, _ = closest_history_items(h, self._embeddings(), np.where(vis[active], idx[active], -1))
            fill_linked(
                out,
                vis,
                active,
                best,
                lambda b, r: join_text(
                    "similar to ", data.item_ids[b], " you ", self._verbs(rows[active][r], b[:, None])[:, 0]
                ),
                "matches your style",
            )
        if beh.any():
            links, _ = strongest_links(
                h, self.similarity_, np.where(beh[active], idx[active], -1), similarity_t=self._similarity_t()
            )
            verb = "bought" if self._purchase_share >= 0.5 else "viewed"
            fill_linked(
                out,
                beh,
                active,
                links,
                lambda b, r: join_text(f"often {verb} with ", data.item_ids[b]),
                "customers like you chose this",
            )
        out[dominant == "trend"] = "trending now"
        pop = dominant == "popularity"
        if pop.any():
            out[pop & ~has_label] = "popular with customers"
            sel = pop & has_label
            out[sel] = join_text("popular in ", item_label[sel])
        prof = dominant == "profile"
        if prof.any() and self.profile_ is not None:
            pref = self.profile_.preferred_rows(rows, cold_pref)
            lab_idx = self.profile_.item_label[safe]
            stated = np.take_along_axis(
                np.concatenate([pref, np.zeros((n, 1), dtype=bool)], axis=1),
                np.where(lab_idx >= 0, lab_idx, pref.shape[1]),
                axis=1,
            )
            warm = np.broadcast_to((rows >= 0)[:, None], (n, k))
            for mask, prefix in (
                (prof & stated, "matches your preferred "),
                (prof & ~stated & warm & has_label, "you often choose "),
                (prof & ~stated & ~warm & has_label, "popular with customers like you in "),
            ):
                out[mask] = join_text(prefix, item_label[mask])
        return out

    def _seen_codes(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Strongest event code + 1 of each (row, item) in the history (0 = never seen; cold rows: 0)."""
        return lookup(self._strongest_events(), rows, items)

    def _verbs(self, rows: np.ndarray, hist_items: np.ndarray) -> np.ndarray:
        codes = lookup(self._strongest_events(), rows, np.maximum(hist_items, 0))
        lut = np.array(["viewed", "viewed", "added to cart", "bought"], dtype=object)
        return lut[np.clip(codes, 0, 3)]

    def _similarity_t(self) -> sp.csr_matrix:
        """``similarity_ᵀ`` as CSR (for explaining behaviour links)."""
        return self._similarity_t_matrix

    def _strongest_events(self) -> sp.csr_matrix:
        """Strongest event code + 1 of every (customer, item) in the history."""
        return self._strongest

    # ------------------------------------------------------------------ public API
    def recommend(
        self,
        customer_ids: Ids,
        k: int | None = None,
        filter_already_purchased: bool = True,
        filter_items: Ids | None = None,
        *,
        allowed_items: Ids | None = None,
        customers: Customers | pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Top-k per customer with a reason per row (see :meth:`Recommender.recommend`).

        ``customers``: optional attributes (``age_band``, ``gender``, ``preferred_labels``) for customers unknown at
        fit time, so that cold customers get a profile-based list rather than the global one.
        """
        token = _CALL_CUSTOMERS.set(customers_frame(customers))  # per call and per thread, never on self
        try:
            return super().recommend(
                customer_ids, k, filter_already_purchased, filter_items, allowed_items=allowed_items
            )
        finally:
            _CALL_CUSTOMERS.reset(token)

    def similar_items(self, item_ids: Ids, k: int = 10, filter_items: Ids | None = None) -> pd.DataFrame:
        """More like this: top-k by image-embedding cosine → ``item_id, similar_item_id, score, rank`` (self excluded).

        Without embeddings the behaviour (item–item co-occurrence) similarity is used instead.
        """
        k = check_k(k)
        data = self._require_fitted()
        ids = as_id_array(item_ids)
        q = data.item_rows(ids, strict=True)
        denied = data.item_mask(filter_items) if filter_items is not None else None
        if self.embeddings_ is not None and self._index is not None:
            return similar_items_frame(self._index, data.item_ids, ids, q, k, denied)
        if "behaviour" in self.signals_:
            block = np.asarray(self.similarity_[q].toarray(), dtype=np.float32)
            block[block <= 0] = -np.inf
            block[np.arange(len(q)), q] = -np.inf
            if denied is not None:
                block[:, denied] = -np.inf
            idx, vals = topk_rows(block, k, order=self._tiebreak_order)
        else:
            raise RecommendError("similar_items needs item embeddings or interactions; the model has neither")
        return neighbours_frame(data.item_ids, ids, idx, vals)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the fitted model to ``directory``: content-addressed ``.npy`` arrays, then ``recommender.json``.

        A process killed at any point leaves the previous model loadable (the manifest is replaced atomically and
        written last; payloads it no longer references are removed afterwards).
        """
        from fashion_reco.recommend.persistence import save_blend

        if self.data_ is None:
            raise NotFittedError("nothing to save: call fit() first")
        return save_blend(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> BlendRecommender:
        """Load a directory written by :meth:`save`; raises :class:`ArtefactError` naming a missing or bad file."""
        from fashion_reco.recommend.persistence import load_blend

        return load_blend(cls, Path(directory))
