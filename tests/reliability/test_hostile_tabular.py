"""Hostile tables: every malformed CSV gives a FashionRecoError that names the file, row and column at fault,
never another exception (named cases, then Hypothesis fuzzing of the readers)."""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.data.retail import load_online_retail
from fashion_reco.errors import CatalogueError, DataError, FashionRecoError, InteractionsError

EVENTS_HEADER = "customer_id,item_id,event_type,timestamp\n"
GOOD_EVENT = "c1,i1,view,2024-01-01 10:00:00\n"


def _interactions(path: Path) -> object:
    return Interactions.from_csv(path)


def _catalogue(path: Path) -> object:
    return Catalogue.from_manifest(path)


def _customers(path: Path) -> object:
    return Customers.from_csv(path)


def _retail(path: Path) -> object:
    return load_online_retail(path)


def _known_items(path: Path) -> object:
    return Interactions.from_csv(path).check_known(catalogue_ids=["i1", "i2"])


def _known_customers(path: Path) -> object:
    customers = Customers.from_frame(pd.DataFrame({"customer_id": ["c1", "c2"]}))
    return Interactions.from_csv(path).check_known(customer_ids=customers)


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable[[Path], object]
    content: bytes
    error: type[FashionRecoError]
    message: str
    row: int | None = None
    column: str | None = None


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


CASES = [
    Case(
        "interactions missing column",
        _interactions,
        _utf8("customer_id,item_id,timestamp\nc1,i1,2024-01-01\n"),
        InteractionsError,
        "missing required column",
        column="event_type",
    ),
    Case(
        "unparseable timestamp",
        _interactions,
        _utf8(EVENTS_HEADER + GOOD_EVENT + "c2,i2,view,2024-13-45 25:61\n"),
        InteractionsError,
        "unparseable timestamp '2024-13-45 25:61'",
        row=2,
        column="timestamp",
    ),
    Case(
        "empty timestamp",
        _interactions,
        _utf8(EVENTS_HEADER + "c1,i1,view,\n"),
        InteractionsError,
        "empty timestamp",
        row=1,
        column="timestamp",
    ),
    Case(
        "unknown event type",
        _interactions,
        _utf8(EVENTS_HEADER + GOOD_EVENT + GOOD_EVENT + "c3,i3,wishlist,2024-01-02\n"),
        InteractionsError,
        "unknown event type 'wishlist'",
        row=3,
        column="event_type",
    ),
    Case(
        "empty customer id",
        _interactions,
        _utf8(EVENTS_HEADER + GOOD_EVENT + "  ,i2,view,2024-01-02\n"),
        InteractionsError,
        "empty customer id",
        row=2,
        column="customer_id",
    ),
    Case(
        "quantity not a number",
        _interactions,
        _utf8("customer_id,item_id,event_type,timestamp,quantity\nc1,i1,purchase,2024-01-01,lots\n"),
        InteractionsError,
        "not a number: 'lots'",
        row=1,
        column="quantity",
    ),
    Case(
        "item unknown to the catalogue",
        _known_items,
        _utf8(EVENTS_HEADER + GOOD_EVENT + "c1,i9,view,2024-01-02\n"),
        InteractionsError,
        "item not in the catalogue",
        row=2,
        column="item_id",
    ),
    Case(
        "customer unknown to the customer table",
        _known_customers,
        _utf8(EVENTS_HEADER + "c7,i1,view,2024-01-03\n" + GOOD_EVENT),
        InteractionsError,
        "customer not in the customer table",
        row=1,  # the row in the file, although the log is re-sorted by time
        column="customer_id",
    ),
    Case(
        "duplicate item id",
        _catalogue,
        _utf8("item_id,image_uri\nsku-1,s3://b/1.jpg\nsku-2,s3://b/2.jpg\nsku-1,s3://b/3.jpg\n"),
        CatalogueError,
        "duplicate item id 'sku-1' (first seen in row 1)",
        row=3,
        column="item_id",
    ),
    Case(
        "missing image file",
        _catalogue,
        _utf8("item_id,image_path,label\nsku-1,{photo},dress\nsku-2,photos/missing.jpg,dress\n"),
        CatalogueError,
        "image file not found",
        row=2,
        column="image_path",
    ),
    Case(
        "no image column",
        _catalogue,
        _utf8("item_id,label\nsku-1,dress\n"),
        CatalogueError,
        "missing required column",
        column="image_path",
    ),
    Case(
        "empty item id",
        _catalogue,
        _utf8("item_id,image_uri\nsku-1,s3://b/1.jpg\n,s3://b/2.jpg\n"),
        CatalogueError,
        "empty item id",
        row=2,
        column="item_id",
    ),
    Case(
        "unknown split",
        _catalogue,
        _utf8("item_id,image_uri,split\nsku-1,s3://b/1.jpg,holdout\n"),
        CatalogueError,
        "unknown split 'holdout'",
        row=1,
        column="split",
    ),
    Case(
        "image_uri that is a bare path",
        _catalogue,
        _utf8("item_id,image_uri\nsku-1,s3://b/1.jpg\nsku-2,photos/2.jpg\n"),
        CatalogueError,
        "image_uri is not a URI",
        row=2,
        column="image_uri",
    ),
    Case(
        "UTF-16 with BOM",
        _catalogue,
        codecs.BOM_UTF16_LE + "item_id,image_uri\nsku-1,s3://b/1.jpg\n".encode("utf-16-le"),
        CatalogueError,
        "UTF-16",
    ),
    Case(
        "UTF-16 without BOM",
        _interactions,
        (EVENTS_HEADER + GOOD_EVENT).encode("utf-16-le"),
        InteractionsError,
        "NUL characters",
    ),
    Case(
        "latin-1 bytes read as UTF-8",
        _interactions,
        (EVENTS_HEADER + GOOD_EVENT + GOOD_EVENT + "café,i1,view,2024-01-01\n").encode("latin-1"),
        InteractionsError,
        "not valid utf-8 text (byte 0xe9",
        row=3,
    ),
    Case("empty file", _interactions, b"", InteractionsError, "empty file"),
    Case("whitespace-only file", _catalogue, b"  \n\n \r\n", CatalogueError, "empty file"),
    Case("header only (events)", _interactions, _utf8(EVENTS_HEADER), InteractionsError, "no events"),
    Case("header only (catalogue)", _catalogue, _utf8("item_id,image_path\n"), CatalogueError, "no items"),
    Case(
        "row with more fields than the header",
        _interactions,
        _utf8(EVENTS_HEADER + GOOD_EVENT + "c2,i2,view,2024-01-01,surprise\n"),
        InteractionsError,
        "malformed CSV",
        row=2,
    ),
    Case(
        "duplicate column name",
        _customers,
        _utf8("customer_id,gender,gender\nc1,f,m\n"),
        InteractionsError,
        "duplicate column name",
        column="gender",
    ),
    Case(
        "duplicate customer",
        _customers,
        _utf8("customer_id,age_band\n17850.0,25-34\n13047,35-44\n17850,18-24\n"),
        InteractionsError,
        "duplicate customer id '17850' (first seen in row 1)",
        row=3,
        column="customer_id",
    ),
    Case(
        "a PNG passed as CSV",
        _customers,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        InteractionsError,
        "not valid utf-8 text",
    ),
    Case(
        "online retail without CustomerID",
        _retail,
        _utf8("InvoiceNo,StockCode,Quantity,InvoiceDate\n1,10001,2,2011-01-01\n"),
        InteractionsError,
        "missing required column",
        column="CustomerID",
    ),
]


@pytest.fixture
def photo(few_photos: list[Path]) -> Path:
    return few_photos[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_named_hostile_table(case: Case, tmp_path: Path, photo: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(case.content.replace(b"{photo}", str(photo).encode()))
    with pytest.raises(case.error) as info:
        case.load(path)
    err = info.value
    message = str(err)
    assert case.message in message
    assert err.file == path and message.startswith(str(path))
    assert err.row == case.row
    if case.row is not None:
        assert f"row {case.row}" in message
    assert err.column == case.column
    if case.column is not None:
        assert f"column {case.column!r}" in message
    assert err.__cause__ is None  # no chained traceback noise


def test_file_level_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InteractionsError, match="file not found") as info:
        Interactions.from_csv(tmp_path / "nope.csv")
    assert info.value.file == tmp_path / "nope.csv"
    with pytest.raises(CatalogueError, match="is a directory") as info:
        Catalogue.from_manifest(tmp_path)
    assert info.value.file == tmp_path
    (tmp_path / "x.csv").write_text(EVENTS_HEADER + GOOD_EVENT)
    with pytest.raises(InteractionsError, match="unknown text encoding 'klingon'"):
        Interactions.from_csv(tmp_path / "x.csv", encoding="klingon")
    (tmp_path / "q.csv").write_text(EVENTS_HEADER + 'c1,"i1,view,2024-01-01\n')
    with pytest.raises(InteractionsError, match="malformed CSV") as info:
        Interactions.from_csv(tmp_path / "q.csv")
    assert info.value.file == tmp_path / "q.csv"


def test_utf16_is_readable_when_declared(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes((EVENTS_HEADER + GOOD_EVENT).encode("utf-16"))
    assert len(Interactions.from_csv(path, encoding="utf-16")) == 1


# ---------------------------------------------------------------------- fuzzing

_CELLS = st.sampled_from(
    [
        "",
        " ",
        "c1",
        "17850.0",
        "1e309",
        "-0",
        "nan",
        "NA",
        "None",
        "view",
        "PURCHASE",
        "add_to_cart",
        "click",
        "2024-01-01",
        "2024-02-30",
        "2024-01-01T10:00:00+05:30",
        "1700000000",
        "99999999999999999999",
        "a.jpg",
        "b.png",
        "s3://bucket/x.jpg",
        "../../etc/passwd",
        "train",
        "val",
        "holdout",
        "dress;skirt",
        '"quoted, comma"',
        '"unterminated',
        "é",
        "\t",
        "C536365",
        "-3",
    ]
)
_COLUMNS = st.sampled_from(
    [
        "customer_id",
        "item_id",
        "event_type",
        "timestamp",
        "quantity",
        "image_path",
        "image_uri",
        "label",
        "split",
        "signup_date",
        "preferred_labels",
        "InvoiceNo",
        "StockCode",
        "Quantity",
        "InvoiceDate",
        "CustomerID",
        "",
        "extra",
    ]
)


@st.composite
def _tables(draw: st.DrawFn) -> str:
    header = draw(st.lists(_COLUMNS, min_size=1, max_size=7))
    rows = draw(st.lists(st.lists(_CELLS, min_size=0, max_size=len(header) + 1), max_size=6))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(",".join(r) for r in [header, *rows]) + draw(st.sampled_from(["", newline]))


_LOADERS = {
    "interactions": lambda p: Interactions.from_csv(p),
    "catalogue": lambda p: Catalogue.from_manifest(p),
    "customers": lambda p: Customers.from_csv(p),
    "retail": lambda p: load_online_retail(p),
}


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / "b.png").write_bytes(b"\x89PNG")
    return folder


def _feed(folder: Path, data: bytes) -> None:
    path = folder / "table.csv"
    path.write_bytes(data)
    for name, load in _LOADERS.items():
        try:
            load(path)
        except FashionRecoError as exc:
            assert isinstance(exc, DataError), name
            assert str(path) in str(exc), (name, str(exc))


# FASHION_RECO_FUZZ_EXAMPLES=5000 for a long local run; CI keeps the suite fast
_FUZZ = settings(
    max_examples=int(os.environ.get("FASHION_RECO_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_FUZZ
@given(text=st.text(max_size=200))
def test_any_text_gives_a_result_or_a_data_error(fuzz_dir: Path, text: str) -> None:
    _feed(fuzz_dir, text.encode("utf-8", "surrogatepass"))


@_FUZZ
@given(table=_tables())
def test_any_shaped_table_gives_a_result_or_a_data_error(fuzz_dir: Path, table: str) -> None:
    _feed(fuzz_dir, table.encode("utf-8"))


@settings(_FUZZ, max_examples=max(1, _FUZZ.max_examples * 2 // 3))  # two feeds per example
@given(data=st.binary(max_size=200), encoding=st.sampled_from(["utf-8", "utf-16-le", "latin-1"]))
def test_any_bytes_give_a_result_or_a_data_error(fuzz_dir: Path, data: bytes, encoding: str) -> None:
    _feed(fuzz_dir, data)
    _feed(fuzz_dir, EVENTS_HEADER.encode(encoding) + data)
