"""Candidate sources and ranker features: the union holds every source's candidates, and features at a cut never
see the cut or anything after it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_reco.config import RankerConfig
from fashion_reco.recommend.candidates import CandidateGenerator, build_env, fit_sources
from fashion_reco.recommend.eventlog import DAY_NS, EventLog, as_ns
from fashion_reco.recommend.features import FeatureState
from fashion_reco.recommend.history import TrainData


def _world(small_world):
    customers, clicks, ctx = small_world
    frame = clicks.frame if hasattr(clicks, "frame") else clicks
    cust = customers.frame if hasattr(customers, "frame") else customers
    return frame, cust, ctx


def _state(frame: pd.DataFrame, cust: pd.DataFrame, ctx, cut: pd.Timestamp):
    data = TrainData.build(frame, item_ids=ctx.item_ids, extra_customer_ids=cust["customer_id"])
    log = EventLog.from_frame(frame, data)
    seg = cust.set_index("customer_id").reindex(data.customer_ids)["age_band"].to_numpy(object)
    env, _, _ = build_env(data.n_customers, ctx.item_labels, seg, ctx.item_embeddings, visual_k=10)
    cut_ns = as_ns(cut)
    gen = CandidateGenerator(fit_sources(log, cut_ns, env, RankerConfig()), data.n_items)
    feats = FeatureState.fit(log, cut_ns, env, gen.names)
    return data, gen, feats


def test_union_contains_every_sources_candidates(small_world) -> None:
    frame, cust, ctx = _world(small_world)
    cut = frame["timestamp"].max() - pd.Timedelta(days=7)
    data, gen, _ = _state(frame, cust, ctx, cut)
    rows = np.r_[np.arange(data.n_customers), -1]
    cs = gen.generate(rows)
    union_keys = set((cs.row * data.n_items + cs.item).tolist())
    assert len(union_keys) == len(cs)  # one entry per pair
    for s, (name, c) in enumerate(gen.generate_each(rows)):
        keys = set((c.row * data.n_items + c.item).tolist())
        assert keys <= union_keys, name
        assert np.isfinite(cs.score[:, s]).sum() == len(keys), name
        per_row = np.bincount(c.row, minlength=len(rows))
        assert per_row.max(initial=0) <= gen.sources[s].n, name
    assert set(gen.names) >= {"history", "cooccurrence", "visual", "popular", "segment_popular", "profile"}
    # the cold row (-1) still gets popularity and profile candidates
    assert (cs.row == len(rows) - 1).sum() >= 12


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_new=st.integers(1, 40),
    shift_hours=st.floats(0.0, 200.0),
    seed=st.integers(0, 10_000),
)
def test_features_ignore_events_at_or_after_the_cut(
    small_world, n_new: int, shift_hours: float, seed: int
) -> None:
    """Adding events after the cut, and changing those already there, leaves every feature identical."""
    frame, cust, ctx = _world(small_world)
    cut = frame["timestamp"].max() - pd.Timedelta(days=8)
    data, gen, feats = _state(frame, cust, ctx, cut)
    rng = np.random.default_rng(seed)
    late = frame[frame["timestamp"] >= cut].copy()
    late["item_id"] = rng.permutation(late["item_id"].to_numpy())
    late["event_type"] = rng.choice(["view", "add_to_cart", "purchase"], size=len(late))
    extra = pd.DataFrame(
        {
            "customer_id": rng.choice(frame["customer_id"].unique(), n_new),
            "item_id": rng.choice(ctx.item_ids, n_new),
            "event_type": rng.choice(["view", "add_to_cart", "purchase"], n_new),
            "timestamp": cut + pd.to_timedelta(rng.uniform(0, shift_hours, n_new), unit="h"),
        }
    )
    extra.loc[0, "timestamp"] = cut  # exactly at the cut counts as "after"
    changed = pd.concat([frame[frame["timestamp"] < cut], late, extra], ignore_index=True)
    _, gen2, feats2 = _state(changed, cust, ctx, cut)
    rows = np.r_[np.arange(data.n_customers), -1]
    a, b = gen.generate(rows), gen2.generate(rows)
    np.testing.assert_array_equal(a.row, b.row)
    np.testing.assert_array_equal(a.item, b.item)
    np.testing.assert_array_equal(a.score, b.score)
    fa, fb = feats.transform(rows, a), feats2.transform(rows, b)
    assert feats.names == feats2.names
    np.testing.assert_array_equal(fa.X, fb.X)
    np.testing.assert_array_equal(fa.closest_item, fb.closest_item)


def test_features_see_events_before_the_cut(small_world) -> None:
    """The counterpart: a purchase just before the cut does change the pair's features."""
    frame, cust, ctx = _world(small_world)
    cut = frame["timestamp"].max() - pd.Timedelta(days=8)
    before = frame[frame["timestamp"] < cut]
    c, i = before["customer_id"].iloc[0], ctx.item_ids[-1]
    extra = pd.DataFrame(
        {
            "customer_id": [c],
            "item_id": [i],
            "event_type": ["purchase"],
            "timestamp": [cut - pd.Timedelta(1, "s")],
        }
    )
    data, gen, feats = _state(before, cust, ctx, cut)
    _, gen2, feats2 = _state(pd.concat([before, extra], ignore_index=True), cust, ctx, cut)
    rows = np.arange(data.n_customers)
    X1 = pd.DataFrame(feats.transform(rows, gen.generate(rows)).X, columns=feats.names)
    cs2 = gen2.generate(rows)
    X2 = pd.DataFrame(feats2.transform(rows, cs2).X, columns=feats2.names)
    r = data.customer_rows([c])[0]
    sel = (cs2.row == r) & (cs2.item == data.item_rows([i])[0])
    assert sel.any()  # a fresh purchase is a history candidate
    assert X2.loc[sel, "ci_purchase_7d"].iloc[0] >= 1
    assert X2.loc[sel, "ci_days_since_purchase"].iloc[0] == pytest.approx(1 / 86_400)
    assert not X1.equals(X2)
    assert DAY_NS == 86_400 * 10**9
