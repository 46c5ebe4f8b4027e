"""The ranker's first stage: candidate sources fitted at a cut, their union, and the recall each one reaches.

Sources (one small frozen class each): :class:`OwnHistorySource`, :class:`CoOccurrenceSource`,
:class:`VisualSource`, :class:`CollaborativeSource`, :class:`PopularSource`, :class:`TrendingSource`,
:class:`SegmentPopularSource`, :class:`ProfileSource`. :func:`fit_sources` builds the configured ones from the events
strictly before a cut; :class:`CandidateGenerator` holds them (frozen) and returns the :class:`CandidateSet` union.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.recommend.candidates.base import (
    CandidateEnv,
    Candidates,
    CandidateSet,
    CandidateSource,
    union,
)
from fashion_reco.recommend.candidates.collaborative import CollaborativeSource, implicit_available
from fashion_reco.recommend.candidates.cooccurrence import CoOccurrenceSource
from fashion_reco.recommend.candidates.history import OwnHistorySource
from fashion_reco.recommend.candidates.popularity import PopularSource, SegmentPopularSource, TrendingSource
from fashion_reco.recommend.candidates.profile import ProfileSource
from fashion_reco.recommend.candidates.visual import VisualSource, visual_neighbours
from fashion_reco.recommend.eventlog import EventLog

__all__ = [
    "SOURCE_ORDER",
    "CandidateEnv",
    "CandidateGenerator",
    "CandidateSet",
    "CandidateSource",
    "Candidates",
    "CoOccurrenceSource",
    "CollaborativeSource",
    "OwnHistorySource",
    "PopularSource",
    "ProfileSource",
    "SegmentPopularSource",
    "TrendingSource",
    "VisualSource",
    "build_env",
    "candidate_recall",
    "fit_sources",
]

#: every source in a fixed order (feature columns follow it)
SOURCE_ORDER: tuple[str, ...] = (
    "history",
    "cooccurrence",
    "visual",
    "collaborative",
    "popular",
    "trending",
    "segment_popular",
    "profile",
)


def build_env(
    n_customers: int,
    item_labels: np.ndarray | None,
    customer_segments: np.ndarray | None,
    embeddings: np.ndarray | None,
    *,
    visual_k: int = 0,
    blend_config: BlendConfig | None = None,
    item_prices: np.ndarray | None = None,
) -> tuple[CandidateEnv, np.ndarray, np.ndarray]:
    """The sources' environment plus the label and segment names (codes index them).

    ``item_labels`` (per item, None = unlabelled) and ``customer_segments`` (per customer row, None = unknown) are
    coded here once; the visual neighbour table is built when ``embeddings`` are given and ``visual_k > 0``.
    """
    n_items = 0 if embeddings is None else embeddings.shape[0]
    if item_labels is not None:
        n_items = len(item_labels)
        lab = pd.Series(item_labels, dtype=object)
        codes, names = pd.factorize(lab.where(lab.notna(), None), sort=True)
    else:
        codes, names = np.empty(0, np.int64), pd.Index([])
    seg_codes, seg_names = (
        pd.factorize(pd.Series(customer_segments, dtype=object), sort=True)
        if customer_segments is not None
        else (np.full(n_customers, -1), pd.Index([]))
    )
    neighbours = (
        visual_neighbours(embeddings, visual_k, blend_config)
        if embeddings is not None and visual_k > 0
        else None
    )
    env = CandidateEnv(
        n_customers=int(n_customers),
        n_items=int(n_items),
        item_label=np.asarray(codes, dtype=np.int64) if item_labels is not None else np.full(n_items, -1),
        n_labels=len(names),
        customer_segment=np.asarray(seg_codes, dtype=np.int64),
        n_segments=len(seg_names),
        embeddings=embeddings,
        visual_neighbours=neighbours,
        item_price=None if item_prices is None else np.asarray(item_prices, dtype=np.float64),
    )
    return env, np.asarray(names, dtype=object), np.asarray(seg_names, dtype=object)


def _available(name: str, env: CandidateEnv) -> bool:
    if name == "visual":
        return env.visual_neighbours is not None
    if name == "collaborative":
        return implicit_available()
    if name == "segment_popular":
        return env.n_segments > 0
    if name == "profile":
        return env.n_labels > 0
    return True


def fit_sources(
    log: EventLog, cut_ns: int, env: CandidateEnv, config: RankerConfig
) -> tuple[CandidateSource, ...]:
    """Fit every configured and available source on ``log.before(cut_ns)``, in :data:`SOURCE_ORDER`."""
    past = log.before(cut_ns)
    hl = config.history_half_life_days
    builders: dict[str, Callable[[int], CandidateSource]] = {
        "history": lambda n: OwnHistorySource.fit(past, cut_ns, env, n, half_life_days=hl),
        "cooccurrence": lambda n: CoOccurrenceSource.fit(
            past, cut_ns, env, n, window_days=config.cooccurrence_window_days, half_life_days=hl
        ),
        "visual": lambda n: VisualSource.fit(past, cut_ns, env, n, half_life_days=hl),
        "collaborative": lambda n: CollaborativeSource.fit(
            past,
            cut_ns,
            env,
            n,
            algorithm=config.collaborative_algorithm,
            seed=config.seed,
            num_threads=config.num_threads,
        ),
        "popular": lambda n: PopularSource.fit(
            past, cut_ns, env, n, window_days=config.popularity_window_days
        ),
        "trending": lambda n: TrendingSource.fit(past, cut_ns, env, n),
        "segment_popular": lambda n: SegmentPopularSource.fit(
            past, cut_ns, env, n, window_days=config.popularity_window_days
        ),
        "profile": lambda n: ProfileSource.fit(past, cut_ns, env, n),
    }
    out = []
    for name in SOURCE_ORDER:
        n = int(config.candidates.get(name, 0))
        if n > 0 and _available(name, env):
            out.append(builders[name](n))
    return tuple(out)


@dataclass(frozen=True)
class CandidateGenerator:
    """Fitted sources at one cut; :meth:`generate` returns their union for a block of customer rows."""

    sources: tuple[CandidateSource, ...]
    n_items: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources)

    def generate_each(self, rows: np.ndarray) -> list[tuple[str, Candidates]]:
        """Every source's own candidates for ``rows``."""
        return [(s.name, s.generate(rows)) for s in self.sources]

    def generate(self, rows: np.ndarray) -> CandidateSet:
        """The union of all sources' candidates for ``rows`` (customer rows, ``-1`` = cold)."""
        return union(self.generate_each(rows), self.n_items)


def candidate_recall(
    generator: CandidateGenerator,
    rows: np.ndarray,
    relevant: tuple[np.ndarray, np.ndarray],
    *,
    parts: list[tuple[str, Candidates]] | None = None,
    merged: CandidateSet | None = None,
) -> pd.DataFrame:
    """Share of the relevant (block position, item) pairs found by each source and by the union.

    ``relevant`` is a pair of arrays ``(positions into rows, item columns)``; ``parts`` / ``merged`` may pass the
    sources' candidates and their union when already generated. Returns ``source, recall, candidates_per_customer``.
    """
    pos, items = relevant
    n_items = generator.n_items
    target = np.unique(np.asarray(pos, np.int64) * n_items + np.asarray(items, np.int64))
    records: list[dict[str, Any]] = []
    parts = generator.generate_each(rows) if parts is None else parts
    for name, c in [*parts, ("union", None)]:
        if c is None:
            u = union(parts, n_items) if merged is None else merged
            keys = u.row * n_items + u.item
            n_cand = len(u)
        else:
            keys = c.row * n_items + c.item
            n_cand = len(c)
        found = np.isin(target, keys).sum() if target.size else 0
        records.append(
            {
                "source": name,
                "recall": float(found / target.size) if target.size else float("nan"),
                "candidates_per_customer": n_cand / max(len(rows), 1),
            }
        )
    return pd.DataFrame(records)
