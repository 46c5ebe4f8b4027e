"""'More like this' inside the warehouse: same-label candidates scored with VECTOR_COSINE_SIMILARITY."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fashion_reco.errors import IdentifierError, SnowflakeError
from fashion_reco.snowflake.sql import (
    collect_frame,
    more_like_this_frame,
    more_like_this_function_sql,
    more_like_this_view_sql,
)
from fashion_reco.snowflake.tables import catalogue_rows, embedding_rows, write_table

K = 3


@pytest.fixture(scope="module")
def items(local_session) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    labels = ["dress"] * 7 + ["hat"] * 5 + ["shoes"] * 4 + ["bag"]  # the lone bag has no candidate
    frame = pd.DataFrame({"item_id": [f"i{n:02d}" for n in range(len(labels))], "label": labels})
    vectors = rng.normal(size=(len(frame), 512))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[3] = vectors[1]  # an exact tie inside "dress", broken by id
    write_table(local_session, "MLT_CATALOGUE", catalogue_rows(frame), spec="CATALOGUE")
    write_table(local_session, "MLT_EMB", embedding_rows(frame["item_id"], vectors), spec="IMAGE_EMBEDDINGS")
    return frame.assign(vector=list(vectors))


def _numpy_more_like_this(items: pd.DataFrame, k: int) -> pd.DataFrame:
    rows = []
    matrix = np.stack(items["vector"].to_numpy())
    for q, (qid, qlabel) in enumerate(zip(items["item_id"], items["label"], strict=True)):
        same = [c for c in range(len(items)) if items["label"][c] == qlabel and c != q]
        scored = sorted((-float(matrix[q] @ matrix[c]), items["item_id"][c]) for c in same)[:k]
        rows += [(qid, cid, -s, r) for r, (s, cid) in enumerate(scored, start=1)]
    return pd.DataFrame(rows, columns=["ITEM_ID", "SIMILAR_ITEM_ID", "SCORE", "RANK"])


def test_frame_equals_numpy_within_label(local_session, items: pd.DataFrame) -> None:
    got = collect_frame(more_like_this_frame(local_session, "MLT_CATALOGUE", "MLT_EMB", K))
    want = _numpy_more_like_this(items, K)
    merged = want.merge(got, on=["ITEM_ID", "RANK"], suffixes=("_w", "_g"))
    assert len(merged) == len(want) == len(got) == 3 * 7 + 3 * 5 + 3 * 4  # the bag gets nothing
    assert (merged["SIMILAR_ITEM_ID_w"] == merged["SIMILAR_ITEM_ID_g"]).all()
    assert np.allclose(merged["SCORE_w"], merged["SCORE_g"], atol=1e-9)
    label = dict(zip(items["item_id"], items["label"], strict=True))
    assert (got["ITEM_ID"].map(label) == got["SIMILAR_ITEM_ID"].map(label)).all()


def test_frame_for_some_items_only(local_session, items: pd.DataFrame) -> None:
    got = collect_frame(more_like_this_frame(local_session, "MLT_CATALOGUE", "MLT_EMB", 2, item_ids=["i08"]))
    assert list(got["ITEM_ID"]) == ["i08", "i08"] and list(got["RANK"]) == [1, 2]


def test_view_and_function_sql_join_on_label_never_cross_join() -> None:
    view = more_like_this_view_sql("reco.more_like_this", "reco.catalogue", "reco.emb", 10)
    assert view.startswith('CREATE OR REPLACE VIEW "RECO"."MORE_LIKE_THIS"\n  COPY GRANTS\nAS\n')
    assert 'JOIN "RECO"."CATALOGUE" AS c ON c."LABEL" = q."LABEL" AND c."ITEM_ID" <> q."ITEM_ID"' in view
    assert "CROSS JOIN" not in view.upper()
    assert 'VECTOR_COSINE_SIMILARITY(qe."EMBEDDING", ce."EMBEDDING")' in view
    assert 'ORDER BY "SCORE" DESC, "SIMILAR_ITEM_ID") <= 10' in view
    function = more_like_this_function_sql("more_like_this", "catalogue", "emb")
    assert '"MORE_LIKE_THIS"("QUERY_ITEM" VARCHAR, "K" NUMBER)\n  COPY GRANTS\n  RETURNS TABLE' in function
    assert 'WHERE q."ITEM_ID" = "QUERY_ITEM"' in function and '<= "K"' in function
    assert "CROSS JOIN" not in function.upper()
    with pytest.raises(IdentifierError):
        more_like_this_view_sql("v; DROP TABLE x", "c", "e", 3)
    with pytest.raises(SnowflakeError, match="k must be"):
        more_like_this_view_sql("v", "c", "e", 0)
