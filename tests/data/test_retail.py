"""load_online_retail on the real UCI purchase log, checked against an independent pandas computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco.data.retail import load_online_retail
from fashion_reco.errors import InteractionsError


def test_real_file_counts_match_an_independent_computation(online_retail_csv: Path) -> None:
    interactions, report = load_online_retail(online_retail_csv)

    raw = pd.read_csv(online_retail_csv, dtype={"InvoiceNo": str, "StockCode": str})  # pandas' own inference
    cancelled = raw["InvoiceNo"].str.startswith("C")
    no_customer = raw["CustomerID"].isna() & ~cancelled
    non_positive = (raw["Quantity"] <= 0) & ~cancelled & ~no_customer
    product = raw["StockCode"].str.strip().str.fullmatch(r"\d{5}[A-Za-z]{0,3}")
    unknown = ~product & ~cancelled & ~no_customer & ~non_positive
    kept = raw[~cancelled & ~no_customer & ~non_positive & ~unknown]

    assert report.rows == len(raw) == 10_000
    assert report.cancellations == int(cancelled.sum()) == 100
    assert report.missing_customer == int(no_customer.sum())
    assert report.non_positive_quantity == int(non_positive.sum())
    assert report.unknown_stock_code == int(unknown.sum())
    assert report.kept == len(kept) == len(interactions)
    assert report.dropped == 10_000 - len(kept)
    assert report.encoding == "utf-8"
    assert set(report.dropped_stock_codes) <= {"POST", "M", "D", "C2", "DOT", "BANK CHARGES"}

    frame = interactions.frame
    assert (frame["event_type"] == "purchase").all() and (frame["quantity"] > 0).all()
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].min() == pd.Timestamp("2010-12-01 08:26:00")
    assert frame["timestamp"].max() == pd.Timestamp("2010-12-05 16:24:00")
    expected_customers = sorted({str(int(c)) for c in kept["CustomerID"]})
    assert list(interactions.customers) == expected_customers
    assert "17850" in expected_customers and not any("." in c for c in interactions.customers)
    assert frame["quantity"].sum() == kept["Quantity"].sum()
    assert np.isclose(frame["unit_price"].sum(), kept["UnitPrice"].sum())

    some_items = kept["StockCode"].iloc[:100].tolist()
    with pytest.raises(InteractionsError, match="item not in the catalogue") as info:
        interactions.check_known(catalogue_ids=some_items)
    bad_row = info.value.row  # a row number in the CSV itself, after cleaning and sorting
    assert info.value.file == online_retail_csv
    assert raw["StockCode"].iloc[bad_row - 1] == info.value.value and info.value.value not in some_items


def test_latin1_file_falls_back_and_keeps_text(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    text = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,10001,CAFÉ MUG,2,2011-01-02 10:00:00,1.5,12345.0,Côte d'Ivoire\n"
        "C2,10001,CAFÉ MUG,-2,2011-01-02 11:00:00,1.5,12345.0,Côte d'Ivoire\n"
        "3,10002,PLATE,0,2011-01-02 12:00:00,1.5,12345.0,France\n"
        "4,POST,POSTAGE,1,2011-01-02 12:00:00,18,12345.0,France\n"
        "5,10003,BOWL,1,2011-01-03 12:00:00,2,,France\n"
    )
    path.write_bytes(text.encode("latin-1"))
    interactions, report = load_online_retail(path)
    assert report.encoding == "latin-1"
    assert (report.cancellations, report.non_positive_quantity, report.unknown_stock_code) == (1, 1, 1)
    assert (report.missing_customer, report.kept) == (1, 1)
    assert interactions.frame["country"].tolist() == ["Côte d'Ivoire"]


def test_malformed_values_name_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    path.write_text(
        header + "1,10001,MUG,2,2011-01-02 10:00:00,1.5,1.0,UK\n2,10001,MUG,2,yesterday,1.5,1.0,UK\n"
    )
    with pytest.raises(InteractionsError, match="unparseable timestamp 'yesterday'") as info:
        load_online_retail(path)
    assert (info.value.file, info.value.row, info.value.column) == (path, 2, "InvoiceDate")
    path.write_text(header + "1,10001,MUG,two,2011-01-02 10:00:00,1.5,1.0,UK\n")
    with pytest.raises(InteractionsError, match="not a number: 'two'") as info:
        load_online_retail(path)
    assert (info.value.row, info.value.column) == (1, "Quantity")
    path.write_text("InvoiceNo,StockCode\n1,2\n")
    with pytest.raises(InteractionsError, match="missing required column") as info:
        load_online_retail(path)
    assert info.value.column == "Quantity"
