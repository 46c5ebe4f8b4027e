"""Interactions validation, time splits, IdMapping and the weighted / decayed interaction matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import IdMapping, Interactions
from fashion_reco.errors import InteractionsError


def _events(**overrides: list) -> pd.DataFrame:
    data = {
        "customer_id": [17850.0, 13047.0, 17850.0, 12583.0],
        "item_id": ["85123A", "71053", "85123A", "22728"],
        "event_type": ["view", "Purchase", " add_to_cart ", "view"],
        "timestamp": ["2024-03-02 10:00:00", "2024-03-01T12:00:00+02:00", "2024-03-01 09:00", "2024-03-05"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_from_frame_normalises_ids_events_and_time() -> None:
    log = Interactions.from_frame(_events(extra=["a", "b", "c", "d"]))
    frame = log.frame
    assert list(frame.columns) == ["customer_id", "item_id", "event_type", "timestamp", "extra"]
    # sorted by time; +02:00 converted to UTC and made naive
    assert (
        frame["timestamp"].tolist()
        == pd.to_datetime(
            ["2024-03-01 09:00", "2024-03-01 10:00", "2024-03-02 10:00", "2024-03-05 00:00"]
        ).tolist()
    )
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert frame["customer_id"].tolist() == ["17850", "13047", "17850", "12583"]
    assert frame["event_type"].tolist() == ["add_to_cart", "purchase", "view", "view"]
    assert frame["extra"].tolist() == ["c", "b", "a", "d"]
    assert list(log.customers) == ["12583", "13047", "17850"] and list(log.items) == [
        "22728",
        "71053",
        "85123A",
    ]
    assert len(log) == 4 and "4 events, 3 customers, 3 items" in repr(log)


def test_mapping_columns_epoch_and_tz_aware_inputs() -> None:
    frame = pd.DataFrame(
        {
            "user": [1, 2],
            "sku": ["x", "y"],
            "action": ["pageview", "transaction"],
            "timestamp": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 02:00"]).tz_localize("Europe/Paris"),
            "quantity": ["2", ""],
        }
    )
    log = Interactions.from_frame(
        frame,
        event_type_mapping={"pageview": "view", "transaction": "PURCHASE"},
        columns={"user": "customer_id", "sku": "item_id", "action": "event_type"},
    )
    assert log.frame["event_type"].tolist() == ["view", "purchase"]
    assert log.frame["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 00:00"),
        pd.Timestamp("2024-01-01 01:00"),
    ]
    assert log.frame["quantity"].iloc[0] == 2 and np.isnan(log.frame["quantity"].iloc[1])
    epoch = Interactions.from_frame(
        _events(timestamp=[1_700_000_000, 1_700_000_060, 1_700_000_120, 1_700_000_180])
    )
    assert epoch.start == pd.Timestamp("2023-11-14 22:13:20")
    with pytest.raises(InteractionsError, match="maps 'x' to 'click'") as info:
        Interactions.from_frame(_events(), event_type_mapping={"x": "click"})
    assert info.value.key == "x"


def test_from_csv_names_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_id,item_id,event_type,timestamp\n"
        "c1,i1,view,2024-01-01 10:00\n"
        "\n"  # blank lines are skipped but keep the numbering honest
        "c2,i2,click,2024-01-01 11:00\n"
    )
    with pytest.raises(InteractionsError) as info:
        Interactions.from_csv(path)
    err = info.value
    assert (err.file, err.row, err.column) == (path, 3, "event_type")
    assert str(err).startswith(f"{path}, row 3, column 'event_type': unknown event type 'click'")
    assert "event_type_mapping" in str(err)
    log = Interactions.from_csv(path, event_type_mapping={"click": "view"})
    assert len(log) == 2


def test_split_by_time_before_after() -> None:
    days = pd.date_range("2024-01-01", periods=10, freq="D")
    log = Interactions.from_frame(
        pd.DataFrame({"customer_id": "c", "item_id": "i", "event_type": "view", "timestamp": days})
    )
    train, test = log.split_by_time(3)
    assert len(train) + len(test) == 10
    assert test.frame["timestamp"].min() == pd.Timestamp("2024-01-07")  # end - 3 days, inclusive
    assert train.frame["timestamp"].max() == pd.Timestamp("2024-01-06")
    assert len(log.before("2024-01-03")) == 2 and len(log.after("2024-01-03T00:00:00+00:00")) == 8
    assert len(log.split_by_time(0.5)[1]) == 1
    with pytest.raises(InteractionsError, match="positive"):
        log.split_by_time(0)
    with pytest.raises(InteractionsError, match="not a timestamp"):
        log.before("not a date")


def test_check_known_against_catalogue_and_customers(tmp_path: Path, few_photos: list[Path]) -> None:
    catalogue = Catalogue.from_frame(
        pd.DataFrame(
            {"item_id": ["85123A", "71053", "22728"], "image_path": [str(p) for p in few_photos[:3]]}
        )
    )
    customers = Customers.from_frame(pd.DataFrame({"customer_id": ["17850", "13047"]}))
    log = Interactions.from_frame(_events())
    assert log.check_known(catalogue_ids=catalogue) is log
    with pytest.raises(InteractionsError, match=r"customer not in the customer table \(1 of 4") as info:
        log.check_known(catalogue_ids=catalogue, customer_ids=customers)
    assert (info.value.row, info.value.column, info.value.value) == (4, "customer_id", "12583")
    kept = log.check_known(catalogue_ids=["85123A"], customer_ids=customers, on_unknown="drop")
    assert kept.frame["item_id"].tolist() == ["85123A", "85123A"]


def test_id_mapping_lookup() -> None:
    mapping = IdMapping.fit(["b", "a", "b", 3.0], ["x", "y"])
    assert list(mapping.customer_ids) == ["b", "a", "3"] and mapping.shape == (3, 2)
    assert mapping.customer_index(["a", "3", "b"]).tolist() == [1, 2, 0]
    assert mapping.item_index(pd.Series(["y", "zz"]), on_unknown="minus_one").tolist() == [1, -1]
    with pytest.raises(InteractionsError, match="unknown item id") as info:
        mapping.item_index(["x", "zz"])
    assert info.value.key == "zz"


def test_interaction_matrix_weights_decay_and_duplicates() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "x", "y", "y", "z"],
            "event_type": ["view", "purchase", "view", "add_to_cart", "view"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-15", "2024-01-20"]  # z is after as_of
            ),
        }
    )
    log = Interactions.from_frame(frame)
    mapping = IdMapping.fit(["a", "b", "c"], ["x", "y", "z", "w"])
    weights = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}

    plain = mapping.interaction_matrix(log, weights)
    assert isinstance(plain, scipy.sparse.csr_matrix) and plain.shape == (3, 4) and plain.has_sorted_indices
    expected = np.zeros((3, 4))
    for row in frame.itertuples():  # independent, naive computation
        expected[mapping.customer_index([row.customer_id])[0], mapping.item_index([row.item_id])[0]] += (
            weights[row.event_type]
        )
    np.testing.assert_allclose(plain.toarray(), expected)
    assert plain.nnz == 4  # the two (a, x) events were summed

    decayed = mapping.interaction_matrix(log, weights, half_life_days=7, as_of="2024-01-15")
    expected = np.zeros((3, 4))
    for row in frame.itertuples():
        age = max((pd.Timestamp("2024-01-15") - row.timestamp).days, 0)
        expected[mapping.customer_index([row.customer_id])[0], mapping.item_index([row.item_id])[0]] += (
            weights[row.event_type] * 0.5 ** (age / 7)
        )
    np.testing.assert_allclose(decayed.toarray(), expected, rtol=1e-6)
    assert decayed[0, 0] == pytest.approx(0.25 + 2.5)

    ones = mapping.interaction_matrix(log)
    assert ones.sum() == 5
    with pytest.raises(InteractionsError, match="no weight for event type 'add_to_cart'") as info:
        mapping.interaction_matrix(log, {"view": 1.0, "purchase": 5.0})
    assert info.value.key == "add_to_cart"
    small = IdMapping.fit(["a"], ["x", "y"])
    with pytest.raises(InteractionsError, match="unknown customer id"):
        small.interaction_matrix(log, weights)
    dropped = small.interaction_matrix(log, weights, on_unknown="drop")
    assert dropped.shape == (1, 2) and dropped.sum() == pytest.approx(7.0)


def test_id_mapping_from_catalogue_order_and_large_log() -> None:
    rng = np.random.default_rng(0)
    items = np.array([f"sku-{i}" for i in range(500)], dtype=object)
    log = Interactions.from_frame(
        pd.DataFrame(
            {
                "customer_id": rng.integers(0, 2000, 50_000).astype(float),  # float ids, as pandas makes them
                "item_id": rng.choice(items, 50_000),
                "event_type": rng.choice(["view", "add_to_cart", "purchase"], 50_000),
                "timestamp": pd.Timestamp("2024-01-01")
                + pd.to_timedelta(rng.integers(0, 86400 * 30, 50_000), "s"),
            }
        )
    )
    mapping = IdMapping.from_interactions(log, item_ids=items)
    assert list(mapping.item_ids) == list(items)
    matrix = mapping.interaction_matrix(log, {"view": 1, "add_to_cart": 2, "purchase": 3}, half_life_days=10)
    assert matrix.shape == (mapping.n_customers, 500) and matrix.sum() > 0
    assert not any("." in c for c in mapping.customer_ids)


def test_csv_and_frame_agree_on_a_large_messy_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 30, n), "s")
    text = stamps.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)
    offset = rng.random(n) < 0.1  # some rows carry an offset, spelled in local time
    text[offset] = (stamps[offset] + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 3000, n).astype(float),
            "item_id": rng.integers(0, 800, n).astype(str),
            "event_type": rng.choice(["view", " View", "PURCHASE", "add_to_cart"], n),
            "timestamp": text,
        }
    )
    path = tmp_path / "events.csv"
    frame.to_csv(path, index=False)
    from_csv, from_frame = Interactions.from_csv(path), Interactions.from_frame(frame)
    pd.testing.assert_frame_equal(from_csv.frame, from_frame.frame)
    assert (from_csv.frame["timestamp"].sort_values().to_numpy() == np.sort(stamps.to_numpy())).all()
    assert not from_csv.frame["customer_id"].str.contains(".", regex=False).any()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2300-01-01 10:00:00", "timestamp outside the supported range"),
        ("1500-03-01T00:00:00+01:00", "timestamp outside the supported range"),
        ("99999999999", "timestamp outside the supported range"),  # Unix seconds in the year 5138
        ("next tuesday", "unparseable timestamp"),
    ],
)
def test_a_bad_timestamp_says_whether_it_is_out_of_range_or_not_a_date(value: str, reason: str) -> None:
    """A real date pandas cannot hold (before 1677 or after 2262) is reported as such, with its row and column."""
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "item_id": ["x", "y"],
            "event_type": ["view", "view"],
            "timestamp": ["2024-01-01", value],
        }
    )
    with pytest.raises(InteractionsError, match=reason) as info:
        Interactions.from_frame(frame)
    assert (info.value.row, info.value.column) == (2, "timestamp")


def test_headers_spelled_another_way_take_their_canonical_names() -> None:
    """Exports say 'Customer ID' or 'Event-Type'; the columns are found, and two spellings of one are refused."""
    frame = pd.DataFrame(
        {
            "Customer ID": [" 7 "],
            "ITEM_ID": ["x"],
            "event-type": ["VIEW"],
            "TimeStamp ": ["2024-01-01"],
            "Quantity": [2],
        }
    )
    log = Interactions.from_frame(frame)
    assert list(log.frame.columns[:5]) == ["customer_id", "item_id", "event_type", "timestamp", "quantity"]
    assert log.frame["customer_id"].tolist() == ["7"]
    twice = frame.assign(customer_id=["8"])
    assert Interactions.from_frame(twice).frame["customer_id"].tolist() == ["8"]  # the exact name wins
    ambiguous = frame.rename(columns={"ITEM_ID": "Item ID"}).assign(**{"item-id": ["y"]})
    with pytest.raises(InteractionsError, match="ambiguous columns 'Item ID', 'item-id'"):
        Interactions.from_frame(ambiguous)
