"""Features of every (customer, candidate) pair at a cut, from the events strictly before it — vectorised.

Feature families (the ones the H&M Personalized Fashion Recommendations winning solutions found to matter, plus the
visual ones this library can add):

* candidate sources — score and rank of the pair in each source (NaN: the source did not propose it), number of
  sources that proposed it;
* customer × item — events per type over each window of ``windows`` (default 7 / 28 / 90 days) and days since the
  customer last viewed / carted / bought the item (repurchase is a feature, not a filter);
* item — events and purchases over the same windows, trend (last window vs the next one, per day), age (days since
  first seen) and days since its last event;
* customer — events per window, purchases, days since the last event, tenure, distinct items;
* customer × label — the customer's share of events in the item's label; label and segment codes (categorical);
* price (when the catalogue has a ``price`` column or the log a ``price`` / ``unit_price`` one) — the item's price
  (catalogue price, else the median price of its events before the cut), the mean and median price of what the
  customer viewed, carted or bought before the cut, and the item's price relative to that median;
* visual — cosine of the item to the customer's taste vector (recency-decayed mean embedding) and to their most
  similar recent item.

:class:`FeatureState` is built by :meth:`FeatureState.fit` from ``log.before(cut)`` only; its arrays never change
afterwards, so a fitted state answers any number of blocks (from several threads). Every statistic is computed with
array operations (sorts, ``bincount``, ``reduceat``, sparse products); nothing loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fashion_reco.recommend.candidates.base import CandidateEnv, CandidateSet, history_csr
from fashion_reco.recommend.eventlog import EventLog
from fashion_reco.recommend.topk import csr_topk

__all__ = ["CATEGORICAL", "FeatureBlock", "FeatureState", "feature_group"]

_EVENTS = ("view", "cart", "purchase")
#: categorical feature names (LightGBM treats them as categories)
CATEGORICAL: tuple[str, ...] = ("item_label", "customer_segment")
_RECENT = 5
_CHUNK = 8192


def _fmt(w: float) -> str:
    return f"{w:g}d"


def feature_group(name: str) -> str:
    """The explanation group of a feature: which kind of evidence it is (used to phrase reasons)."""
    if name.startswith(("ci_", "src_history")):
        return "history"
    if name.startswith("src_"):
        return name[4:].rsplit("_", 1)[0]
    if name.startswith("vis_"):
        return "visual"
    if name.startswith("cust_price") or name == "item_price_rel":
        return "customer"
    if name in ("cust_label_share", "item_label"):
        return "profile"
    if name.startswith("item_"):
        return "item"
    return "customer"


def _lookup(sorted_keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``query`` keys in ``sorted_keys`` and whether they were found."""
    if sorted_keys.size == 0:
        return np.zeros(query.size, np.int64), np.zeros(query.size, bool)
    pos = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    return pos, sorted_keys[pos] == query


@dataclass(frozen=True)
class FeatureBlock:
    """Features of a candidate block: ``X`` ``(n_pairs, n_features)`` float32, plus per pair the customer's most
    visually similar recent item (``-1``: none) for explanations."""

    X: np.ndarray
    closest_item: np.ndarray


@dataclass(frozen=True)
class FeatureState:
    """Everything the features need, computed once at a cut from the events strictly before it (module docstring)."""

    cut_ns: int
    windows: tuple[float, ...]
    sources: tuple[str, ...]
    n_items: int
    pair_keys: np.ndarray
    pair_stats: np.ndarray
    item_stats: np.ndarray
    customer_stats: np.ndarray
    label_keys: np.ndarray
    label_values: np.ndarray
    item_label: np.ndarray
    customer_segment: np.ndarray
    embeddings: np.ndarray | None
    recent: sp.csr_matrix
    has_labels: bool
    has_segments: bool
    #: item price at the cut (NaN unknown) and per customer the mean and median price of their events before it;
    #: None when neither the catalogue nor the log has prices (older saved models: no price features)
    item_price: np.ndarray | None = None
    customer_price: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        log: EventLog,
        cut_ns: int,
        env: CandidateEnv,
        sources: tuple[str, ...],
        *,
        windows: tuple[float, ...] = (7.0, 28.0, 90.0),
        half_life_days: float = 14.0,
    ) -> FeatureState:
        """Statistics of ``log.before(cut_ns)`` (events at or after the cut are never read)."""
        past = log.before(cut_ns)
        n_items, n_cust = log.n_items, log.n_customers
        age = past.age_days(cut_ns)
        windows = tuple(float(w) for w in windows)
        in_window = [age <= w for w in windows]

        # customer × item statistics, one row per distinct pair seen before the cut
        keys = past.cust * n_items + past.item
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        first = np.r_[True, sk[1:] != sk[:-1]] if sk.size else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        pair_keys = sk[starts]
        inv = np.cumsum(first) - 1
        n_pairs = pair_keys.size
        ev = past.event[order]
        cols: list[np.ndarray] = []
        for e in range(3):
            is_e = ev == e
            for m in in_window:
                cols.append(np.bincount(inv, weights=(is_e & m[order]), minlength=n_pairs))
        age_sorted = age[order]
        for e in range(3):
            masked = np.where(ev == e, age_sorted, np.inf)
            last = np.minimum.reduceat(masked, starts) if n_pairs else np.zeros(0)
            cols.append(np.where(np.isfinite(last), last, np.nan))
        pair_stats = np.column_stack(cols).astype(np.float32) if cols else np.zeros((0, 12), np.float32)

        # item statistics
        item_cols: list[np.ndarray] = []
        purchase = past.event == 2
        for m in in_window:
            item_cols.append(np.bincount(past.item[m], minlength=n_items))
        for m in in_window:
            item_cols.append(np.bincount(past.item[m & purchase], minlength=n_items))
        if len(windows) >= 2:
            w0, w1 = windows[0], windows[1]
            recent = item_cols[0] / w0
            before = (item_cols[1] - item_cols[0]) / max(w1 - w0, 1e-9)
            item_cols.append((recent + 0.1) / (before + 0.1))
        else:
            item_cols.append(np.ones(n_items))
        first_age = np.full(n_items, np.nan)
        last_age = np.full(n_items, np.nan)
        if past.n_events:
            # past is time-sorted: the first occurrence of an item is its oldest event, the last its newest
            u, first_idx = np.unique(past.item, return_index=True)
            first_age[u] = age[first_idx]
            u2, last_rev = np.unique(past.item[::-1], return_index=True)
            last_age[u2] = age[past.n_events - 1 - last_rev]
        item_cols += [first_age, last_age]
        item_stats = np.column_stack(item_cols).astype(np.float32)

        # customer statistics
        cust_cols: list[np.ndarray] = [np.bincount(past.cust[m], minlength=n_cust) for m in in_window]
        cust_cols.append(np.bincount(past.cust[purchase], minlength=n_cust))
        c_first = np.full(n_cust, np.nan)
        c_last = np.full(n_cust, np.nan)
        if past.n_events:
            u, fi = np.unique(past.cust, return_index=True)
            c_first[u] = age[fi]
            u2, lr = np.unique(past.cust[::-1], return_index=True)
            c_last[u2] = age[past.n_events - 1 - lr]
        distinct = np.bincount(pair_keys // n_items, minlength=n_cust) if n_pairs else np.zeros(n_cust)
        cust_cols += [c_last, c_first, distinct]
        customer_stats = np.column_stack(cust_cols).astype(np.float32)

        # customer × label share
        n_l = env.n_labels
        if n_l and past.n_events:
            lab = env.item_label[past.item]
            sel = lab >= 0
            lk = past.cust[sel] * n_l + lab[sel]
            lk_u, lk_c = np.unique(lk, return_counts=True)
            totals = np.bincount(past.cust[sel], minlength=n_cust).astype(np.float64)
            label_values = (lk_c / np.maximum(totals[lk_u // n_l], 1.0)).astype(np.float32)
            label_keys = lk_u
        else:
            label_keys, label_values = np.empty(0, np.int64), np.empty(0, np.float32)

        item_price, customer_price = _prices(past, env.item_price)
        recent = (
            csr_topk(history_csr(past, cut_ns, half_life_days), _RECENT)
            if env.embeddings is not None
            else sp.csr_matrix((n_cust, n_items), dtype=np.float32)
        )
        return cls(
            cut_ns=int(cut_ns),
            windows=windows,
            sources=tuple(sources),
            n_items=n_items,
            pair_keys=pair_keys,
            pair_stats=pair_stats,
            item_stats=item_stats,
            customer_stats=customer_stats,
            label_keys=label_keys,
            label_values=label_values,
            item_label=env.item_label,
            customer_segment=env.customer_segment,
            embeddings=env.embeddings,
            recent=recent,
            has_labels=n_l > 0,
            has_segments=env.n_segments > 0,
            item_price=item_price,
            customer_price=customer_price,
        )

    def strongest_event(self, customer_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Strongest event code the customer had on the item before the cut (2 bought, 1 cart, 0 view, -1 none)."""
        rows = np.asarray(customer_rows, np.int64)
        items = np.asarray(items, np.int64)
        ok = (rows >= 0) & (items >= 0)
        pos, found = _lookup(self.pair_keys, np.where(ok, rows * self.n_items + items, -1))
        found &= ok
        out = np.full(rows.shape, -1, dtype=np.int64)
        if not found.any():
            return out
        since = self.pair_stats[pos[found]][:, -3:]
        code = np.where(np.isfinite(since[:, 2]), 2, np.where(np.isfinite(since[:, 1]), 1, 0))
        out[found] = code
        return out

    # ------------------------------------------------------------------ names
    @property
    def names(self) -> list[str]:
        """Feature names in column order."""
        ws = [_fmt(w) for w in self.windows]
        names = [f"src_{s}_score" for s in self.sources] + [f"src_{s}_rank" for s in self.sources]
        names.append("n_sources")
        names += [f"ci_{e}_{w}" for e in _EVENTS for w in ws]
        names += [f"ci_days_since_{e}" for e in _EVENTS]
        names += [f"item_events_{w}" for w in ws] + [f"item_purchases_{w}" for w in ws]
        names += ["item_trend", "item_age_days", "item_days_since_last"]
        names += [f"cust_events_{w}" for w in ws]
        names += ["cust_purchases", "cust_days_since_last", "cust_tenure_days", "cust_distinct_items"]
        if self.item_price is not None:
            names += ["item_price", "cust_price_mean", "cust_price_median", "item_price_rel"]
        if self.has_labels:
            names += ["cust_label_share", "item_label"]
        if self.has_segments:
            names.append("customer_segment")
        if self.embeddings is not None:
            names += ["vis_taste_cosine", "vis_closest_cosine"]
        return names

    # ------------------------------------------------------------------ transform
    def transform(self, rows: np.ndarray, cand: CandidateSet) -> FeatureBlock:
        """Features for the candidate pairs of a block (``rows``: the block's customer rows, ``-1`` = cold)."""
        rows = np.asarray(rows, dtype=np.int64)
        n = len(cand)
        crow = rows[cand.row] if n else np.empty(0, np.int64)
        warm = crow >= 0
        safe = np.where(warm, crow, 0)
        parts: list[np.ndarray] = [cand.score, cand.rank]
        parts.append(np.isfinite(cand.score).sum(axis=1, dtype=np.int64).astype(np.float32)[:, None])

        pos, found = _lookup(self.pair_keys, np.where(warm, crow * self.n_items + cand.item, -1))
        found &= warm
        ps = np.zeros((n, self.pair_stats.shape[1]), dtype=np.float32)
        n_counts = 3 * len(self.windows)
        ps[:, n_counts:] = np.nan
        if self.pair_stats.size:
            ps[found] = self.pair_stats[pos[found]]
        parts.append(ps)
        parts.append(self.item_stats[cand.item])
        cs = self.customer_stats[safe]
        cs[~warm] = 0.0
        cs[~warm, len(self.windows) + 1 : len(self.windows) + 3] = np.nan
        parts.append(cs)
        if self.item_price is not None and self.customer_price is not None:
            ip = self.item_price[cand.item]
            cp = self.customer_price[safe]
            cp[~warm] = np.nan
            median = cp[:, 1]
            rel = np.divide(ip, median, out=np.full(n, np.nan), where=np.isfinite(ip) & (median > 0))
            parts += [ip[:, None], cp, rel[:, None]]
        if self.has_labels:
            lab = self.item_label[cand.item]
            n_l = int(self.item_label.max(initial=-1)) + 1
            lpos, lfound = _lookup(self.label_keys, np.where(warm & (lab >= 0), safe * max(n_l, 1) + lab, -1))
            lfound &= warm & (lab >= 0)
            share = np.zeros(n, np.float32)
            if self.label_values.size:
                share[lfound] = self.label_values[lpos[lfound]]
            share[lab < 0] = np.nan
            parts += [share[:, None], np.where(lab >= 0, lab, np.nan).astype(np.float32)[:, None]]
        if self.has_segments:
            seg = self.customer_segment[safe]
            parts.append(np.where(warm & (seg >= 0), seg, np.nan).astype(np.float32)[:, None])
        closest = np.full(n, -1, dtype=np.int64)
        if self.embeddings is not None:
            taste_cos, close_cos, closest = self._visual(rows, cand)
            parts += [taste_cos[:, None], close_cos[:, None]]
        X = np.concatenate([np.asarray(p, dtype=np.float32).reshape(n, -1) for p in parts], axis=1)
        return FeatureBlock(X=np.ascontiguousarray(X), closest_item=closest)

    def _visual(self, rows: np.ndarray, cand: CandidateSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        emb = self.embeddings
        if emb is None:
            raise ValueError("visual features need item embeddings")
        recent = sp.csr_matrix(_rows(self.recent, rows))
        taste = np.asarray(recent @ emb, dtype=np.float32)
        norms = np.linalg.norm(taste, axis=1, keepdims=True)
        taste = np.divide(taste, norms, out=np.zeros_like(taste), where=norms > 0)
        counts = np.diff(recent.indptr)
        width = int(counts.max(initial=0))
        rec_items = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
        if width:
            r = np.repeat(np.arange(len(rows)), counts)
            c = np.arange(recent.nnz) - np.repeat(recent.indptr[:-1], counts)
            rec_items[r, c] = recent.indices
        n = len(cand)
        taste_cos = np.full(n, np.nan, np.float32)
        close_cos = np.full(n, np.nan, np.float32)
        closest = np.full(n, -1, np.int64)
        has_hist = counts[cand.row] > 0 if n else np.zeros(0, bool)
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(n, start + _CHUNK))
            e = emb[cand.item[sl]]
            taste_cos[sl] = np.einsum("ij,ij->i", e, taste[cand.row[sl]])
            ri = rec_items[cand.row[sl]]
            sims = np.einsum("ij,ikj->ik", e, emb[np.maximum(ri, 0)])
            sims[ri < 0] = -np.inf
            # the candidate itself is not "similar to" itself
            sims[ri == cand.item[sl, None]] = -np.inf
            best = np.argmax(sims, axis=1)
            val = sims[np.arange(sims.shape[0]), best]
            ok = np.isfinite(val)
            close_cos[sl] = np.where(ok, val, np.nan)
            closest[sl] = np.where(ok, ri[np.arange(ri.shape[0]), best], -1)
        taste_cos[~has_hist] = np.nan
        return taste_cos, close_cos, closest


def _group_median(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per key in ``range(n)`` (NaN for keys without values), by one sort — no loop."""
    out = np.full(n, np.nan)
    if keys.size == 0:
        return out
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, k.size])
    out[k[starts]] = (v[starts + (counts - 1) // 2] + v[starts + counts // 2]) / 2.0
    return out


def _prices(past: EventLog, catalogue: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Item price at the cut and each customer's (mean, median) event price, from events before the cut only.

    An event's price is its own (the log's ``price`` / ``unit_price``) when known, else the item's catalogue price;
    an item's price is its catalogue price when known, else the median price of its events before the cut.
    """
    if catalogue is None and past.price is None:
        return None, None
    n_items, n_cust = past.n_items, past.n_customers
    ev = np.full(past.n_events, np.nan) if past.price is None else past.price.astype(np.float64)
    if catalogue is not None:
        ev = np.where(np.isfinite(ev), ev, catalogue[past.item])
    known = np.isfinite(ev)
    item_price = _group_median(past.item[known], ev[known], n_items)
    if catalogue is not None:
        item_price = np.where(np.isfinite(catalogue), catalogue, item_price)
    c = past.cust[known]
    total = np.bincount(c, weights=ev[known], minlength=n_cust)
    count = np.bincount(c, minlength=n_cust)
    mean = np.divide(total, count, out=np.full(n_cust, np.nan), where=count > 0)
    median = _group_median(c, ev[known], n_cust)
    customer_price = np.column_stack([mean, median]).astype(np.float32)
    return item_price.astype(np.float32), customer_price


def _rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    from fashion_reco.recommend.base import take_rows

    return take_rows(matrix, rows)
