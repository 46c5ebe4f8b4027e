"""The one id rule: every reader spells customer and item ids the same way, value by value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import IdMapping, Interactions
from fashion_reco.ids import MISSING_ID, as_id_array, is_missing_id, normalise_id, normalise_ids
from fashion_reco.recommend.history import as_id_array as history_as_id_array

MISSING = [None, np.nan, float("nan"), pd.NA, pd.NaT, "", " ", "\t\n", "NaN", "nan", "None", "null", " NULL "]

_blank = st.text(alphabet=" \t\n\r", max_size=3)
_token = st.sampled_from(["", "nan", "NaN", "NAN", "none", "None", "null", "NULL"])
_text_id = st.text(alphabet=st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=12)
_scalar = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _text_id,
    st.builds(lambda b, t, a: b + t + a, _blank, _token, _blank),
    st.booleans(),
)


@pytest.mark.parametrize("value", MISSING, ids=repr)
def test_missing_values_spell_the_empty_id(value: object) -> None:
    assert normalise_id(value) == MISSING_ID and is_missing_id(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" 17850", "17850"),
        ("17850 ", "17850"),
        (17850, "17850"),
        (17850.0, "17850"),
        (np.float32(17850.0), "17850"),
        (np.int64(17850), "17850"),
        ("17850.0", "17850"),
        ("17850.", "17850"),
        (" 17850.00 ", "17850"),
        ("007", "007"),
        ("A17850.0", "A17850.0"),
        ("1.5", "1.5"),
        (1.5, "1.5"),
        (b"sku-1", "sku-1"),
        ("Nancy", "Nancy"),
        ("nullable", "nullable"),
        (1e20, "100000000000000000000"),
    ],
    ids=repr,
)
def test_canonical_spelling(value: object, expected: str) -> None:
    assert normalise_id(value) == expected


@given(st.integers(-(2**53), 2**53))
def test_an_integer_id_has_one_spelling_however_it_arrives(n: int) -> None:
    spellings = [n, float(n), str(n), f" {n} ", str(float(n)), np.int64(n), np.float64(n)]
    assert {normalise_id(s) for s in spellings} == {str(n)}


@given(st.lists(_scalar, max_size=30))
def test_column_and_scalar_rules_agree(values: list[object]) -> None:
    """The vectorised column rule is the scalar rule applied value by value, whatever the column's mix."""
    column = normalise_ids(pd.Series(values, dtype=object))
    assert column.tolist() == [normalise_id(v) for v in values]
    assert all(isinstance(v, str) and v == v.strip() for v in column)


@given(st.lists(_scalar, max_size=30))
def test_rule_is_idempotent(values: list[object]) -> None:
    once = normalise_ids(values)
    assert normalise_ids(once).tolist() == once.tolist()


@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), max_size=30))
def test_float_columns_agree_with_the_scalar_rule(values: list[float]) -> None:
    assert normalise_ids(pd.Series(values, dtype=np.float64)).tolist() == [normalise_id(v) for v in values]


def test_a_missing_token_does_not_switch_the_rule_off_for_the_rest_of_the_column() -> None:
    assert normalise_ids(["17850.0", "NaN", "13047.0", "A1"]).tolist() == ["17850", "", "13047", "A1"]


def test_as_id_array_accepts_one_id_or_many_and_keeps_series_index() -> None:
    assert as_id_array("c1").tolist() == ["c1"] and as_id_array(17850.0).tolist() == ["17850"]
    assert as_id_array(None).tolist() == []
    assert as_id_array(pd.Index([1, 2])).tolist() == ["1", "2"]
    assert as_id_array(np.array([[1.0], [2.0]])).tolist() == ["1", "2"]
    series = pd.Series([" a", None], index=[10, 20])
    assert normalise_ids(series).index.tolist() == [10, 20]
    assert history_as_id_array is as_id_array, "the recommend layer uses the same rule"


def test_every_reader_spells_ids_the_same_way() -> None:
    raw = [" 17850", 13047.0, "12583.0"]
    expected = ["17850", "13047", "12583"]
    catalogue = Catalogue.from_frame(
        pd.DataFrame(
            {
                "item_id": raw,
                "label": ["a", "b", "c"],
                "image_uri": ["s3://b/1.jpg", "s3://b/2.jpg", "s3://b/3.jpg"],
            }
        )
    )
    customers = Customers.from_frame(pd.DataFrame({"customer_id": raw}))
    events = Interactions.from_frame(
        pd.DataFrame(
            {
                "customer_id": raw,
                "item_id": raw,
                "event_type": "view",
                "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
            }
        )
    )
    assert list(catalogue.item_ids) == expected
    assert list(customers.customer_ids) == expected
    assert sorted(events.frame["customer_id"]) == sorted(expected)
    assert sorted(events.frame["item_id"]) == sorted(expected)
    mapping = IdMapping(customer_ids=raw, item_ids=raw)
    assert mapping.customer_index([17850, " 13047 "]).tolist() == [0, 1]


def test_a_missing_customer_id_in_a_table_is_refused_naming_the_row() -> None:
    from fashion_reco.errors import InteractionsError

    with pytest.raises(InteractionsError, match="empty customer id") as info:
        Customers.from_frame(pd.DataFrame({"customer_id": ["17850", "NaN"]}))
    assert info.value.row == 2
