"""A fashion-retail simulator built from documented stylised facts, independent of the library's scoring code.

The older generator (:mod:`fashion_reco.data.synthetic`) draws behaviour from the same signals the personalised
blend scores with (visual look-alikes, label taste, trend), so a win on it proves little. This one draws from
regularities reported for real retail and fashion purchase data, each stated below with where it comes from. Its
process imports nothing from ``fashion_reco.recommend`` or ``fashion_reco.model`` (a test checks the imports) and
never sees image embeddings. The output uses the real schemas — ``Customers`` (``customer_id, age_band,
signup_date``) and ``Interactions`` (``customer_id, item_id, event_type, timestamp``) over a catalogue's item ids and
labels — so everything downstream runs on it exactly as on a real log.

Stylised facts and their sources
--------------------------------

1. **Heavy-tailed customer activity (NBD).** Purchase occasions per customer over a period follow a negative
   binomial distribution: Poisson occasions whose rate is Gamma-distributed across customers (Ehrenberg 1959,
   "The pattern of consumer purchases", *Applied Statistics* 8(1); Ehrenberg 1988, *Repeat-Buying*; Morrison &
   Schmittlein 1988, *JBES* 6(2)). Gamma shape ``activity_shape`` < 1 gives the familiar picture of most customers
   buying once or never in a window and a few buying often (in the H&M Personalized Fashion Recommendations data,
   Kaggle 2022: 31.8M transactions by 1.37M customers over two years, i.e. most customers buy a handful of times).
2. **Repeat purchases of basics.** Fashion customers re-buy the same article (basics, other sizes and colours).
   In the H&M competition the customer's own past purchases were the strongest single candidate source of the top
   solutions (e.g. the 23rd-place "ZKMRD" write-up: "past purchased" candidates; the silver-medal write-up by A.
   Samudra 2022), and "the customer's past purchases, then recent bestsellers" was the strongest simple public
   baseline. Here every customer has a few *staple* basics (``n_staples_mean``) and a share ``p_repeat`` of
   purchase occasions re-buys one of them; fashion items are rarely re-bought.
3. **New arrivals with short life cycles.** Fashion items sell mostly in the weeks after launch, then fade
   (Christopher, Lowson & Peck 2004, "Creating agile supply chains in the fashion industry", *IJRDM* 32(8); Sen 2008,
   "The US fashion industry: a supply chain review", *IJPE* 114(2)). Fashion items are launched during the window
   (``1 - back_catalogue_share`` of them) or before it, sell nothing before launch and decay as
   ``exp(-age / τ_i)`` afterwards with ``τ_i ~ Gamma(2, life_cycle_days / 2)``; basics sell at a flat rate.
4. **Weekly seasonality.** Retail sales have strong day-of-week effects (the M5 competition's Walmart data:
   Makridakis, Spiliotis & Assimakopoulos 2022, *IJF* 38(4); the UCI Online Retail log, Chen, Sain & Guo 2012, has
   no Saturday trading at all). Session days are drawn in proportion to ``weekday_profile`` (Monday first; the
   default is illustrative — a mild weekend peak of online fashion — not fitted to any data set; a zero closes
   that day). Times of day are a mixture of a midday and an evening peak.
5. **Outfits bought together.** Shoppers buy complementary items of one look together (Han et al. 2017, "Learning
   fashion compatibility with bidirectional LSTMs", ACM MM — the Polyvore outfits; Kang et al. 2019, "Complete the
   Look", CVPR). Every item has ``outfit_size - 1`` fixed companions of the same style and other labels; a purchase
   brings along each available companion with probability ``p_companion``.
6. **Age-segment tastes.** What sells differs by age group: the H&M top solutions used per-age-group bestsellers
   as a candidate source and for cold customers (the 23rd-place write-up: "age based most popular items"). Each age
   band has its own label taste ``G_b ~ Dirichlet(band_label_concentration)`` and its own item appeal
   ``exp(item_band_sigma · z_bi)``; a customer's label taste is ``θ_c ~ Dirichlet(customer_label_concentration · G_b)``
   and, with probability ``p_style``, a draw stays within the customer's style (one of ``n_styles``).
7. **Browsing funnel.** Most views do not convert (e-commerce conversion of a few per cent per visit; Moe & Fader
   2004, "Dynamic conversion behavior at e-commerce sites", *Management Science* 50(3)). A session holds
   ``Poisson(browse_views)`` views drawn from the same appeal, a share ``p_abandoned_cart`` of them carted but not
   bought, and buys (with probability ``p_buy``) one occasion's items, each preceded by its view and cart.
   ``with_views=False`` emits purchases only (the H&M and Online Retail shape).
8. **Consideration across visits.** Purchases often follow earlier visits that viewed the same product: conversion
   grows with accumulated past visits (Moe & Fader 2004, above; Bucklin & Sismeiro 2003, "A model of web site
   browsing behavior estimated on clickstream data", *JMR* 40(3)), and the RecSys Challenge 2015 (Ben-Shimon et al.,
   RecSys 2015) asked exactly which clicked items get bought. A share ``p_consider`` of new purchase occasions buys
   an item the customer viewed in an earlier session within ``consider_days``.

Customers sign up before or during the window (``new_customer_share`` join during it, so some are cold), and no
event precedes a customer's sign-up. Everything is vectorised (per-(band, day) cumulative appeal rows and one
``searchsorted`` per batch of draws) and determined by ``seed``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.data.synthetic import AGE_BANDS, _items_of
from fashion_reco.errors import DataError

__all__ = ["SimulatedRetail", "SimulationConfig", "simulate_retail"]

_AGE_P = np.array([0.2, 0.3, 0.25, 0.15, 0.1])
# At most this many appeal values (bands × day steps × items) are held; longer windows use coarser day steps.
_MAX_APPEAL_CELLS = 20_000_000


class SimulationConfig(BaseModel):
    """Knobs of the simulator (see the module docstring for what each one means and where it comes from)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field("2024-03-04", description="First day of the log (a Monday by default).")
    sessions_per_day: float = Field(0.08, gt=0, description="Mean sessions per customer per day.")
    activity_shape: float = Field(
        0.5, gt=0, description="Gamma shape of the per-customer session rate (NBD r)."
    )
    weekday_profile: tuple[float, ...] = Field(
        (0.95, 0.9, 0.9, 0.95, 1.0, 1.15, 1.15), description="Relative session volume Monday..Sunday."
    )
    basic_labels: tuple[str, ...] = Field(
        ("t-shirt", "longsleeve", "pants", "shorts", "shirt"),
        description="Labels where most items are basics (for catalogues with other labels: basic_share_other).",
    )
    basic_share_in_basic_labels: float = Field(0.5, ge=0, le=1)
    basic_share_other: float = Field(0.15, ge=0, le=1)
    back_catalogue_share: float = Field(
        0.4, ge=0, le=1, description="Fashion items launched before the window."
    )
    life_cycle_days: float = Field(21.0, gt=0, description="Mean decay time of a fashion item's demand.")
    n_styles: int = Field(6, ge=1)
    p_style: float = Field(0.6, ge=0, le=1)
    band_label_concentration: float = Field(1.0, gt=0)
    customer_label_concentration: float = Field(5.0, gt=0)
    item_band_sigma: float = Field(1.0, ge=0)
    item_appeal_sigma: float = Field(1.0, ge=0)
    n_staples_mean: float = Field(2.0, ge=1)
    p_repeat: float = Field(0.3, ge=0, le=1, description="Share of purchase occasions re-buying a staple.")
    outfit_size: int = Field(3, ge=1)
    p_companion: float = Field(0.35, ge=0, le=1)
    p_buy: float = Field(0.5, ge=0, le=1, description="Share of sessions with a purchase.")
    p_consider: float = Field(
        0.3, ge=0, le=1, description="Share of new purchases of an item viewed in an earlier session."
    )
    consider_days: float = Field(14.0, gt=0, description="How far back an earlier view can be considered.")
    browse_views: float = Field(4.0, ge=0)
    p_abandoned_cart: float = Field(0.1, ge=0, le=1)
    new_customer_share: float = Field(0.2, ge=0, le=1)
    with_views: bool = True

    @field_validator("weekday_profile")
    @classmethod
    def _seven_days(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != 7 or min(value) < 0 or sum(value) <= 0:
            raise ValueError("weekday_profile needs 7 non-negative weights (Monday first), not all zero")
        return value


@dataclass(frozen=True)
class SimulatedRetail:
    """The simulator's output: real-schema tables plus the item facts that generated them (for checks)."""

    customers: Any  # data.Customers
    interactions: Any  # data.Interactions
    items: pd.DataFrame  # item_id, label, is_basic, style, launch (Timestamp; NaT for basics), companions
    config: SimulationConfig
    seed: int
    start: pd.Timestamp
    end: pd.Timestamp


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent reproducible stream per purpose (adding a stream never shifts another)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(stream.encode())])


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (rows, k) probability matrix (inverse CDF, vectorised)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


@dataclass(frozen=True)
class _World:
    """Item facts and the appeal table every draw reads."""

    labels: np.ndarray  # label code per item
    is_basic: np.ndarray
    style: np.ndarray
    launch: np.ndarray  # day of launch (float; -inf for basics)
    order: np.ndarray  # item indices sorted by (label, style)
    label_range: np.ndarray  # (n_labels, 2) [lo, hi) in sorted order
    ls_range: np.ndarray  # (n_labels, n_styles, 2)
    cum: np.ndarray  # (n_bands * n_steps, n_items) row-normalised cumulative appeal in sorted order, + row id
    raw_total: np.ndarray  # (n_bands * n_steps, n_items) unnormalised cumulative appeal in sorted order
    step_days: int
    n_steps: int
    companions: np.ndarray  # (n_items, outfit_size - 1), -1 = none
    band_taste: np.ndarray  # (n_bands, n_labels)


def _build_world(labels_text: np.ndarray, days: int, seed: int, cfg: SimulationConfig) -> _World:
    n = len(labels_text)
    classes, lab = np.unique(labels_text.astype(str), return_inverse=True)
    n_labels, n_bands = len(classes), len(AGE_BANDS)
    rng = _rng(seed, "items")
    basic_p = np.where(
        np.isin(classes, list(cfg.basic_labels)), cfg.basic_share_in_basic_labels, cfg.basic_share_other
    )
    is_basic = rng.random(n) < basic_p[lab]
    style = rng.integers(0, cfg.n_styles, size=n)
    back = rng.random(n) < cfg.back_catalogue_share
    launch = np.where(back, -rng.uniform(0, 3 * cfg.life_cycle_days, n), rng.uniform(0, days, n))
    launch = np.where(is_basic, -np.inf, launch)
    tau = rng.gamma(2.0, cfg.life_cycle_days / 2.0, n)
    appeal = np.exp(cfg.item_appeal_sigma * rng.standard_normal(n))
    band_taste = rng.dirichlet(np.full(n_labels, cfg.band_label_concentration), size=n_bands)
    band_item = np.exp(cfg.item_band_sigma * rng.standard_normal((n_bands, n)))

    step = max(1, int(np.ceil(n_bands * days * n / _MAX_APPEAL_CELLS)))
    n_steps = int(np.ceil(days / step))
    t = (np.arange(n_steps) * step + step / 2.0)[:, None]  # mid-step day
    age = t - launch[None, :]
    life = np.where(
        is_basic[None, :], 1.0, np.where(age >= 0, np.exp(-np.maximum(age, 0) / tau[None, :]), 0.0)
    )
    order = np.lexsort((style, lab))
    w = (band_taste[:, lab] * band_item * appeal)[:, None, :] * life[None, :, :]  # (bands, steps, items)
    raw = np.cumsum(w[:, :, order], axis=2).reshape(n_bands * n_steps, n)
    total = np.maximum(raw[:, -1:], 1e-300)
    cum = raw / total + 2.0 * np.arange(raw.shape[0])[:, None]

    sorted_lab, sorted_style = lab[order], style[order]
    label_range = np.stack(
        [
            np.searchsorted(sorted_lab, np.arange(n_labels)),
            np.searchsorted(sorted_lab, np.arange(n_labels), "right"),
        ],
        axis=1,
    )
    key = sorted_lab * cfg.n_styles + sorted_style
    grid = np.arange(n_labels * cfg.n_styles)
    ls_range = np.stack([np.searchsorted(key, grid), np.searchsorted(key, grid, "right")], axis=1)
    ls_range = ls_range.reshape(n_labels, cfg.n_styles, 2)

    companions = _companions(lab, style, cfg.outfit_size - 1, _rng(seed, "outfits"))
    return _World(
        labels=lab,
        is_basic=is_basic,
        style=style,
        launch=launch,
        order=order,
        label_range=label_range,
        ls_range=ls_range,
        cum=cum,
        raw_total=raw,
        step_days=step,
        n_steps=n_steps,
        companions=companions,
        band_taste=band_taste,
    )


def _companions(lab: np.ndarray, style: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` fixed companions per item: same style, another label (a few vectorised retries; -1 if none)."""
    n = len(lab)
    out = np.full((n, max(m, 0)), -1, dtype=np.int64)
    if m <= 0 or n < 2:
        return out
    by_style = np.argsort(style, kind="stable")
    lo = np.searchsorted(style[by_style], style, "left")
    hi = np.searchsorted(style[by_style], style, "right")
    for slot in range(m):
        pending = np.ones(n, dtype=bool)
        for _ in range(8):
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            cand = by_style[lo[idx] + (rng.random(idx.size) * (hi[idx] - lo[idx])).astype(np.int64)]
            taken = (out[idx, :slot] == cand[:, None]).any(axis=1) if slot else np.zeros(idx.size, bool)
            ok = (lab[cand] != lab[idx]) & ~taken
            out[idx[ok], slot] = cand[ok]
            pending[idx[ok]] = False
    return out


def _draw_items(
    world: _World,
    rng: np.random.Generator,
    band: np.ndarray,
    step: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    """One item per draw from the appeal of ``(band, step)`` restricted to sorted positions ``[lo, hi)``.

    Draws whose range has no appeal at that time widen to the whole catalogue; if nothing at all has launched
    yet the draw is meaningless and the caller drops it (see the launch filter in ``simulate_retail``).
    """
    row = band * world.n_steps + step
    raw = world.raw_total
    c_lo = np.where(lo > 0, raw[row, np.maximum(lo - 1, 0)], 0.0)
    c_hi = np.where(hi > 0, raw[row, np.maximum(hi - 1, 0)], 0.0)
    empty = c_hi - c_lo <= 0
    total = raw[row, -1]
    c_lo = np.where(empty, 0.0, c_lo) / np.maximum(total, 1e-300)
    c_hi = np.where(empty, total, c_hi) / np.maximum(total, 1e-300)
    target = 2.0 * row + c_lo + rng.random(len(row)) * (c_hi - c_lo)
    pos = np.searchsorted(world.cum.ravel(), target, side="right") - row * world.cum.shape[1]
    pos = np.clip(pos, 0, world.cum.shape[1] - 1)
    return world.order[pos]


def simulate_retail(
    catalogue: Any,
    n_customers: int = 2000,
    days: int = 56,
    seed: int = 0,
    *,
    config: SimulationConfig | None = None,
    id_prefix: str = "S",
) -> SimulatedRetail:
    """Simulate ``days`` of a fashion shop over ``catalogue`` (a ``Catalogue``, a frame with ``item_id`` and
    ``label``, or an ``(item_ids, labels)`` pair) with ``n_customers`` customers; see the module docstring.
    """
    cfg = config or SimulationConfig()
    if n_customers < 1:
        raise DataError(f"n_customers must be >= 1, got {n_customers}")
    if days < 1:
        raise DataError(f"days must be >= 1, got {days}")
    item_ids, labels_text = _items_of(catalogue)
    world = _build_world(labels_text, int(days), seed, cfg)
    start = pd.Timestamp(cfg.start).normalize()

    # customers: age band, label taste, style, staples, sign-up, activity rate (Gamma → NBD counts)
    rng = _rng(seed, "customers")
    band = rng.choice(len(AGE_BANDS), size=n_customers, p=_AGE_P)
    theta = rng.gamma(cfg.customer_label_concentration * world.band_taste[band] + 1e-3)
    theta /= theta.sum(axis=1, keepdims=True)
    cstyle = rng.integers(0, cfg.n_styles, size=n_customers)
    rate = rng.gamma(cfg.activity_shape, cfg.sessions_per_day / cfg.activity_shape, size=n_customers)
    joins = rng.random(n_customers) < cfg.new_customer_share
    signup = np.where(joins, rng.uniform(0, days, n_customers), -rng.uniform(1, 730, n_customers))
    staples = _staples(world, band, cfg, _rng(seed, "staples"))

    # sessions: NBD counts, weekday-weighted days, midday/evening times; none before sign-up
    rng = _rng(seed, "sessions")
    counts = rng.poisson(rate * days)
    cust = np.repeat(np.arange(n_customers), counts)
    dow = (start.dayofweek + np.arange(days)) % 7
    p_day = np.asarray(cfg.weekday_profile, dtype=np.float64)[dow]
    day = rng.choice(days, size=cust.size, p=p_day / p_day.sum())
    evening = rng.random(cust.size) < 0.4
    hour = np.clip(np.where(evening, rng.normal(20, 1.5, cust.size), rng.normal(13, 3, cust.size)), 0, 23.0)
    t0 = day + hour / 24.0
    keep = t0 >= signup[cust]
    cust, day, t0 = cust[keep], day[keep], t0[keep]
    step = np.minimum(day // world.step_days, world.n_steps - 1)
    n_sess = cust.size

    events: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (customer, item, type, time)

    # browsing: views (some carted, then abandoned) from the same appeal; later purchases may come back to them
    rng = _rng(seed, "browse")
    nv = rng.poisson(cfg.browse_views, n_sess) if cfg.browse_views > 0 else np.zeros(n_sess, dtype=np.int64)
    vs = np.repeat(np.arange(n_sess), nv)
    vi = _fresh(world, rng, cust[vs], band, theta, cstyle, step[vs], cfg)
    vt = t0[vs] + rng.uniform(0, 30, vs.size) / 1440
    carted = rng.random(vs.size) < cfg.p_abandoned_cart
    if cfg.with_views:
        events.append((cust[vs], vi, np.full(vs.size, 0), vt))
        events.append((cust[vs[carted]], vi[carted], np.full(int(carted.sum()), 1), vt[carted] + 1 / 1440))

    # purchase occasions: repeat a staple, or an anchor — an item viewed in an earlier session (w.p. p_consider),
    # else a fresh draw (label ~ θ, style w.p. p_style) — plus its outfit companions
    rng = _rng(seed, "purchases")
    buys = np.flatnonzero(rng.random(n_sess) < cfg.p_buy)
    has_staple = (staples[cust[buys]] >= 0).any(axis=1)
    repeat = (rng.random(buys.size) < cfg.p_repeat) & has_staple
    rb = buys[repeat]
    n_st = (staples[cust[rb]] >= 0).sum(axis=1)
    rep_items = staples[cust[rb], (rng.random(rb.size) * n_st).astype(np.int64)]
    fb = buys[~repeat]
    anchor = _fresh(world, rng, cust[fb], band, theta, cstyle, step[fb], cfg)
    anchor = _considered(anchor, cust[fb], t0[fb], cust[vs], vt, vi, days, rng, cfg)
    bought_s, bought_i = [rb, fb], [rep_items, anchor]
    for slot in range(world.companions.shape[1]):
        comp = world.companions[anchor, slot]
        ok = (comp >= 0) & (rng.random(fb.size) < cfg.p_companion)
        ok &= world.launch[np.maximum(comp, 0)] <= day[fb]
        bought_s.append(fb[ok])
        bought_i.append(comp[ok])
    ps, pi = np.concatenate(bought_s), np.concatenate(bought_i)
    ps, pi = _unique_pairs(ps, pi)
    pos = _position_in_group(ps)
    t_view = t0[ps] + pos * 2.0 / 1440
    t_cart = t_view + rng.uniform(0.5, 3.0, ps.size) / 1440
    t_buy = t_view + rng.uniform(5.0, 20.0, ps.size) / 1440
    if cfg.with_views:
        events.append((cust[ps], pi, np.full(ps.size, 0), t_view))
        events.append((cust[ps], pi, np.full(ps.size, 1), t_cart))
    events.append((cust[ps], pi, np.full(ps.size, 2), t_buy))

    c = np.concatenate([e[0] for e in events])
    it = np.concatenate([e[1] for e in events])
    ty = np.concatenate([e[2] for e in events])
    tt = np.concatenate([e[3] for e in events])
    # nothing is sold before its launch day: draws on a day when no item in range had launched yet (tiny worlds)
    # and mid-step appeal (large worlds share one appeal row per ``step_days``) would otherwise place events earlier
    launched = tt >= np.floor(world.launch[it])
    c, it, ty, tt = c[launched], it[launched], ty[launched], tt[launched]
    width = max(5, len(str(n_customers)))
    cust_ids = np.array([f"{id_prefix}{i:0{width}d}" for i in range(1, n_customers + 1)], dtype=object)
    stamp = start + pd.to_timedelta(np.round(tt * 86400), unit="s")
    frame = pd.DataFrame(
        {
            Columns.CUSTOMER_ID: cust_ids[c],
            Columns.ITEM_ID: item_ids[it],
            Columns.EVENT_TYPE: np.array(EventTypes.ALL, dtype=object)[ty],
            Columns.TIMESTAMP: stamp,
        }
    )
    customers_frame = pd.DataFrame(
        {
            Columns.CUSTOMER_ID: cust_ids,
            "age_band": np.array(AGE_BANDS, dtype=object)[band],
            "signup_date": (start + pd.to_timedelta(np.floor(signup), unit="D")).normalize(),
        }
    )
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions

    if frame.empty:
        raise DataError("the simulation produced no events: raise n_customers, days or sessions_per_day")
    items = pd.DataFrame(
        {
            Columns.ITEM_ID: item_ids,
            Columns.LABEL: labels_text,
            "is_basic": world.is_basic,
            "style": world.style,
            "launch": start + pd.to_timedelta(np.where(world.is_basic, np.nan, world.launch), unit="D"),
            "companions": [
                ";".join(item_ids[j] for j in row if j >= 0) for row in world.companions
            ],  # one string per item (catalogue-sized, not per event)
        }
    )
    return SimulatedRetail(
        customers=Customers.from_frame(customers_frame),
        interactions=Interactions.from_frame(frame),
        items=items,
        config=cfg,
        seed=int(seed),
        start=start,
        end=start + pd.Timedelta(days=int(days)),
    )


def _fresh(
    world: _World,
    rng: np.random.Generator,
    cust: np.ndarray,
    band: np.ndarray,
    theta: np.ndarray,
    cstyle: np.ndarray,
    step: np.ndarray,
    cfg: SimulationConfig,
) -> np.ndarray:
    """Items drawn from the customer's label taste, within their style w.p. ``p_style``, by band appeal that day."""
    if cust.size == 0:
        return np.empty(0, dtype=np.int64)
    label = _categorical(rng, theta[cust])
    in_style = rng.random(cust.size) < cfg.p_style
    lo = np.where(in_style, world.ls_range[label, cstyle[cust], 0], world.label_range[label, 0])
    hi = np.where(in_style, world.ls_range[label, cstyle[cust], 1], world.label_range[label, 1])
    return _draw_items(world, rng, band[cust], step, lo, hi)


def _considered(
    anchor: np.ndarray,
    cust: np.ndarray,
    t: np.ndarray,
    view_cust: np.ndarray,
    view_t: np.ndarray,
    view_item: np.ndarray,
    days: int,
    rng: np.random.Generator,
    cfg: SimulationConfig,
) -> np.ndarray:
    """Replace a share ``p_consider`` of anchors by an item the customer viewed in the ``consider_days`` before.

    Vectorised: views sorted by (customer, time); each occasion's earlier views are one ``searchsorted`` range.
    """
    if anchor.size == 0 or view_t.size == 0 or cfg.p_consider <= 0:
        return anchor
    span = float(days) + 2.0
    key = view_cust * span + view_t
    order = np.argsort(key, kind="stable")
    key, items = key[order], view_item[order]
    start = np.searchsorted(key, cust * span + np.maximum(t - cfg.consider_days, 0.0), side="left")
    stop = np.searchsorted(key, cust * span + t, side="left")  # strictly before this session started
    n = stop - start
    use = (rng.random(anchor.size) < cfg.p_consider) & (n > 0)
    pick = start + (rng.random(anchor.size) * n).astype(np.int64)
    out = anchor.copy()
    out[use] = items[pick[use]]
    return out


def _staples(world: _World, band: np.ndarray, cfg: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """``(n_customers, m)`` staple basics per customer (-1 padded), drawn by the band's appeal of basics."""
    n = band.size
    basics = np.flatnonzero(world.is_basic)
    m = int(np.ceil(3 * cfg.n_staples_mean))
    out = np.full((n, m), -1, dtype=np.int64)
    if basics.size == 0:
        return out
    k = np.minimum(1 + rng.poisson(cfg.n_staples_mean - 1, n), m)
    inv = np.empty_like(world.order)
    inv[world.order] = np.arange(world.order.size)
    step_w = np.diff(world.raw_total[np.arange(len(AGE_BANDS)) * world.n_steps], axis=1, prepend=0.0)
    for b in range(len(AGE_BANDS)):  # one vectorised draw per age band
        who = np.flatnonzero(band == b)
        p = step_w[b, inv[basics]]
        p = p / p.sum() if p.sum() > 0 else np.full(basics.size, 1.0 / basics.size)
        out[who] = basics[rng.choice(basics.size, size=(who.size, m), p=p)]
    out[np.arange(m)[None, :] >= k[:, None]] = -1
    return out


def _unique_pairs(s: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (session, item) pairs (an outfit companion equal to a repeat item is bought once)."""
    if s.size == 0:
        return s, i
    key = np.unique(np.stack([s, i], axis=1), axis=0)
    return key[:, 0], key[:, 1]


def _position_in_group(s: np.ndarray) -> np.ndarray:
    """0, 1, 2 … within each run of equal (sorted) session ids."""
    if s.size == 0:
        return s
    first = np.r_[True, s[1:] != s[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(s.size), 0))
    return np.arange(s.size) - start
