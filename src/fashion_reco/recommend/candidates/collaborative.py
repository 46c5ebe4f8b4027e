"""Collaborative candidates: implicit's ALS (Hu, Koren & Volinsky 2008) or BPR (Rendle et al. 2009) factors.

Needs the optional ``implicit`` package (extra ``cf``). Fitted on log-scaled, event-weighted counts of the events
before the cut; customers without history there get no collaborative candidates. Scores are computed per block of
customers (block × items, never customers × items) and only the top ``n`` are kept.

The served model's source precomputes every customer's top ``n`` once in fit (:meth:`CollaborativeSource.with_table`,
a ``customers × n`` table — at most :data:`TABLE_MAX_ENTRIES` entries, else scores stay per call), so serving reads
rows instead of multiplying and selecting over the whole catalogue again on every call.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import numpy as np

from fashion_reco.errors import RecommendError
from fashion_reco.recommend.candidates.base import CandidateEnv, Candidates, CandidateSource, history_csr
from fashion_reco.recommend.eventlog import EventLog
from fashion_reco.recommend.topk import topk_rows

__all__ = ["TABLE_MAX_ENTRIES", "CollaborativeSource", "implicit_available"]

_BLOCK_ELEMENTS = 1 << 23
#: largest precomputed candidate table (customers × n entries; 8 bytes each: 256 MiB)
TABLE_MAX_ENTRIES = 1 << 25


def implicit_available() -> bool:
    """Whether the optional ``implicit`` package imports."""
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class CollaborativeSource(CandidateSource):
    """Top-``n`` items by ``user_factors · item_factors`` for customers with history (module docstring)."""

    name: ClassVar[str] = "collaborative"
    n: int
    user_factors: np.ndarray
    item_factors: np.ndarray
    has_history: np.ndarray
    #: every customer's top-n items best first (``-1``: none) and their scores, built by :meth:`with_table`
    table_items: np.ndarray | None = None
    table_scores: np.ndarray | None = None

    def with_table(self) -> CollaborativeSource:
        """This source with every customer's candidates precomputed (unchanged when the table would exceed
        :data:`TABLE_MAX_ENTRIES` entries): what the served model reads instead of scoring the catalogue per call."""
        n_cust = self.user_factors.shape[0]
        k = int(min(self.n, self.item_factors.shape[0]))
        if n_cust * k > TABLE_MAX_ENTRIES or self.table_items is not None:
            return self
        items = np.full((n_cust, k), -1, dtype=np.int32)
        scores = np.full((n_cust, k), -np.inf, dtype=np.float32)
        c = self._compute(np.arange(n_cust, dtype=np.int64))
        if len(c) and c.rank is not None:  # _compute always ranks its entries
            col = c.rank.astype(np.int64) - 1
            items[c.row, col] = c.item
            scores[c.row, col] = c.score
        return replace(self, table_items=items, table_scores=scores)

    @classmethod
    def fit(
        cls,
        log: EventLog,
        cut_ns: int,
        env: CandidateEnv,
        n: int,
        *,
        algorithm: Literal["als", "bpr"] = "als",
        factors: int = 32,
        iterations: int = 15,
        regularization: float = 0.05,
        seed: int = 0,
        num_threads: int = 0,
    ) -> CollaborativeSource:
        """Fit implicit's model on the events before the cut (``seed`` makes it reproducible)."""
        if not implicit_available():
            raise RecommendError("the collaborative source needs implicit: pip install 'fashion-reco[cf]'")
        from threadpoolctl import threadpool_limits

        ui = history_csr(log, cut_ns, None)
        ui.data = np.log1p(ui.data).astype(np.float32)
        has = np.diff(ui.indptr) > 0
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if algorithm == "als":
                from implicit.cpu.als import AlternatingLeastSquares

                model = AlternatingLeastSquares(
                    factors=factors,
                    regularization=regularization,
                    iterations=iterations,
                    random_state=seed,
                    num_threads=num_threads,
                )
            elif algorithm == "bpr":
                from implicit.cpu.bpr import BayesianPersonalizedRanking

                model = BayesianPersonalizedRanking(
                    factors=factors,
                    regularization=regularization,
                    iterations=iterations * 4,
                    random_state=seed,
                    num_threads=num_threads,
                )
            else:
                raise RecommendError(
                    f"unknown collaborative algorithm {algorithm!r} (expected 'als' or 'bpr')"
                )
            if ui.nnz:
                model.fit(ui, show_progress=False)
                users = np.asarray(model.user_factors, dtype=np.float32)
                items = np.asarray(model.item_factors, dtype=np.float32)
            else:
                users = np.zeros((ui.shape[0], 1), np.float32)
                items = np.zeros((ui.shape[1], 1), np.float32)
        return cls(n=int(n), user_factors=users, item_factors=items, has_history=has)

    def generate(self, rows: np.ndarray) -> Candidates:
        if self.table_items is not None and self.table_scores is not None:
            rows = np.asarray(rows, dtype=np.int64)
            pos = np.flatnonzero(rows >= 0)
            items = self.table_items[rows[pos]]
            ok = items >= 0
            k = items.shape[1]
            return Candidates(
                np.repeat(pos, k)[ok.ravel()],
                items[ok].astype(np.int64),
                self.table_scores[rows[pos]][ok],
                rank=np.broadcast_to(np.arange(1, k + 1, dtype=np.float32), items.shape)[ok],
            )
        return self._compute(rows)

    def _compute(self, rows: np.ndarray) -> Candidates:
        """Top-n by factor products, per block of customers (block × items, never customers × items)."""
        rows = np.asarray(rows, dtype=np.int64)
        pos = np.flatnonzero(rows >= 0)
        pos = pos[self.has_history[rows[pos]]]
        n_items = self.item_factors.shape[0]
        k = int(min(self.n, n_items))
        if pos.size == 0 or k == 0:
            return Candidates.empty()
        step = max(1, _BLOCK_ELEMENTS // max(n_items, 1))
        out_r, out_i, out_s = [], [], []
        for start in range(0, pos.size, step):
            p = pos[start : start + step]
            scores = self.user_factors[rows[p]] @ self.item_factors.T
            idx, vals = topk_rows(np.ascontiguousarray(scores, dtype=np.float32), k, check_nan=False)
            out_r.append(np.repeat(p, k))
            out_i.append(idx.ravel())
            out_s.append(vals.ravel())
        rows_out = np.concatenate(out_r).astype(np.int64)
        return Candidates(
            rows_out,
            np.concatenate(out_i).astype(np.int64),
            np.concatenate(out_s).astype(np.float32),
            rank=np.tile(np.arange(1, k + 1, dtype=np.float32), rows_out.size // k),
        )
