"""Loader for the UCI "Online Retail" purchase log (Chen, Sain & Guo 2012, CC BY 4.0) and logs in its layout.

Columns ``InvoiceNo``, ``StockCode``, ``Description``, ``Quantity``, ``InvoiceDate``, ``UnitPrice``,
``CustomerID``, ``Country``. Cleaning drops, and counts under the *first* rule that applies, in this order:

1. cancellations — ``InvoiceNo`` starting with ``C``;
2. rows without a ``CustomerID``;
3. non-positive ``Quantity`` (returns, write-offs, stock adjustments);
4. unknown stock codes — blank, or not a product code (``POST`` postage, ``DOT``, ``M`` manual, ``D`` discount,
   ``C2`` carriage, ``BANK CHARGES`` …): product codes are five digits with an optional letter suffix
   (``85123A``); pass ``product_code_pattern`` for another catalogue.

Every remaining row becomes a ``purchase`` event with its ``quantity``; ``invoice_no``, ``unit_price`` and
``country`` are kept. Malformed values (an unparseable date or quantity) raise :class:`InteractionsError` naming
the row and column instead of being dropped silently.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.data._tabular import first_row, read_csv_table, require_columns
from fashion_reco.data.interactions import QUANTITY, Interactions
from fashion_reco.data.interactions import _validate as validate_interactions
from fashion_reco.errors import InteractionsError
from fashion_reco.ids import normalise_ids

__all__ = ["PRODUCT_CODE_PATTERN", "RetailCleaningReport", "load_online_retail"]

PRODUCT_CODE_PATTERN = r"^\d{5}[A-Za-z]{0,3}$"
_REQUIRED = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID")


class RetailCleaningReport(BaseModel):
    """What :func:`load_online_retail` read, dropped (each row counted once, first rule wins) and kept."""

    model_config = ConfigDict(frozen=True)

    file: str
    encoding: str
    rows: int
    cancellations: int
    missing_customer: int
    non_positive_quantity: int
    unknown_stock_code: int
    kept: int
    dropped_stock_codes: dict[str, int]

    @property
    def dropped(self) -> int:
        return self.rows - self.kept


def load_online_retail(
    csv: str | os.PathLike[str],
    *,
    encodings: tuple[str, ...] = ("utf-8", "latin-1"),
    product_code_pattern: str = PRODUCT_CODE_PATTERN,
) -> tuple[Interactions, RetailCleaningReport]:
    """Read and clean an Online Retail CSV into purchase :class:`Interactions` plus a :class:`RetailCleaningReport`.

    The text is decoded with the first of ``encodings`` that works (UTF-8, then Latin-1: the UCI file is
    distributed in both). See the module docstring for the cleaning rules.
    """
    table = read_csv_table(csv, error_cls=InteractionsError, encoding=encodings)
    raw, rows, file = table.frame, table.rows, table.file
    require_columns(
        raw, _REQUIRED, error_cls=InteractionsError, file=file, hint="expected the Online Retail layout"
    )
    if not len(raw):
        raise InteractionsError("no rows (the file has a header only)", file=file)

    invoice = raw["InvoiceNo"].str.strip()
    stock = raw["StockCode"].str.strip()
    customer = normalise_ids(raw["CustomerID"])
    quantity_text = raw["Quantity"].str.strip()
    quantity = pd.to_numeric(quantity_text.where(quantity_text != "", None), errors="coerce")
    row = first_row(quantity.isna(), rows)
    if row is not None:
        value = raw["Quantity"].iloc[int(np.argmax(quantity.isna().to_numpy()))]
        raise InteractionsError(f"not a number: {value!r}", file=file, row=row, column="Quantity")

    cancelled = invoice.str.upper().str.startswith("C").to_numpy()
    no_customer = (customer == "").to_numpy() & ~cancelled
    left = ~cancelled & ~no_customer
    non_positive = (quantity <= 0).to_numpy() & left
    left &= ~non_positive
    unknown_code = ~stock.str.match(product_code_pattern).to_numpy() & left
    left &= ~unknown_code

    kept = pd.DataFrame(
        {
            Columns.CUSTOMER_ID: customer[left].to_numpy(dtype=object),
            Columns.ITEM_ID: stock[left].to_numpy(dtype=object),
            Columns.EVENT_TYPE: EventTypes.PURCHASE,
            Columns.TIMESTAMP: raw["InvoiceDate"][left].to_numpy(dtype=object),
            QUANTITY: quantity[left].to_numpy(),
            "invoice_no": invoice[left].to_numpy(dtype=object),
        }
    )
    if "UnitPrice" in raw:
        kept["unit_price"] = pd.to_numeric(raw["UnitPrice"][left], errors="coerce").to_numpy()
    if "Country" in raw:
        kept["country"] = raw["Country"][left].str.strip().to_numpy(dtype=object)
    if not len(kept):
        raise InteractionsError("no purchases left after cleaning (every row was dropped)", file=file)
    try:  # validated with the source rows and file, so errors and check_known point into the CSV
        frame, kept_rows = validate_interactions(kept, rows[left], file, None)
    except InteractionsError as exc:  # name the column as the CSV spells it
        names = {
            Columns.TIMESTAMP: "InvoiceDate",
            Columns.CUSTOMER_ID: "CustomerID",
            Columns.ITEM_ID: "StockCode",
        }
        context = dict(exc.context)
        column = context.get("column")
        context["column"] = names.get(column, column) if isinstance(column, str) else column
        raise InteractionsError(exc.reason, **context) from None
    interactions = Interactions._wrap(frame, kept_rows, file)

    report = RetailCleaningReport(
        file=str(file),
        encoding=table.encoding,
        rows=len(raw),
        cancellations=int(cancelled.sum()),
        missing_customer=int(no_customer.sum()),
        non_positive_quantity=int(non_positive.sum()),
        unknown_stock_code=int(unknown_code.sum()),
        kept=int(left.sum()),
        dropped_stock_codes={str(k): int(v) for k, v in stock[unknown_code].value_counts().items()},
    )
    return interactions, report
