"""Profile signal: a customer's affinity for each item label, from their attributes, stated preferences and history.

Model (a Dirichlet–multinomial per customer):

1. *Who is like you.* For every attribute the customer table has (``age_band``, ``gender``), the label
   distribution of the customers with each value is learned from behaviour: the mean of their own (event-weighted)
   label distributions, shrunk towards the global one. A customer's demographic prior multiplies these tables
   (naive Bayes: ``p0 ∝ global · Π_a table_a[value] / global``).
2. *What you told us.* Explicit ``preferred_labels`` ("dress;skirt") are mixed in:
   ``p0 ← (1 − β) p0 + β · uniform(preferred)``.
3. *What you did.* The customer's own recency-decayed, event-weighted label counts ``c`` update the prior:
   ``p = (s · p0 + c) / (s + Σ c)`` with prior strength ``s``. Cold customers get ``p0``; thin ones mostly ``p0``.

The item score is ``log p[label(item)]`` (or ``p``); unlabelled items get the mean over labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.columns import Columns
from fashion_reco.errors import RecommendError
from fashion_reco.recommend.history import TrainData

__all__ = ["DEFAULT_ATTRIBUTES", "ProfileModel", "parse_preferred"]

DEFAULT_ATTRIBUTES: tuple[str, ...] = ("age_band", "gender")
_FLOOR = 1e-4


def parse_preferred(value: object) -> list[str]:
    """``"a;b"`` / ``"a, b"`` / list → list of stripped labels (empty for missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [str(v) for v in value]
    else:
        text = str(value)
        parts = text.replace(",", ";").replace("|", ";").split(";")
    return [p.strip() for p in parts if p.strip()]


@dataclass
class ProfileModel:
    """Fitted label-affinity tables (see the module docstring)."""

    classes: np.ndarray
    item_label: np.ndarray
    global_dist: np.ndarray
    attr_values: dict[str, np.ndarray] = field(default_factory=dict)
    attr_tables: dict[str, np.ndarray] = field(default_factory=dict)
    customer_prior: np.ndarray | None = None
    customer_preferred: np.ndarray | None = None
    strength: float = 5.0
    preferred_mix: float = 0.5

    @property
    def n_labels(self) -> int:
        return int(self.classes.shape[0])

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        data: TrainData,
        item_labels: np.ndarray,
        customers: pd.DataFrame | None,
        history: sp.csr_matrix,
        *,
        attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
        strength: float = 5.0,
        preferred_mix: float = 0.5,
        smoothing: float = 5.0,
    ) -> ProfileModel:
        """Learn the tables from the customers' histories (``history``: customer × item weights)."""
        labels = pd.Series(item_labels, dtype=object)
        classes = np.array(sorted({str(v) for v in labels.dropna()}), dtype=object)
        lut = {c: i for i, c in enumerate(classes)}
        item_label = labels.map(lambda v: lut.get(str(v), -1) if v is not None else -1).to_numpy(np.int64)
        n_l = len(classes)
        model = cls(
            classes=classes,
            item_label=item_label,
            global_dist=np.full(n_l, 1.0 / max(n_l, 1)),
            strength=float(strength),
            preferred_mix=float(preferred_mix),
        )
        if n_l == 0:
            model.customer_prior = np.zeros((data.n_customers, 0))
            model.customer_preferred = np.zeros((data.n_customers, 0), dtype=bool)
            return model
        counts = model.label_counts(history)  # (C, L)
        totals = counts.sum(axis=1)
        active = totals > 0
        own = np.divide(counts, totals[:, None], out=np.zeros_like(counts), where=totals[:, None] > 0)
        uniform = np.full(n_l, 1.0 / n_l)
        n_active = int(active.sum())
        glob = (own[active].sum(axis=0) + smoothing * uniform) / (n_active + smoothing)
        model.global_dist = glob
        frame = None
        if customers is not None and len(customers):
            frame = customers.set_index(Columns.CUSTOMER_ID).reindex(data.customer_ids)
            for attr in attributes:
                if attr not in frame.columns:
                    continue
                col = frame[attr].astype(object).where(frame[attr].notna(), None)
                values = np.array(sorted({str(v) for v in col.dropna()}), dtype=object)
                if values.size == 0:
                    continue
                vpos = {v: i for i, v in enumerate(values)}
                code = col.map(lambda v, vpos=vpos: vpos.get(str(v), -1) if v is not None else -1).to_numpy(
                    np.int64
                )
                sel = active & (code >= 0)
                sums = np.zeros((len(values), n_l))
                np.add.at(sums, code[sel], own[sel])
                n_v = np.bincount(code[sel], minlength=len(values)).astype(np.float64)
                table = (sums + smoothing * glob) / (n_v + smoothing)[:, None]
                model.attr_values[attr] = values
                model.attr_tables[attr] = table
        prior, preferred = model.prior_for_frame(frame, n_rows=data.n_customers)
        model.customer_prior = prior
        model.customer_preferred = preferred
        return model

    # ------------------------------------------------------------------ inference
    def label_counts(self, history: sp.spmatrix) -> np.ndarray:
        """Customer × label sums of history weights (unlabelled items ignored), float64."""
        h = sp.csr_matrix(history)
        n_l = self.n_labels
        labelled = self.item_label >= 0
        onehot = sp.csr_matrix(
            (np.ones(int(labelled.sum())), (np.flatnonzero(labelled), self.item_label[labelled])),
            shape=(self.item_label.shape[0], n_l),
        )
        return np.asarray((h @ onehot).toarray(), dtype=np.float64)

    def prior_for_frame(
        self, frame: pd.DataFrame | None, *, n_rows: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Demographic + stated-preference prior ``(n, L)`` and the stated-preference mask ``(n, L)``."""
        if frame is None and n_rows is None:
            raise RecommendError("prior_for_frame needs a customer frame or n_rows")
        n = len(frame) if frame is not None else int(n_rows or 0)
        n_l = self.n_labels
        log_prior = np.tile(np.log(np.maximum(self.global_dist, _FLOOR)), (n, 1))
        preferred = np.zeros((n, n_l), dtype=bool)
        if frame is not None and n:
            for attr, values in self.attr_values.items():
                if attr not in frame.columns:
                    continue
                vpos = {v: i for i, v in enumerate(values)}
                col = frame[attr].astype(object).where(frame[attr].notna(), None)
                code = col.map(lambda v, vpos=vpos: vpos.get(str(v), -1) if v is not None else -1).to_numpy(
                    np.int64
                )
                has = code >= 0
                ratio = np.log(np.maximum(self.attr_tables[attr], _FLOOR)) - np.log(
                    np.maximum(self.global_dist, _FLOOR)
                )
                log_prior[has] += ratio[code[has]]
            if "preferred_labels" in frame.columns:
                lut = {c: i for i, c in enumerate(self.classes)}
                for r, value in enumerate(frame["preferred_labels"].to_numpy(dtype=object)):
                    for lab in parse_preferred(value):
                        j = lut.get(lab)
                        if j is not None:
                            preferred[r, j] = True
        prior = np.exp(log_prior - log_prior.max(axis=1, keepdims=True)) if n_l else log_prior
        prior = prior / np.maximum(prior.sum(axis=1, keepdims=True), 1e-300) if n_l else prior
        n_pref = preferred.sum(axis=1, keepdims=True)
        if n_l and n_pref.any():
            stated = np.divide(preferred, n_pref, out=np.zeros((n, n_l)), where=n_pref > 0)
            mix = np.where(n_pref > 0, self.preferred_mix, 0.0)
            prior = (1 - mix) * prior + mix * stated
        return prior, preferred

    def affinity(
        self,
        rows: np.ndarray,
        history_rows: sp.spmatrix | None,
        *,
        cold_prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """Posterior label distribution ``(n, L)`` for customer rows (``-1`` = cold: ``cold_prior`` or global)."""
        n = len(rows)
        prior = np.tile(self.global_dist, (n, 1))
        warm = rows >= 0
        if self.customer_prior is not None and warm.any():
            prior[warm] = self.customer_prior[rows[warm]]
        if cold_prior is not None:
            prior[~warm] = cold_prior[~warm]
        if history_rows is None or self.n_labels == 0:
            return prior
        counts = self.label_counts(history_rows)
        post = self.strength * prior + counts
        return post / np.maximum(post.sum(axis=1, keepdims=True), 1e-300)

    def item_scores(self, affinity: np.ndarray, *, log: bool = True) -> np.ndarray:
        """``log p[label(item)]`` (or ``p`` when ``log=False``) per customer and item, float32 ``(n, n_items)``;
        unlabelled items get the mean over labels."""
        n = affinity.shape[0]
        n_items = self.item_label.shape[0]
        if self.n_labels == 0:
            return np.zeros((n, n_items), dtype=np.float32)
        p = np.maximum(affinity, _FLOOR)
        logp = (np.log(p) if log else p).astype(np.float32)
        ext = np.concatenate([logp, logp.mean(axis=1, keepdims=True)], axis=1)
        lab = np.where(self.item_label >= 0, self.item_label, self.n_labels)
        return ext[:, lab]

    def preferred_rows(self, rows: np.ndarray, cold_preferred: np.ndarray | None = None) -> np.ndarray:
        """Stated-preference mask ``(n, L)`` for customer rows."""
        out = np.zeros((len(rows), self.n_labels), dtype=bool)
        warm = rows >= 0
        if self.customer_preferred is not None and warm.any():
            out[warm] = self.customer_preferred[rows[warm]]
        if cold_preferred is not None:
            out[~warm] = cold_preferred[~warm]
        return out
