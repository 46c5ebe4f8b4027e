"""Visual neighbours: items whose photos look like the customer's recent items (image-embedding cosine).

The item × item neighbour table is built once per fit with the library's exact / faiss index
(:func:`visual_neighbours`); the source only combines it with each customer's recent items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from fashion_reco.config import BlendConfig
from fashion_reco.recommend.candidates.base import (
    CandidateEnv,
    Candidates,
    CandidateSource,
    csr_candidates,
    history_csr,
    rows_of,
)
from fashion_reco.recommend.eventlog import EventLog
from fashion_reco.recommend.similarity import build_index
from fashion_reco.recommend.topk import csr_topk

__all__ = ["VisualSource", "visual_neighbours"]


def visual_neighbours(embeddings: np.ndarray, k: int, config: BlendConfig | None = None) -> sp.csr_matrix:
    """Item × item CSR of every item's ``k`` most similar other items by cosine (exact or faiss index)."""
    n = embeddings.shape[0]
    k = int(min(k, max(n - 1, 0)))
    if k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    index = build_index(embeddings, config or BlendConfig())
    idx, sim = index.search(embeddings, k + 1)
    idx, sim = np.asarray(idx, dtype=np.int64), np.asarray(sim, dtype=np.float32)
    rows = np.repeat(np.arange(n), idx.shape[1])
    keep = (idx.ravel() >= 0) & (idx.ravel() != rows)
    m = sp.csr_matrix(
        (np.maximum(sim.ravel()[keep], 0.0), (rows[keep], idx.ravel()[keep])), shape=(n, n), dtype=np.float32
    )
    m.sum_duplicates()
    return csr_topk(m, k)


@dataclass(frozen=True)
class VisualSource(CandidateSource):
    """Top-``n`` of ``recent · visual neighbours`` per customer (needs embeddings)."""

    name: ClassVar[str] = "visual"
    n: int
    recent: sp.csr_matrix
    neighbours: sp.csr_matrix

    @classmethod
    def fit(
        cls,
        log: EventLog,
        cut_ns: int,
        env: CandidateEnv,
        n: int,
        *,
        recent_items: int = 5,
        half_life_days: float = 14.0,
    ) -> VisualSource:
        """Each customer's ``recent_items`` strongest items (recency-decayed), normalised to sum 1 per customer."""
        if env.visual_neighbours is None:
            raise ValueError("the visual source needs item embeddings")
        recent = csr_topk(history_csr(log, cut_ns, half_life_days), int(recent_items))
        sums = np.asarray(recent.sum(axis=1)).ravel()
        inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0).astype(np.float32)
        recent = sp.csr_matrix(sp.diags(inv) @ recent, dtype=np.float32)
        return cls(n=int(n), recent=recent, neighbours=env.visual_neighbours)

    def generate(self, rows: np.ndarray) -> Candidates:
        return csr_candidates(sp.csr_matrix(rows_of(self.recent, rows) @ self.neighbours), self.n)
