"""Customers: validation with row-numbered errors, profile columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fashion_reco.data.customers import Customers
from fashion_reco.errors import InteractionsError


def test_from_csv_parses_profile_columns(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,age_band,gender,preferred_labels,signup_date,loyalty\n"
        "17850.0,25-34,f, dress ; skirt ;,2023-05-01,gold\n"
        "13047.0,,,,2023-06-02T10:00:00+01:00,\n"
    )
    customers = Customers.from_csv(path)
    frame = customers.frame
    assert list(customers.customer_ids) == ["17850", "13047"] and len(customers) == 2
    assert list(frame.columns) == [
        "customer_id",
        "age_band",
        "gender",
        "preferred_labels",
        "signup_date",
        "loyalty",
    ]
    assert frame["preferred_labels"].tolist() == ["dress;skirt", None]
    assert customers.preferred_labels().to_dict() == {"17850": ["dress", "skirt"], "13047": []}
    assert frame["signup_date"].tolist() == [pd.Timestamp("2023-05-01"), pd.Timestamp("2023-06-02 09:00")]
    assert frame["age_band"].tolist() == ["25-34", None]
    assert list(customers.subset(["13047"]).customer_ids) == ["13047"]
    with pytest.raises(InteractionsError, match="not in the table") as info:
        customers.subset(["nobody"])
    assert info.value.customer_id == "nobody"


def test_duplicate_customer_names_both_rows(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,gender\na,f\nb,m\n a ,f\n")
    with pytest.raises(InteractionsError, match=r"duplicate customer id 'a' \(first seen in row 1\)") as info:
        Customers.from_csv(path)
    assert (info.value.file, info.value.row, info.value.column) == (path, 3, "customer_id")


def test_frame_errors_and_defaults() -> None:
    with pytest.raises(InteractionsError, match="missing required column") as info:
        Customers.from_frame(pd.DataFrame({"id": [1]}))
    assert info.value.column == "customer_id"
    with pytest.raises(InteractionsError, match="unparseable date 'soon'") as info:
        Customers(pd.DataFrame({"customer_id": [1, 2], "signup_date": ["2024-01-01", "soon"]}))
    assert (info.value.row, info.value.column) == (2, "signup_date")
    plain = Customers(pd.DataFrame({"customer_id": [1, 2]}))
    assert plain.preferred_labels().tolist() == [[], []] and repr(plain) == "Customers(2 customers)"


def test_a_date_past_2262_is_named_out_of_range_not_unparseable() -> None:
    """pandas stores nanoseconds, so year 2300 is a valid date it cannot hold: say that, not 'unparseable'."""
    with pytest.raises(InteractionsError, match=r"date outside the supported range .*'2300-01-01'") as info:
        Customers(pd.DataFrame({"customer_id": [1, 2], "signup_date": ["2024-01-01", "2300-01-01"]}))
    assert (info.value.row, info.value.column) == (2, "signup_date")
