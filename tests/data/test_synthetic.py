"""Synthetic customers and clickstream: real schemas, determinism and the documented generative assumptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.data.synthetic import (
    AGE_BANDS,
    GENDERS,
    SyntheticConfig,
    generate_clickstream,
    generate_customers,
    generate_dataset,
)
from fashion_reco.errors import DataError

LABELS = np.repeat(["dress", "hat", "pants", "shirt", "shoes"], 30)


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"sku-{i}" for i in range(len(LABELS))], "label": LABELS})


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 16))
    code = pd.factorize(pd.Series(LABELS))[0]
    x = centres[code] + 0.5 * rng.standard_normal((len(LABELS), 16))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world(catalogue, embeddings):
    return generate_dataset(catalogue, 300, item_embeddings=embeddings, days=60, seed=3)


def test_outputs_use_the_real_schemas(world, catalogue) -> None:
    customers, clicks = world
    assert isinstance(customers, Customers) and isinstance(clicks, Interactions)
    frame = customers.frame
    assert list(frame.columns[:5]) == ["customer_id", "age_band", "gender", "preferred_labels", "signup_date"]
    assert frame["age_band"].isin(AGE_BANDS).all() and frame["gender"].isin(GENDERS).all()
    stated = frame["preferred_labels"].dropna().str.split(";").explode()
    assert stated.isin(set(LABELS)).all()
    events = clicks.frame
    assert events[Columns.EVENT_TYPE].isin(EventTypes.ALL).all()
    assert events[Columns.ITEM_ID].isin(set(catalogue["item_id"])).all()
    assert events[Columns.CUSTOMER_ID].isin(set(frame["customer_id"])).all()
    assert str(events[Columns.TIMESTAMP].dtype) == "datetime64[ns]"
    span = events[Columns.TIMESTAMP].max() - events[Columns.TIMESTAMP].min()
    assert pd.Timedelta(days=55) < span <= pd.Timedelta(days=60)
    # a real log in the same schema round-trips through the data layer unchanged
    again = Interactions.from_frame(events)
    pd.testing.assert_frame_equal(again.frame, events)


def test_seeded_and_deterministic(catalogue, embeddings, world) -> None:
    customers, clicks = generate_dataset(catalogue, 300, item_embeddings=embeddings, days=60, seed=3)
    pd.testing.assert_frame_equal(customers.frame, world[0].frame)
    pd.testing.assert_frame_equal(clicks.frame, world[1].frame)
    _, other = generate_dataset(catalogue, 300, item_embeddings=embeddings, days=60, seed=4)
    assert not other.frame.equals(clicks.frame)


def test_funnel_rates_match_the_documented_probabilities(world) -> None:
    _, clicks = world
    counts = clicks.frame[Columns.EVENT_TYPE].value_counts()
    cart_rate = counts["add_to_cart"] / counts["view"]
    buy_rate = counts["purchase"] / counts["add_to_cart"]
    assert 0.2 < cart_rate < 0.3
    assert 0.3 < buy_rate < 0.5
    # every purchase follows an add-to-cart of the same item by the same customer
    frame = clicks.frame
    carts = set(
        zip(
            frame.loc[frame.event_type == "add_to_cart", "customer_id"],
            frame.loc[frame.event_type == "add_to_cart", "item_id"],
            strict=True,
        )
    )
    buys = frame[frame.event_type == "purchase"]
    assert all(pair in carts for pair in zip(buys.customer_id, buys.item_id, strict=True))


def test_behaviour_follows_stated_preferences(world) -> None:
    """Preferred labels are derived from the latent taste, so stated labels are over-represented in behaviour."""
    customers, clicks = world
    frame = clicks.frame.merge(
        pd.DataFrame({"item_id": [f"sku-{i}" for i in range(len(LABELS))], "label": LABELS})
    )
    prefs = customers.frame.dropna(subset=["preferred_labels"])
    stated = prefs.assign(label=prefs["preferred_labels"].str.split(";")).explode("label")[
        ["customer_id", "label"]
    ]
    views = frame.groupby(["customer_id", "label"]).size().rename("n").reset_index()
    views["share"] = views["n"] / views.groupby("customer_id")["n"].transform("sum")
    on_stated = views.merge(stated, on=["customer_id", "label"])["share"].mean()
    assert on_stated > 2.0 / len(set(LABELS))


def test_visual_lookalikes_make_sessions_visually_coherent(world, embeddings) -> None:
    _, clicks = world
    frame = clicks.frame[clicks.frame.event_type == "view"].sort_values(["customer_id", "timestamp"])
    idx = frame["item_id"].str.removeprefix("sku-").astype(int).to_numpy()
    same_customer = frame["customer_id"].to_numpy()[1:] == frame["customer_id"].to_numpy()[:-1]
    gap = np.diff(frame["timestamp"].to_numpy()).astype("timedelta64[s]").astype(np.int64)
    consecutive = same_customer & (gap < 600)
    cos = np.einsum("ij,ij->i", embeddings[idx[:-1]], embeddings[idx[1:]])
    random_cos = float((embeddings @ embeddings.T).mean())
    assert cos[consecutive].mean() > random_cos + 0.2


def test_without_embeddings_and_with_a_foreign_customer_table(catalogue) -> None:
    foreign = pd.DataFrame(
        {"customer_id": ["u1", "u2", "u3"], "preferred_labels": ["hat", None, "dress;shoes"]}
    )
    clicks = generate_clickstream(
        catalogue, foreign, days=20, seed=1, config=SyntheticConfig(sessions_per_day=1.0)
    )
    frame = clicks.frame
    assert set(frame["customer_id"]) <= {"u1", "u2", "u3"} and len(frame) > 20
    hats = frame[frame.customer_id == "u1"].merge(catalogue)["label"].eq("hat").mean()
    assert hats > 0.2


def test_rejects_bad_inputs(catalogue) -> None:
    with pytest.raises(DataError):
        generate_customers(catalogue, 0)
    with pytest.raises(DataError, match="item_embeddings"):
        generate_clickstream(catalogue, generate_customers(catalogue, 3), item_embeddings=np.ones((2, 4)))
    with pytest.raises(DataError, match="item_id"):
        generate_customers(pd.DataFrame({"x": [1]}), 3)
