"""Co-occurrence: items bought or viewed together with the customer's recent items by the same customers.

Item–item links are the P3α random-walk transition probabilities (Cooper et al. 2014) of the customer × item
matrix restricted to the last ``window_days`` before the cut (recent co-occurrence tracks fashion's short life
cycles), pruned to ``n_neighbours`` per item; a customer's candidates are ``recent history · links``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from fashion_reco.recommend.candidates.base import (
    CandidateEnv,
    Candidates,
    CandidateSource,
    csr_candidates,
    history_csr,
    rows_of,
)
from fashion_reco.recommend.cooccurrence import item_item_random_walk
from fashion_reco.recommend.eventlog import DAY_NS, EventLog
from fashion_reco.recommend.topk import csr_topk

__all__ = ["CoOccurrenceSource"]


@dataclass(frozen=True)
class CoOccurrenceSource(CandidateSource):
    """Top-``n`` of ``recent · links`` per customer (module docstring)."""

    name: ClassVar[str] = "cooccurrence"
    n: int
    recent: sp.csr_matrix
    links: sp.csr_matrix

    @classmethod
    def fit(
        cls,
        log: EventLog,
        cut_ns: int,
        env: CandidateEnv,
        n: int,
        *,
        window_days: float = 90.0,
        recent_items: int = 10,
        n_neighbours: int = 50,
        half_life_days: float = 14.0,
    ) -> CoOccurrenceSource:
        """Links from the events of the last ``window_days``; each customer's ``recent_items`` strongest items."""
        window = log.between(cut_ns - int(window_days * DAY_NS), cut_ns)
        links = item_item_random_walk(history_csr(window, cut_ns, None), n_neighbours=n_neighbours)
        recent = csr_topk(history_csr(log, cut_ns, half_life_days), int(recent_items))
        return cls(n=int(n), recent=recent, links=links)

    def generate(self, rows: np.ndarray) -> Candidates:
        return csr_candidates(sp.csr_matrix(rows_of(self.recent, rows) @ self.links), self.n)
