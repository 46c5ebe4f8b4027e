"""Shared pieces of the candidate stage: the source interface, its inputs and the union of all sources.

The ranker's first stage follows the two-stage recipe of the H&M Personalized Fashion Recommendations winning
solutions (cheap, high-recall candidate sources, then a learned ranker) and RecTools' ``rectools.models.ranking``
(``CandidateGenerator`` → ``CandidateRankingModel``). Every source is a frozen dataclass built by ``fit`` from the
events strictly before a cut; ``generate`` only reads that state, so one fitted source may serve several threads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from fashion_reco.recommend.base import take_rows
from fashion_reco.recommend.eventlog import EventLog
from fashion_reco.recommend.history import decay

__all__ = [
    "EVENT_WEIGHTS",
    "CandidateEnv",
    "CandidateSet",
    "CandidateSource",
    "Candidates",
    "csr_candidates",
    "history_csr",
    "union",
]

#: weight of one view / add-to-cart / purchase in a customer's history (event codes 0, 1, 2)
EVENT_WEIGHTS = np.array([1.0, 3.0, 5.0], dtype=np.float64)


@dataclass(frozen=True)
class Candidates:
    """Candidate entries of one source for a block of customers: block position, item column, source score."""

    row: np.ndarray
    item: np.ndarray
    score: np.ndarray
    #: 1-based rank within the row when the source already knows it (entries emitted best first), else None
    rank: np.ndarray | None = None

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))

    def __len__(self) -> int:
        return int(self.row.shape[0])


@dataclass(frozen=True)
class CandidateEnv:
    """What sources may use besides events: catalogue arrays and customer segments, fixed for the whole fit.

    Attributes:
        item_label: label code per item (``-1``: unlabelled); ``n_labels`` codes in ``label_names`` order.
        customer_segment: segment code per customer row (``-1``: unknown), e.g. the age band.
        embeddings: L2-normalised item embeddings ``(n_items, d)`` or ``None``.
        visual_neighbours: item × item CSR of the strongest cosine neighbours (no self links), or ``None``.
        item_price: catalogue price per item (float64, NaN unknown) or ``None`` (the features' price family).
    """

    n_customers: int
    n_items: int
    item_label: np.ndarray
    n_labels: int
    customer_segment: np.ndarray
    n_segments: int
    embeddings: np.ndarray | None = None
    visual_neighbours: sp.csr_matrix | None = None
    item_price: np.ndarray | None = None


class CandidateSource(ABC):
    """A fitted candidate source: ``generate(rows)`` → at most ``n`` distinct items per customer row (``-1`` = cold).

    Contract: an item appears at most once per row in one source's output (the union relies on it).
    """

    #: short name: feature prefix and key in the per-source recall table
    name: ClassVar[str] = "source"
    #: top candidates kept per customer
    n: int

    @abstractmethod
    def generate(self, rows: np.ndarray) -> Candidates:
        """Candidates for customer rows (block positions in ``Candidates.row``)."""


def history_csr(
    log: EventLog, cut_ns: int, half_life_days: float | None, *, event_weights: np.ndarray = EVENT_WEIGHTS
) -> sp.csr_matrix:
    """Customer × item Σ event weight × recency decay of the events in ``log`` (all before ``cut_ns``), float32."""
    w = event_weights[log.event] * decay(log.age_days(cut_ns), half_life_days)
    m = sp.csr_matrix(
        (w.astype(np.float32), (log.cust, log.item)), shape=(log.n_customers, log.n_items), dtype=np.float32
    )
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def csr_candidates(block: sp.csr_matrix, n: int) -> Candidates:
    """The ``n`` largest entries per row of a (block rows × items) CSR as candidates (ties: lower column)."""
    from fashion_reco.recommend.topk import csr_topk

    top = csr_topk(sp.csr_matrix(block, dtype=np.float32), n)
    counts = np.diff(top.indptr)
    return Candidates(
        row=np.repeat(np.arange(top.shape[0], dtype=np.int64), counts),
        item=top.indices.astype(np.int64),
        score=top.data.astype(np.float32),
    )


def rows_of(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of a customer × item CSR for block rows (``-1`` → empty row)."""
    return take_rows(matrix, rows)


@dataclass(frozen=True)
class CandidateSet:
    """The union of all sources' candidates: one entry per (block row, item) with each source's score and rank.

    ``score`` and ``rank`` are ``(n_pairs, n_sources)`` float32 with NaN where a source did not propose the item;
    ``rank`` is 1-based within the source's list for that customer. Pairs are sorted by (row, item).
    """

    row: np.ndarray
    item: np.ndarray
    score: np.ndarray
    rank: np.ndarray
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.row.shape[0])


def _ranks(c: Candidates) -> np.ndarray:
    """1-based rank of each entry within its row by descending score (ties: earlier entry first)."""
    if len(c) == 0:
        return np.empty(0, np.float32)
    from fashion_reco.recommend.topk import _row_value_column_order

    n_rows = int(c.row.max()) + 1
    # one uint64 sort by (row, -score, entry index) instead of a two-key lexsort
    order = _row_value_column_order(c.row, c.score.astype(np.float32), np.arange(len(c)), n_rows, len(c))
    rank = np.empty(len(c), dtype=np.float32)
    sorted_rows = c.row[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(c)]))
    rank[order] = (np.arange(len(c)) - run_start + 1).astype(np.float32)
    return rank


def union(parts: Sequence[tuple[str, Candidates]], n_items: int) -> CandidateSet:
    """Merge the sources' candidates (each distinct per row, see :class:`CandidateSource`) into a :class:`CandidateSet`."""
    names = tuple(name for name, _ in parts)
    keys_all, src_all, score_all, rank_all = [], [], [], []
    for s, (_, c) in enumerate(parts):
        if len(c) == 0:
            continue
        keys_all.append(c.row.astype(np.int64) * n_items + c.item)
        src_all.append(np.full(len(c), s, dtype=np.int64))
        score_all.append(c.score.astype(np.float32))
        rank_all.append(_ranks(c) if c.rank is None else c.rank.astype(np.float32))
    n_src = len(names)
    if not keys_all:
        e = np.empty(0, np.int64)
        return CandidateSet(e, e, np.empty((0, n_src), np.float32), np.empty((0, n_src), np.float32), names)
    keys = np.concatenate(keys_all)
    # distinct pairs, sorted, through scipy's COO → CSR (a counting sort by row): no hashing, no full sort
    n_rows = int(keys.max() // n_items) + 1
    presence = sp.csr_matrix(
        (np.ones(keys.size, dtype=np.int8), ((keys // n_items), (keys % n_items))), shape=(n_rows, n_items)
    )
    presence.sum_duplicates()
    uniq = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(presence.indptr)) * n_items + presence.indices
    inv = np.searchsorted(uniq, keys)
    score = np.full((uniq.size, n_src), np.nan, dtype=np.float32)
    rank = np.full((uniq.size, n_src), np.nan, dtype=np.float32)
    src = np.concatenate(src_all)
    score[inv, src] = np.concatenate(score_all)
    rank[inv, src] = np.concatenate(rank_all)
    return CandidateSet(
        row=(uniq // n_items).astype(np.int64),
        item=(uniq % n_items).astype(np.int64),
        score=score,
        rank=rank,
        sources=names,
    )
