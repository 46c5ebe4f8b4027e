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
    """The small world's events, each with a price paid (``unit_price``, as the Online Retail loader names it)."""
    customers, clicks, ctx = small_world
    frame = (clicks.frame if hasattr(clicks, "frame") else clicks).copy()
    frame["unit_price"] = np.round(np.random.default_rng(0).uniform(5, 80, len(frame)), 2)
    cust = customers.frame if hasattr(customers, "frame") else customers
    return frame, cust, ctx


def _catalogue_prices(ctx) -> np.ndarray:
    """A catalogue price for every other item (NaN for the rest: their price comes from the log)."""
    prices = np.round(np.random.default_rng(1).uniform(10, 60, len(ctx.item_ids)), 2)
    prices[1::2] = np.nan
    return prices


def _state(frame: pd.DataFrame, cust: pd.DataFrame, ctx, cut: pd.Timestamp, prices: bool = True):
    data = TrainData.build(frame, item_ids=ctx.item_ids, extra_customer_ids=cust["customer_id"])
    log = EventLog.from_frame(frame, data)
    seg = cust.set_index("customer_id").reindex(data.customer_ids)["age_band"].to_numpy(object)
    env, _, _ = build_env(
        data.n_customers,
        ctx.item_labels,
        seg,
        ctx.item_embeddings,
        visual_k=10,
        item_prices=_catalogue_prices(ctx) if prices else None,
    )
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
    late["unit_price"] = rng.uniform(0, 1000, len(late))  # prices after the cut must not move price features
    extra = pd.DataFrame(
        {
            "customer_id": rng.choice(frame["customer_id"].unique(), n_new),
            "item_id": rng.choice(ctx.item_ids, n_new),
            "event_type": rng.choice(["view", "add_to_cart", "purchase"], n_new),
            "timestamp": cut + pd.to_timedelta(rng.uniform(0, shift_hours, n_new), unit="h"),
            "unit_price": rng.uniform(0, 1000, n_new),
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
    assert {"item_price", "cust_price_mean", "cust_price_median", "item_price_rel"} <= set(feats.names)
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


def test_price_features_follow_the_catalogue_then_the_log_and_the_customers_own_prices(small_world) -> None:
    """Item price: the catalogue's where it has one, else the median paid before the cut; customer: mean and median
    price of their events before the cut; relative price: item price / the customer's median."""
    frame, cust, ctx = _world(small_world)
    cut = frame["timestamp"].max() - pd.Timedelta(days=8)
    data, gen, feats = _state(frame, cust, ctx, cut)
    rows = np.arange(data.n_customers)
    cs = gen.generate(rows)
    X = pd.DataFrame(feats.transform(rows, cs).X, columns=feats.names)
    before = frame[frame["timestamp"] < cut]
    catalogue = pd.Series(_catalogue_prices(ctx), index=ctx.item_ids)
    event_price = before["unit_price"]  # every event has its own price here
    from_log = event_price.groupby(before["item_id"]).median()
    expected_item = catalogue.fillna(from_log).reindex(data.item_ids[cs.item]).to_numpy()
    np.testing.assert_allclose(X["item_price"], expected_item, rtol=1e-5)
    by_cust = event_price.groupby(before["customer_id"])
    ids = data.customer_ids[rows[cs.row]]
    np.testing.assert_allclose(X["cust_price_mean"], by_cust.mean().reindex(ids).to_numpy(), rtol=1e-5)
    median = by_cust.median().reindex(ids).to_numpy()
    np.testing.assert_allclose(X["cust_price_median"], median, rtol=1e-5)
    np.testing.assert_allclose(X["item_price_rel"], expected_item / median, rtol=1e-4)


def test_without_prices_there_are_no_price_features(small_world) -> None:
    frame, cust, ctx = _world(small_world)
    cut = frame["timestamp"].max() - pd.Timedelta(days=8)
    data, gen, feats = _state(frame.drop(columns="unit_price"), cust, ctx, cut, prices=False)
    assert not any("price" in n for n in feats.names)
    rows = np.arange(data.n_customers)
    assert feats.transform(rows, gen.generate(rows)).X.shape[1] == len(feats.names)


def test_online_retail_unit_prices_become_price_features(retail_log) -> None:
    """The real log's ``UnitPrice`` (loaded as ``unit_price``) feeds the price features with no catalogue."""
    frame = retail_log.frame
    data = TrainData.build(frame)
    events = EventLog.from_frame(frame, data)
    assert events.price is not None and np.isfinite(events.price).mean() > 0.99
    env, _, _ = build_env(data.n_customers, None, None, None)
    cut = as_ns(frame["timestamp"].max()) - DAY_NS
    feats = FeatureState.fit(events, cut, env, ())
    assert "item_price" in feats.names and feats.item_price is not None
    sold = np.unique(events.before(cut).item)
    assert np.isfinite(feats.item_price[sold]).all() and (feats.item_price[sold] >= 0).all()


def test_fit_context_takes_the_catalogues_price_column_and_names_a_bad_price() -> None:
    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.errors import FashionRecoWarning, RecommendError
    from fashion_reco.recommend.base import FitContext

    table = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "label": ["shirt", "dress", "shirt"],
            "image_path": ["a.jpg", "b.jpg", "c.jpg"],
            "price": [19.99, None, 5.0],
        }
    )
    ctx = FitContext.from_catalogue(Catalogue.from_frame(table, check_files=False))
    np.testing.assert_array_equal(ctx.item_prices, [19.99, np.nan, 5.0])
    bare = FitContext.from_catalogue(Catalogue.from_frame(table.drop(columns="price"), check_files=False))
    assert bare.item_prices is None
    texts = table.assign(
        price=["12.99 EUR", "8", None]
    )  # a catalogue keeps text prices; no price features then
    with pytest.warns(FashionRecoWarning, match="not numeric"):
        assert FitContext.from_catalogue(Catalogue.from_frame(texts, check_files=False)).item_prices is None
    with pytest.raises(RecommendError, match="non-negative") as err:
        FitContext(item_ids=np.array(["a", "b"]), item_prices=np.array([3.0, -1.0])).validated()
    assert err.value.context["row"] == 2 and err.value.context["column"] == "price"
    with pytest.raises(RecommendError, match="2 entries but there are 3"):
        FitContext(item_ids=np.array(["a", "b", "c"]), item_prices=np.array([1.0, 2.0])).validated()


def test_the_precomputed_collaborative_table_serves_what_scoring_per_call_would(small_world) -> None:
    """The served model reads every customer's collaborative top-n from a table built in fit; rows, items and ranks
    equal the per-call computation (scores to float rounding: the products run in different block shapes)."""
    pytest.importorskip("implicit")
    from fashion_reco.recommend.candidates import CollaborativeSource

    frame, cust, ctx = _world(small_world)
    cut = frame["timestamp"].max() - pd.Timedelta(days=3)
    _, gen, _ = _state(frame, cust, ctx, cut)
    source = next(s for s in gen.sources if isinstance(s, CollaborativeSource))
    table = source.with_table()
    assert source.table_items is None and table.table_items is not None
    assert table.table_items.shape == (len(source.user_factors), source.n)
    rows = np.r_[-1, np.arange(len(source.user_factors))[::-1], 3]  # cold, reversed, repeated
    a, b = source.generate(rows), table.generate(rows)
    assert len(a) > 0
    np.testing.assert_array_equal(a.row, b.row)
    np.testing.assert_array_equal(a.item, b.item)
    np.testing.assert_array_equal(a.rank, b.rank)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-5, atol=1e-6)
    assert table.with_table() is table
