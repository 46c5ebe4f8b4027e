"""Seeded synthetic customers and clickstream over a real catalogue (for demos, tests and benchmarks).

No openly licensed fashion clickstream with matching photos exists, so this module *generates* one over the real
items, with every assumption stated here. The output uses the real schemas — a ``Customers`` table and an
``Interactions`` log — so real logs in the same schema go through the rest of the library unchanged.

Generative assumptions
----------------------

Items
    * Each item has a base popularity ``~ LogNormal(0, 1)`` (a long tail), and 10 % of items are *trending*: their
      popularity is multiplied by ``1 + 4·exp(-(day − peak)² / (2·4²))`` around a peak day drawn uniformly in the
      window, so recency matters.
    * Items fall into *visual clusters*: spherical k-means of the image embeddings when they are given
      (``2 × n_labels`` clusters), otherwise the labels themselves. Each item's 10 visually nearest items (cosine of
      the embeddings; same-label items without embeddings) are its "look-alikes".

Customers (:func:`generate_customers`)
    * ``age_band`` (18-24 … 55+) and ``gender`` are drawn from fixed marginals. Each (age band, gender) group has its
      own label taste ``g ~ Dirichlet(0.8)``.
    * Latent style: a label preference ``θ ~ Dirichlet(4 · g)`` and a preferred visual cluster drawn from the
      clusters of θ's labels (so style and labels agree).
    * ``preferred_labels`` is derived from θ, noisily: its two strongest labels, each replaced by a random label
      with probability 0.2; 25 % of customers leave it empty.
    * The latent state is a deterministic function of ``(seed, customer order, age band, gender)``, so
      :func:`generate_clickstream` called with the same seed recovers it; stated ``preferred_labels`` are mixed in
      (``θ ← 0.7 θ + 0.3 uniform(preferred)``), so a customer table from elsewhere still steers the behaviour.

Clickstream (:func:`generate_clickstream`)
    * Activity: sessions per customer ``~ Poisson(λ · days)`` with ``λ ~ Gamma(1.5, 0.25/1.5)`` per day (mean one
      session every four days, heavy-tailed), at uniformly random times over ``days`` (default 60).
    * Taste drift: θ moves linearly from θ₀ to ``0.5 θ₀ + 0.5 θ₁`` over the window (θ₁ a fresh draw from the same
      group prior) — tastes shift slowly.
    * A session focuses on one label drawn from θ(t) and holds ``1 + Poisson(3)`` views. The first view is an item of
      the focus label (p 0.55), of the preferred visual cluster (p 0.30) or from the whole catalogue (p 0.15), in
      each case in proportion to the item's popularity on that day. Each later view is, with p 0.5, a look-alike of
      the previous view, with p 0.1 one of the customer's three favourite items (revisits), else a fresh draw as for
      the first view.
    * Funnel: every view leads to ``add_to_cart`` with p 0.25, and a cart to ``purchase`` with p 0.4 (a few
      seconds to minutes later, within the session).

Everything is vectorised over sessions (a loop runs over view positions only) and fully determined by ``seed``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.errors import DataError

__all__ = [
    "AGE_BANDS",
    "GENDERS",
    "SyntheticConfig",
    "generate_clickstream",
    "generate_customers",
    "generate_dataset",
]

AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS: tuple[str, ...] = ("female", "male", "unspecified")
_AGE_P = np.array([0.2, 0.3, 0.25, 0.15, 0.1])
_GENDER_P = np.array([0.5, 0.42, 0.08])
_UNLABELLED = "__unlabelled__"


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generative model (defaults are the values in the module docstring)."""

    start: str = "2024-03-01"
    sessions_per_day: float = 0.25
    activity_shape: float = 1.5
    views_per_session: float = 3.0
    p_focus_label: float = 0.55
    p_cluster: float = 0.30
    p_lookalike: float = 0.5
    p_revisit: float = 0.1
    n_favourites: int = 3
    p_add_to_cart: float = 0.25
    p_purchase: float = 0.4
    taste_concentration: float = 4.0
    group_concentration: float = 0.8
    drift: float = 0.5
    preferred_mix: float = 0.3
    preferred_noise: float = 0.2
    preferred_missing: float = 0.25
    trending_share: float = 0.1
    trend_amplitude: float = 4.0
    trend_width_days: float = 4.0
    n_lookalikes: int = 10
    kmeans_iterations: int = 15


# ---------------------------------------------------------------------------------------------------------- inputs
def _items_of(catalogue: Any) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids, labels) from a Catalogue, a DataFrame with item_id/label, or an (ids, labels) pair."""
    if isinstance(catalogue, tuple) and len(catalogue) == 2:
        ids, labels = catalogue
    elif isinstance(catalogue, pd.DataFrame):
        if Columns.ITEM_ID not in catalogue.columns:
            raise DataError("catalogue frame has no item_id column", column=Columns.ITEM_ID)
        ids = catalogue[Columns.ITEM_ID]
        labels = catalogue[Columns.LABEL] if Columns.LABEL in catalogue.columns else [None] * len(catalogue)
    elif hasattr(catalogue, "item_ids"):
        ids = catalogue.item_ids
        labels = getattr(catalogue, "labels", None)
        labels = [None] * len(ids) if labels is None else labels
    else:
        raise DataError(
            f"expected a Catalogue, a DataFrame or (item_ids, labels), got {type(catalogue).__name__}"
        )
    ids = np.array([str(i) for i in ids], dtype=object)
    labels = np.array(
        [_UNLABELLED if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in labels],
        dtype=object,
    )
    if len(ids) == 0:
        raise DataError("the catalogue is empty")
    if len(labels) != len(ids):
        raise DataError("labels and item ids differ in length")
    return ids, labels


def _customer_frame(customers: Any) -> pd.DataFrame:
    frame = customers.frame if hasattr(customers, "frame") else customers
    if not isinstance(frame, pd.DataFrame) or Columns.CUSTOMER_ID not in frame.columns:
        raise DataError("customers must be a Customers table or a DataFrame with customer_id")
    return frame.reset_index(drop=True)


def _rng(seed: int, *stream: str) -> np.random.Generator:
    """Independent, reproducible stream per purpose (adding a stream never shifts another)."""
    keys = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(s.encode()) for s in stream]
    return np.random.default_rng(keys)


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (inverse CDF, vectorised)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), probs.shape[1] - 1)


# ---------------------------------------------------------------------------------------------------------- latent
def _group_tastes(classes: np.ndarray, seed: int, cfg: SyntheticConfig) -> np.ndarray:
    rng = _rng(seed, "group-taste")
    n_groups = len(AGE_BANDS) * len(GENDERS)
    return rng.dirichlet(np.full(len(classes), cfg.group_concentration), size=n_groups)


def _group_index(age: pd.Series, gender: pd.Series, n: int, seed: int) -> np.ndarray:
    """Group of each customer; unknown attributes fall back to a seeded random group."""
    a = pd.Series(age, dtype=object).map({v: i for i, v in enumerate(AGE_BANDS)})
    g = pd.Series(gender, dtype=object).map({v: i for i, v in enumerate(GENDERS)})
    rng = _rng(seed, "group-fallback")
    fa = rng.integers(0, len(AGE_BANDS), size=n)
    fg = rng.integers(0, len(GENDERS), size=n)
    a = np.where(a.isna(), fa, a.fillna(0)).astype(np.int64)
    g = np.where(g.isna(), fg, g.fillna(0)).astype(np.int64)
    return a * len(GENDERS) + g


def _latent_tastes(
    n: int, groups: np.ndarray, classes: np.ndarray, seed: int, cfg: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """θ₀ and θ₁ (drift target), each ``(n, L)``, drawn around the customers' group tastes."""
    g = _group_tastes(classes, seed, cfg)[groups]
    rng = _rng(seed, "theta")
    alpha = np.maximum(cfg.taste_concentration * g, 1e-3)
    # Dirichlet rows via normalised gammas (vectorised over customers).
    t0 = rng.gamma(alpha)
    t1 = rng.gamma(alpha)
    t0 /= np.maximum(t0.sum(axis=1, keepdims=True), 1e-300)
    t1 /= np.maximum(t1.sum(axis=1, keepdims=True), 1e-300)
    return t0, t1


def _preferred_from_theta(
    theta: np.ndarray, classes: np.ndarray, seed: int, cfg: SyntheticConfig
) -> list[Any]:
    rng = _rng(seed, "preferred")
    n, n_l = theta.shape
    top = np.argsort(-theta, axis=1, kind="stable")[:, : min(2, n_l)]
    noise = rng.random(top.shape) < cfg.preferred_noise
    top = np.where(noise, rng.integers(0, n_l, size=top.shape), top)
    missing = rng.random(int(n)) < cfg.preferred_missing
    out: list[Any] = []
    for r in range(n):
        if missing[r]:
            out.append(None)
            continue
        labels = [classes[j] for j in dict.fromkeys(top[r].tolist()) if classes[j] != _UNLABELLED]
        out.append(";".join(labels) if labels else None)
    return out


# ---------------------------------------------------------------------------------------------------------- public
def generate_customers(
    catalogue: Any,
    n: int = 500,
    seed: int = 0,
    *,
    config: SyntheticConfig | None = None,
    id_prefix: str = "C",
) -> Any:
    """``n`` synthetic customers (``customer_id, age_band, gender, preferred_labels, signup_date``).

    Returns the data layer's ``Customers`` table (a DataFrame when that class is unavailable).
    """
    cfg = config or SyntheticConfig()
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    _, labels = _items_of(catalogue)
    classes = np.array(sorted(set(labels)), dtype=object)
    rng = _rng(seed, "customers")
    width = max(5, len(str(n)))
    ids = [f"{id_prefix}{i:0{width}d}" for i in range(1, n + 1)]
    age = np.array(AGE_BANDS, dtype=object)[rng.choice(len(AGE_BANDS), size=n, p=_AGE_P)]
    gender = np.array(GENDERS, dtype=object)[rng.choice(len(GENDERS), size=n, p=_GENDER_P)]
    groups = _group_index(pd.Series(age), pd.Series(gender), n, seed)
    theta, _ = _latent_tastes(n, groups, classes, seed, cfg)
    preferred = _preferred_from_theta(theta, classes, seed, cfg)
    start = pd.Timestamp(cfg.start)
    signup = start - pd.to_timedelta(rng.uniform(1, 720, size=n), unit="D")
    frame = pd.DataFrame(
        {
            Columns.CUSTOMER_ID: ids,
            "age_band": age,
            "gender": gender,
            "preferred_labels": preferred,
            "signup_date": signup.floor("s"),
        }
    )
    try:
        from fashion_reco.data.customers import Customers
    except ImportError:  # pragma: no cover - the data layer always ships it
        return frame
    return Customers.from_frame(frame)


def _kmeans(emb: np.ndarray, k: int, seed: int, iterations: int) -> np.ndarray:
    """Spherical k-means (cosine) with k-means++ seeding; returns the cluster of every row."""
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    n = x.shape[0]
    k = max(1, min(k, n))
    rng = _rng(seed, "kmeans")
    centres = [x[rng.integers(n)]]
    best = 1.0 - x @ centres[0]
    for _ in range(1, k):
        p = np.maximum(best, 0) ** 2
        p = p / p.sum() if p.sum() > 0 else np.full(n, 1.0 / n)
        c = x[rng.choice(n, p=p)]
        centres.append(c)
        best = np.minimum(best, 1.0 - x @ c)
    cent = np.stack(centres).astype(np.float32)
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        assign = np.argmax(x @ cent.T, axis=1)
        for j in range(k):
            members = x[assign == j]
            if len(members):
                v = members.sum(axis=0)
                cent[j] = v / max(float(np.linalg.norm(v)), 1e-12)
    return assign


def _lookalikes(emb: np.ndarray | None, labels_code: np.ndarray, n_near: int, seed: int) -> np.ndarray:
    """``(N, n_near)`` visually nearest items (self excluded); same-label random items without embeddings."""
    n = labels_code.shape[0]
    n_near = max(1, min(n_near, n - 1)) if n > 1 else 1
    if n == 1:
        return np.zeros((1, 1), dtype=np.int64)
    if emb is not None:
        x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        x = x.astype(np.float32)
        out = np.empty((n, n_near), dtype=np.int64)
        for s in range(0, n, 2048):
            block = x[s : s + 2048] @ x.T
            block[np.arange(block.shape[0]), np.arange(s, s + block.shape[0])] = -np.inf
            part = np.argpartition(-block, n_near - 1, axis=1)[:, :n_near]
            vals = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            out[s : s + 2048] = np.take_along_axis(part, order, axis=1)
        return out
    rng = _rng(seed, "lookalikes")
    order = np.argsort(labels_code, kind="stable")
    counts = np.bincount(labels_code)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    c = counts[labels_code]
    pick = starts[labels_code][:, None] + (rng.random((n, n_near)) * c[:, None]).astype(np.int64)
    return order[np.minimum(pick, len(order) - 1)]


class _SegmentSampler:
    """Draws items of a segment (label, cluster, or everything) in proportion to their popularity on a day."""

    def __init__(self, weights_by_day: np.ndarray, segment_of_item: np.ndarray) -> None:
        self.order = np.argsort(segment_of_item, kind="stable")
        n_seg = int(segment_of_item.max()) + 1 if segment_of_item.size else 0
        counts = np.bincount(segment_of_item, minlength=n_seg)
        self.seg_end = np.cumsum(counts)
        self.seg_start = self.seg_end - counts
        cw = np.cumsum(weights_by_day[:, self.order], axis=1)
        self.total = cw[:, -1].copy()
        n_days = cw.shape[0]
        self.flat = (cw / self.total[:, None] + np.arange(n_days)[:, None]).ravel()
        self.n = cw.shape[1]

    def draw(self, rng: np.random.Generator, segment: np.ndarray, day: np.ndarray) -> np.ndarray:
        s0, s1 = self.seg_start[segment], self.seg_end[segment]
        base = day * self.n
        lo = np.where(s0 > 0, self.flat[base + np.maximum(s0 - 1, 0)] - day, 0.0)
        hi = self.flat[base + s1 - 1] - day
        target = day + lo + rng.random(segment.shape[0]) * (hi - lo)
        pos = np.searchsorted(self.flat, target, side="right") - base
        pos = np.clip(pos, s0, s1 - 1)
        return self.order[pos]


def generate_clickstream(
    catalogue: Any,
    customers: Any,
    *,
    item_embeddings: np.ndarray | None = None,
    days: float = 60,
    seed: int = 0,
    config: SyntheticConfig | None = None,
) -> Any:
    """Synthetic ``view`` / ``add_to_cart`` / ``purchase`` events over ``days`` for ``customers`` (module docstring).

    Returns the data layer's ``Interactions`` (sorted by time).
    """
    cfg = config or SyntheticConfig()
    item_ids, labels = _items_of(catalogue)
    n_items = len(item_ids)
    classes = np.array(sorted(set(labels)), dtype=object)
    label_code = pd.Index(classes).get_indexer(labels).astype(np.int64)
    n_labels = len(classes)
    frame = _customer_frame(customers)
    n_cust = len(frame)
    if n_cust == 0:
        raise DataError("no customers")
    emb = None
    if item_embeddings is not None:
        emb = np.asarray(item_embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != n_items:
            raise DataError(f"item_embeddings must have shape ({n_items}, d), got {emb.shape}")
    n_days = max(1, int(np.ceil(days)))

    # --- items: popularity over time, clusters, look-alikes
    rng_items = _rng(seed, "items")
    base = rng_items.lognormal(0.0, 1.0, size=n_items)
    trending = rng_items.random(n_items) < cfg.trending_share
    peak = rng_items.uniform(0, days, size=n_items)
    day_axis = np.arange(n_days, dtype=np.float64)[:, None] + 0.5
    bump = np.exp(-((day_axis - peak[None, :]) ** 2) / (2 * cfg.trend_width_days**2))
    weights = base[None, :] * (1.0 + cfg.trend_amplitude * trending[None, :] * bump)
    if emb is not None:
        clusters = _kmeans(emb, 2 * max(n_labels, 1), seed, cfg.kmeans_iterations)
    else:
        clusters = label_code.copy()
    n_clusters = int(clusters.max()) + 1
    near = _lookalikes(emb, label_code, cfg.n_lookalikes, seed)
    by_label = _SegmentSampler(weights, label_code)
    by_cluster = _SegmentSampler(weights, clusters)
    everything = _SegmentSampler(weights, np.zeros(n_items, dtype=np.int64))

    # --- customers: latent tastes (same function as generate_customers), stated preferences, cluster, favourites
    age = frame["age_band"] if "age_band" in frame.columns else pd.Series([None] * n_cust)
    gender = frame["gender"] if "gender" in frame.columns else pd.Series([None] * n_cust)
    groups = _group_index(age.reset_index(drop=True), gender.reset_index(drop=True), n_cust, seed)
    theta0, theta1 = _latent_tastes(n_cust, groups, classes, seed, cfg)
    if "preferred_labels" in frame.columns:
        lut = {c: i for i, c in enumerate(classes)}
        stated = np.zeros((n_cust, n_labels))
        for r, value in enumerate(frame["preferred_labels"].tolist()):
            if isinstance(value, str):
                for lab in value.split(";"):
                    j = lut.get(lab.strip())
                    if j is not None:
                        stated[r, j] = 1.0
        n_stated = stated.sum(axis=1, keepdims=True)
        has = n_stated[:, 0] > 0
        stated = np.divide(stated, n_stated, out=np.zeros_like(stated), where=n_stated > 0)
        for t in (theta0, theta1):
            t[has] = (1 - cfg.preferred_mix) * t[has] + cfg.preferred_mix * stated[has]
    rng_c = _rng(seed, "clickstream-customers")
    label_cluster = np.zeros((n_labels, n_clusters))
    np.add.at(label_cluster, (label_code, clusters), 1.0)
    label_cluster /= np.maximum(label_cluster.sum(axis=1, keepdims=True), 1e-12)
    pref_cluster = _sample_rows(rng_c, theta0 @ label_cluster)
    fav_label = _sample_rows(rng_c, np.repeat(theta0, cfg.n_favourites, axis=0))
    favourites = by_label.draw(rng_c, fav_label, np.zeros(fav_label.shape[0], dtype=np.int64)).reshape(
        n_cust, cfg.n_favourites
    )
    activity = rng_c.gamma(cfg.activity_shape, cfg.sessions_per_day / cfg.activity_shape, size=n_cust)

    # --- sessions (vectorised over sessions)
    rng_s = _rng(seed, "sessions")
    n_sessions = rng_s.poisson(activity * days)
    s_cust = np.repeat(np.arange(n_cust), n_sessions)
    n_s = s_cust.shape[0]
    if n_s == 0:
        return _to_interactions(
            pd.DataFrame(
                columns=[Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP]
            )
        )
    s_time = rng_s.uniform(0.0, days, size=n_s)
    s_day = np.minimum(s_time.astype(np.int64), n_days - 1)
    frac = (s_time / days)[:, None] * cfg.drift
    theta_t = (1 - frac) * theta0[s_cust] + frac * theta1[s_cust]
    s_label = _sample_rows(rng_s, theta_t)
    s_len = 1 + rng_s.poisson(cfg.views_per_session, size=n_s)

    def fresh(sel: np.ndarray) -> np.ndarray:
        m = sel.shape[0]
        mode = rng_s.random(int(m))
        out = np.empty(m, dtype=np.int64)
        a = mode < cfg.p_focus_label
        b = (~a) & (mode < cfg.p_focus_label + cfg.p_cluster)
        c = ~(a | b)
        if a.any():
            out[a] = by_label.draw(rng_s, s_label[sel[a]], s_day[sel[a]])
        if b.any():
            out[b] = by_cluster.draw(rng_s, pref_cluster[s_cust[sel[b]]], s_day[sel[b]])
        if c.any():
            out[c] = everything.draw(rng_s, np.zeros(int(c.sum()), dtype=np.int64), s_day[sel[c]])
        return out

    views_s: list[np.ndarray] = []
    views_i: list[np.ndarray] = []
    views_t: list[np.ndarray] = []
    prev = np.full(n_s, -1, dtype=np.int64)
    for pos in range(int(s_len.max())):
        sel = np.flatnonzero(s_len > pos)
        if pos == 0:
            item = fresh(sel)
        else:
            u = rng_s.random(sel.shape[0])
            look = u < cfg.p_lookalike
            rev = (~look) & (u < cfg.p_lookalike + cfg.p_revisit)
            new = ~(look | rev)
            item = np.empty(sel.shape[0], dtype=np.int64)
            if look.any():
                col = rng_s.integers(0, near.shape[1], size=int(look.sum()))
                item[look] = near[prev[sel[look]], col]
            if rev.any():
                col = rng_s.integers(0, favourites.shape[1], size=int(rev.sum()))
                item[rev] = favourites[s_cust[sel[rev]], col]
            if new.any():
                item[new] = fresh(sel[new])
        prev[sel] = item
        views_s.append(sel)
        views_i.append(item)
        views_t.append(s_time[sel] + pos * (45.0 + 30.0 * rng_s.random(sel.shape[0])) / 86400.0)
    v_sess = np.concatenate(views_s)
    v_item = np.concatenate(views_i)
    v_time = np.concatenate(views_t)

    # --- funnel
    rng_f = _rng(seed, "funnel")
    n_views = int(v_item.shape[0])
    cart = rng_f.random(n_views) < cfg.p_add_to_cart
    buy = cart & (rng_f.random(n_views) < cfg.p_purchase)
    c_time = v_time + (20.0 + 40.0 * rng_f.random(v_item.shape[0])) / 86400.0
    b_time = c_time + (60.0 + 240.0 * rng_f.random(v_item.shape[0])) / 86400.0
    sess = np.concatenate([v_sess, v_sess[cart], v_sess[buy]])
    items = np.concatenate([v_item, v_item[cart], v_item[buy]])
    times = np.concatenate([v_time, c_time[cart], b_time[buy]])
    kinds = np.concatenate(
        [
            np.zeros(v_item.shape[0], dtype=np.int64),
            np.ones(int(cart.sum()), dtype=np.int64),
            np.full(int(buy.sum()), 2, dtype=np.int64),
        ]
    )
    keep = times < days
    start = pd.Timestamp(cfg.start)
    ts = start + pd.to_timedelta(np.round(times[keep] * 86400.0), unit="s")
    cust_ids = frame[Columns.CUSTOMER_ID].astype(str).to_numpy(dtype=object)
    events = pd.DataFrame(
        {
            Columns.CUSTOMER_ID: cust_ids[s_cust[sess[keep]]],
            Columns.ITEM_ID: item_ids[items[keep]],
            Columns.EVENT_TYPE: np.array(EventTypes.ALL, dtype=object)[kinds[keep]],
            Columns.TIMESTAMP: ts,
        }
    )
    events = events.sort_values([Columns.TIMESTAMP, Columns.CUSTOMER_ID], kind="stable").reset_index(
        drop=True
    )
    return _to_interactions(events)


def _to_interactions(events: pd.DataFrame) -> Any:
    try:
        from fashion_reco.data.interactions import Interactions
    except ImportError:  # pragma: no cover - the data layer always ships it
        return events
    return Interactions.from_frame(events)


def generate_dataset(
    catalogue: Any,
    n_customers: int = 500,
    *,
    item_embeddings: np.ndarray | None = None,
    days: float = 60,
    seed: int = 0,
    config: SyntheticConfig | None = None,
) -> tuple[Any, Any]:
    """``(customers, interactions)``: :func:`generate_customers` then :func:`generate_clickstream`, same seed."""
    customers = generate_customers(catalogue, n_customers, seed, config=config)
    clicks = generate_clickstream(
        catalogue, customers, item_embeddings=item_embeddings, days=days, seed=seed, config=config
    )
    return customers, clicks
