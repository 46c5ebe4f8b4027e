"""The report's templates autoescape everything that comes from data: ids, labels, reasons, customers, models."""

from __future__ import annotations

import pandas as pd
import pytest

from fashion_reco.report.collect import EvaluationView, ItemLookup
from fashion_reco.report.sections import TileMaker, customers_section, evaluation_section, gallery_section
from fashion_reco.report.svg import bar_chart, line_chart
from fashion_reco.report.thumbs import ThumbnailCache

from .conftest import Node, parse

ITEM = "<script>alert('id')</script>"
NEIGHBOUR = "\"><img src=x onerror=alert('n')>"
LABEL = "<script>alert(\"label\")</script> & 'co'"
REASON = "because \"you\" liked <b>it</b> & 'more'"
CUSTOMER = "c\"1'<i>"
MODEL = "<svg onload=alert(1)>\"'"
HOSTILE = (ITEM, NEIGHBOUR, LABEL, REASON, CUSTOMER, MODEL)


@pytest.fixture
def tiles() -> TileMaker:
    items = pd.DataFrame({"item_id": [ITEM, NEIGHBOUR], "image_path": [None, None], "label": [LABEL, LABEL]})
    return TileMaker(ItemLookup(items), ThumbnailCache())


def _assert_escaped(markup: str) -> Node:
    root, errors = parse(markup)
    assert errors == [], errors
    for raw in HOSTILE:
        assert raw not in markup
    assert "<script" not in markup and "<img src=x" not in markup and "<b>it</b>" not in markup
    return root


def test_gallery_escapes_ids_and_labels_in_text_and_attributes(tiles: TileMaker) -> None:
    similar = pd.DataFrame({"item_id": [ITEM], "similar_item_id": [NEIGHBOUR], "score": [0.5], "rank": [1]})
    html = str(gallery_section(tiles, [ITEM], similar, k=1))
    root = _assert_escaped(html)
    assert "&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(&#39;n&#39;)&gt;" in html
    # the data survives intact for a reader of the DOM
    assert [f.attrs["data-item-id"] for f in root.find_all("figure")] == [ITEM, NEIGHBOUR]
    assert {s.text() for s in root.find_all("span", cls="label")} == {LABEL}


def test_customer_cards_escape_customer_ids_reasons_and_profiles(tiles: TileMaker) -> None:
    recs = pd.DataFrame(
        {"customer_id": [CUSTOMER], "item_id": [NEIGHBOUR], "score": [1.0], "rank": [1], "reason": [REASON]}
    )
    history = pd.DataFrame(
        {"item_id": [ITEM], "event_type": ["purchase"], "timestamp": [pd.Timestamp("2024-01-01")]}
    )
    html = str(
        customers_section(
            tiles,
            [CUSTOMER],
            {CUSTOMER: history},
            {CUSTOMER: 1},
            recs,
            {CUSTOMER: {"gender": LABEL}},
            k=1,
            history_limit=1,
        )
    )
    root = _assert_escaped(html)
    (card,) = root.find_all("article")
    assert card.attrs["data-customer-id"] == CUSTOMER
    (reason,) = root.find_all("span", cls="reason")
    assert reason.text() == REASON and reason.attrs["title"] == REASON


def test_evaluation_table_and_charts_escape_model_names() -> None:
    table = pd.DataFrame({"model": ["blend", MODEL], "ndcg": [0.2, 0.1], "k": [4, 4]})
    by_k = pd.concat([table, table.assign(k=8)], ignore_index=True)
    view = EvaluationView(table=table, metrics=["ndcg"], info=[], highlight="blend", k=4.0, by_k=by_k)
    html = str(evaluation_section(view))
    root = _assert_escaped(html)
    assert MODEL in {tr.attrs.get("data-model") for tr in root.find_all("tr")}
    assert MODEL in {r.attrs.get("data-model") for r in root.find_all("rect")}
    assert MODEL in {p.attrs.get("data-model") for p in root.find_all("polyline")}


def test_charts_escape_metric_and_title() -> None:
    colours = {MODEL: "#000"}
    bar = str(bar_chart(MODEL, {MODEL: 0.5}, colours=colours, title=LABEL))
    line = str(line_chart(MODEL, {MODEL: [(1.0, 0.5), (2.0, 0.25)]}, colours=colours, title=LABEL))
    for svg in (bar, line):
        _assert_escaped(svg)
