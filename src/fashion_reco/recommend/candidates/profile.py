"""Label / profile affinity: the bestsellers of the labels a customer (or their segment) favours.

For customers with little or no history this is the personal part of the list: the customer's label distribution
is their own event share per label, shrunk towards their segment's distribution (``strength`` pseudo-events; the
global one when the segment is unknown) — the Dirichlet smoothing of :mod:`fashion_reco.recommend.profile`.
Candidates are the top ``per_label`` bestsellers of each label, scored ``p(label) × popularity share``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from fashion_reco.recommend.candidates.base import CandidateEnv, Candidates, CandidateSource, rows_of
from fashion_reco.recommend.candidates.popularity import window_popularity
from fashion_reco.recommend.eventlog import EventLog

__all__ = ["ProfileSource", "customer_label_counts"]


def customer_label_counts(log: EventLog, env: CandidateEnv) -> sp.csr_matrix:
    """Customer × label event counts (unlabelled items ignored), float32 CSR."""
    lab = env.item_label[log.item] if log.n_events else np.empty(0, np.int64)
    sel = lab >= 0
    m = sp.csr_matrix(
        (np.ones(int(sel.sum()), np.float32), (log.cust[sel], lab[sel])),
        shape=(log.n_customers, max(env.n_labels, 1)),
        dtype=np.float32,
    )
    m.sum_duplicates()
    return m


@dataclass(frozen=True)
class ProfileSource(CandidateSource):
    """Top-``n`` of ``p(label | customer) × popularity share`` over each label's bestsellers (module docstring)."""

    name: ClassVar[str] = "profile"
    n: int
    label_counts: sp.csr_matrix
    segment_dist: np.ndarray
    global_dist: np.ndarray
    customer_segment: np.ndarray
    label_items: np.ndarray
    label_share: np.ndarray
    strength: float

    @classmethod
    def fit(
        cls,
        log: EventLog,
        cut_ns: int,
        env: CandidateEnv,
        n: int,
        *,
        window_days: float = 28.0,
        strength: float = 5.0,
    ) -> ProfileSource:
        n_l = env.n_labels
        counts = customer_label_counts(log, env)
        dense_tot = np.asarray(counts.sum(axis=0)).ravel()[:n_l].astype(np.float64)
        glob = (dense_tot + 1.0) / (dense_tot.sum() + max(n_l, 1))
        seg_dist = np.tile(glob, (env.n_segments, 1))
        if env.n_segments and counts.nnz:
            seg_of_row = env.customer_segment
            agg = sp.csr_matrix(
                (np.ones(log.n_customers), (np.maximum(seg_of_row, 0), np.arange(log.n_customers))),
                shape=(env.n_segments, log.n_customers),
            )
            agg = agg.multiply((seg_of_row >= 0)[None, :]).tocsr()
            seg_counts = np.asarray((agg @ counts).toarray())[:, :n_l]
            seg_dist = (seg_counts + strength * glob) / (seg_counts.sum(axis=1, keepdims=True) + strength)
        pop = window_popularity(log, cut_ns, window_days)
        per = int(n)
        items = np.full((n_l, per), -1, dtype=np.int64)
        share = np.zeros((n_l, per), dtype=np.float32)
        order = np.lexsort((np.arange(log.n_items), -pop, env.item_label))
        lab_sorted = env.item_label[order]
        for lab in range(n_l):  # one slice per label (a few dozen), not per customer
            members = order[lab_sorted == lab][:per]
            members = members[pop[members] > 0]
            total = pop[env.item_label == lab].sum()
            items[lab, : members.size] = members
            share[lab, : members.size] = pop[members] / max(total, 1.0)
        return cls(
            n=per,
            label_counts=counts,
            segment_dist=seg_dist,
            global_dist=glob,
            customer_segment=env.customer_segment,
            label_items=items,
            label_share=share,
            strength=float(strength),
        )

    def affinity(self, rows: np.ndarray) -> np.ndarray:
        """``p(label | customer)`` for customer rows (``-1``: global), float64 ``(len(rows), n_labels)``."""
        rows = np.asarray(rows, dtype=np.int64)
        n_l = self.global_dist.shape[0]
        prior = np.tile(self.global_dist, (rows.size, 1))
        seg = np.where(rows >= 0, self.customer_segment[np.maximum(rows, 0)], -1) if rows.size else rows
        has = seg >= 0
        if has.any() and self.segment_dist.size:
            prior[has] = self.segment_dist[seg[has]]
        counts = np.asarray(rows_of(self.label_counts, rows).toarray(), dtype=np.float64)[:, :n_l]
        post = counts + self.strength * prior
        return post / np.maximum(post.sum(axis=1, keepdims=True), 1e-12)

    def generate(self, rows: np.ndarray) -> Candidates:
        n_l = self.global_dist.shape[0]
        if n_l == 0 or len(rows) == 0:
            return Candidates.empty()
        aff = self.affinity(rows)
        flat_items = self.label_items.ravel()
        valid = flat_items >= 0
        items = flat_items[valid]
        labels = np.repeat(np.arange(n_l), self.label_items.shape[1])[valid]
        scores = (aff[:, labels] * self.label_share.ravel()[valid][None, :]).astype(np.float32)
        k = int(min(self.n, items.size))
        if k == 0:
            return Candidates.empty()
        from fashion_reco.recommend.topk import topk_rows

        idx, vals = topk_rows(scores, k, check_nan=False)
        return Candidates(
            row=np.repeat(np.arange(len(rows), dtype=np.int64), k),
            item=items[idx.ravel()],
            score=vals.ravel().astype(np.float32),
            rank=np.tile(np.arange(1, k + 1, dtype=np.float32), len(rows)),
        )
