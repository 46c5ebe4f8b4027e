"""The fashion-retail simulator: real schemas, determinism, and each documented stylised fact measured on its output."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.data.simulation import SimulationConfig, simulate_retail
from fashion_reco.data.synthetic import AGE_BANDS
from fashion_reco.errors import DataError

LABELS = np.repeat(["dress", "hat", "pants", "shirt", "shoes", "skirt", "t-shirt", "outwear"], 60)


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"sku-{i}" for i in range(len(LABELS))], "label": LABELS})


@pytest.fixture(scope="module")
def sim(catalogue):
    return simulate_retail(catalogue, n_customers=3000, days=56, seed=7)


def _purchases(sim) -> pd.DataFrame:
    f = sim.interactions.frame
    return f[f[Columns.EVENT_TYPE] == EventTypes.PURCHASE].sort_values(Columns.TIMESTAMP, kind="stable")


def test_output_uses_the_real_schemas_over_the_catalogue(sim, catalogue):
    assert isinstance(sim.interactions, Interactions) and isinstance(sim.customers, Customers)
    f = sim.interactions.frame
    assert {Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP} <= set(f.columns)
    assert set(f[Columns.ITEM_ID]) <= set(catalogue["item_id"])
    assert set(f[Columns.EVENT_TYPE]) == set(EventTypes.ALL)
    assert set(f[Columns.CUSTOMER_ID]) <= set(sim.customers.customer_ids)
    assert set(sim.customers.frame["age_band"]) <= set(AGE_BANDS)
    assert (f[Columns.TIMESTAMP] >= sim.start).all() and (f[Columns.TIMESTAMP] < sim.end).all()


def test_same_seed_same_log_other_seed_other_log(catalogue):
    a = simulate_retail(catalogue, n_customers=300, days=14, seed=1).interactions.frame
    b = simulate_retail(catalogue, n_customers=300, days=14, seed=1).interactions.frame
    c = simulate_retail(catalogue, n_customers=300, days=14, seed=2).interactions.frame
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_customer_activity_is_heavy_tailed_nbd(sim):
    """Fact 1: purchase counts are over-dispersed (variance ≫ mean) and a fifth of buyers make most purchases."""
    f = sim.interactions.frame
    sessions = f.groupby(Columns.CUSTOMER_ID)[Columns.TIMESTAMP].apply(lambda s: s.dt.floor("h").nunique())
    counts = sessions.reindex(sim.customers.customer_ids, fill_value=0).to_numpy(float)
    assert counts.var() > 3 * counts.mean()
    assert (counts == 0).mean() > 0.2  # many customers do nothing in the window
    top = np.sort(counts)[::-1][: len(counts) // 5].sum()
    assert top / counts.sum() > 0.5


def test_basics_are_repurchased_fashion_items_rarely(sim):
    """Fact 2: repeat purchases concentrate on basics."""
    p = _purchases(sim)
    repeat = p.duplicated([Columns.CUSTOMER_ID, Columns.ITEM_ID]).to_numpy()
    basic = p[Columns.ITEM_ID].map(sim.items.set_index(Columns.ITEM_ID)["is_basic"]).to_numpy(bool)
    assert 0.03 < repeat.mean() < 0.4
    assert (
        repeat[basic].mean() > 2.5 * repeat[~basic].mean()
    )  # small catalogue: chance re-buys of fashion items


def test_new_arrivals_never_sell_before_launch_and_sell_young(sim):
    """Fact 3: no event for an item before its launch; fashion purchases happen mostly within weeks of launch."""
    f = sim.interactions.frame
    launch = f[Columns.ITEM_ID].map(sim.items.set_index(Columns.ITEM_ID)["launch"])
    known = launch.notna()
    assert (f.loc[known, Columns.TIMESTAMP] >= launch[known].dt.floor("D")).all()
    p = _purchases(sim)
    age = (
        p[Columns.TIMESTAMP] - p[Columns.ITEM_ID].map(sim.items.set_index(Columns.ITEM_ID)["launch"])
    ).dropna()
    assert age.dt.days.median() < 2 * sim.config.life_cycle_days


def test_weekday_profile_shapes_volume(catalogue):
    """Fact 4: a closed day has no events; otherwise volumes follow the profile."""
    profile = (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 2.0)
    s = simulate_retail(catalogue, 2000, 28, seed=3, config=SimulationConfig(weekday_profile=profile))
    dow = s.interactions.frame[Columns.TIMESTAMP].dt.dayofweek.value_counts()
    assert 5 not in dow.index
    assert dow[6] > 1.5 * dow[[0, 1, 2, 3, 4]].mean()


def test_outfit_companions_are_bought_together(sim):
    """Fact 5: an item's fixed companions share its basket far more often than random items of other labels."""
    p = _purchases(sim)
    basket = p[Columns.CUSTOMER_ID] + "@" + p[Columns.TIMESTAMP].dt.floor("h").astype(str)
    pairs = p.assign(b=basket)[["b", Columns.ITEM_ID]]
    co = pairs.merge(pairs, on="b")
    co = co[co[f"{Columns.ITEM_ID}_x"] != co[f"{Columns.ITEM_ID}_y"]]
    comp = sim.items.set_index(Columns.ITEM_ID)["companions"].str.split(";")
    is_comp = [
        y in comp[x] for x, y in zip(co[f"{Columns.ITEM_ID}_x"], co[f"{Columns.ITEM_ID}_y"], strict=True)
    ]
    # a random other item is a companion with probability about (outfit_size - 1) / n_items
    assert np.mean(is_comp) > 20 * (sim.config.outfit_size - 1) / len(sim.items)


def test_age_bands_buy_different_labels(sim):
    """Fact 6: label shares differ between age bands (total variation distance)."""
    p = _purchases(sim)
    band = p[Columns.CUSTOMER_ID].map(sim.customers.frame.set_index(Columns.CUSTOMER_ID)["age_band"])
    label = p[Columns.ITEM_ID].map(sim.items.set_index(Columns.ITEM_ID)[Columns.LABEL])
    shares = pd.crosstab(band, label, normalize="index")
    tv = 0.5 * np.abs(shares.to_numpy()[:, None, :] - shares.to_numpy()[None, :, :]).sum(axis=2)
    assert tv[np.triu_indices(len(shares), 1)].mean() > 0.15


def test_every_purchase_follows_its_view_and_cart(sim):
    """Fact 7: the funnel — a purchase is preceded by a view and a cart of the same item by the same customer."""
    f = sim.interactions.frame
    key = [Columns.CUSTOMER_ID, Columns.ITEM_ID]
    first = f.groupby([*key, Columns.EVENT_TYPE])[Columns.TIMESTAMP].min().unstack()
    bought = first[EventTypes.PURCHASE].notna()
    assert (first.loc[bought, EventTypes.VIEW] <= first.loc[bought, EventTypes.PURCHASE]).all()
    assert (first.loc[bought, EventTypes.ADD_TO_CART] <= first.loc[bought, EventTypes.PURCHASE]).all()
    views = (f[Columns.EVENT_TYPE] == EventTypes.VIEW).sum()
    assert views > 3 * (f[Columns.EVENT_TYPE] == EventTypes.PURCHASE).sum()


def test_no_event_before_signup(sim):
    f = sim.interactions.frame
    signup = f[Columns.CUSTOMER_ID].map(sim.customers.frame.set_index(Columns.CUSTOMER_ID)["signup_date"])
    assert (f[Columns.TIMESTAMP] >= signup).all()


def test_purchases_only_mode(catalogue):
    s = simulate_retail(catalogue, 300, 14, seed=0, config=SimulationConfig(with_views=False))
    assert set(s.interactions.frame[Columns.EVENT_TYPE]) == {EventTypes.PURCHASE}


def test_the_process_never_imports_scoring_code():
    """The generator must not share machinery with the models it is used to judge."""
    import fashion_reco.data.simulation as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in names if m.startswith(("fashion_reco.recommend", "fashion_reco.model"))]


def test_bad_arguments_are_clear_errors(catalogue):
    with pytest.raises(DataError, match="n_customers"):
        simulate_retail(catalogue, 0)
    with pytest.raises(DataError, match="days"):
        simulate_retail(catalogue, 10, days=0)
    with pytest.raises(ValueError, match="weekday_profile"):
        SimulationConfig(weekday_profile=(1.0, 1.0))


@settings(max_examples=15, deadline=None)
@given(
    n_items=st.integers(2, 40),
    n_labels=st.integers(1, 5),
    n_customers=st.integers(20, 200),
    days=st.integers(1, 30),
    seed=st.integers(0, 2**31 - 1),
)
def test_invariants_hold_for_any_small_world(n_items, n_labels, n_customers, days, seed):
    """Any catalogue size, label count and window: ids from the inputs, times in the window, funnel order."""
    labels = np.array([f"l{i % n_labels}" for i in range(n_items)])
    cat = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "label": labels})
    cfg = SimulationConfig(sessions_per_day=0.5)
    try:
        s = simulate_retail(cat, n_customers, days, seed, config=cfg)
    except DataError as exc:  # tiny worlds may legitimately produce nothing
        assert "no events" in str(exc)
        return
    f = s.interactions.frame
    assert set(f[Columns.ITEM_ID]) <= set(cat["item_id"])
    assert (f[Columns.TIMESTAMP] >= s.start).all() and (f[Columns.TIMESTAMP] < s.end).all()
    launch = f[Columns.ITEM_ID].map(s.items.set_index(Columns.ITEM_ID)["launch"])
    assert (f.loc[launch.notna(), Columns.TIMESTAMP] >= launch.dropna().dt.floor("D")).all()


def _bought_after_earlier_view(s) -> float:
    """Share of purchases whose item the customer had viewed at least an hour before the purchase."""
    f = s.interactions.frame
    p = f[f[Columns.EVENT_TYPE] == EventTypes.PURCHASE]
    v = f[f[Columns.EVENT_TYPE] == EventTypes.VIEW]
    first_view = (
        v.groupby([Columns.CUSTOMER_ID, Columns.ITEM_ID])[Columns.TIMESTAMP].min().rename("first_view")
    )
    m = p.join(first_view, on=[Columns.CUSTOMER_ID, Columns.ITEM_ID])
    return float((m["first_view"] < m[Columns.TIMESTAMP] - pd.Timedelta(hours=1)).mean())


def test_purchases_come_back_to_items_viewed_in_earlier_visits(catalogue):
    """Fact 8: consideration — with p_consider > 0 many purchases follow an earlier session's view of the item."""
    shares = [
        _bought_after_earlier_view(
            simulate_retail(catalogue, 2000, 28, seed=5, config=SimulationConfig(p_consider=p))
        )
        for p in (0.0, 0.3, 1.0)
    ]
    assert (
        shares[0] + 0.03 < shares[1] < shares[2] - 0.1
    )  # chance re-views (small catalogue) < default < always
