"""Own history: the items a customer viewed, carted or bought, strongest and most recent first.

Repurchase is the single strongest signal in fashion purchase logs (basics, other colours and sizes: the H&M
competition's winning solutions all start from "items the customer bought recently"), so this source is always on.
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
from fashion_reco.recommend.eventlog import EventLog
from fashion_reco.recommend.topk import csr_topk

__all__ = ["OwnHistorySource"]


@dataclass(frozen=True)
class OwnHistorySource(CandidateSource):
    """Top-``n`` history items per customer by Σ event weight × recency decay (``half_life_days``)."""

    name: ClassVar[str] = "history"
    n: int
    history: sp.csr_matrix

    @classmethod
    def fit(
        cls, log: EventLog, cut_ns: int, env: CandidateEnv, n: int, *, half_life_days: float = 14.0
    ) -> OwnHistorySource:
        """Keep each customer's ``n`` strongest history items (events of ``log``, all before ``cut_ns``)."""
        return cls(n=int(n), history=csr_topk(history_csr(log, cut_ns, half_life_days), int(n)))

    def generate(self, rows: np.ndarray) -> Candidates:
        return csr_candidates(rows_of(self.history, rows), self.n)
