"""Similarity queries: SQL text structure, and the DataFrame form in local testing against numpy cosine top-k."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fashion_reco.errors import IdentifierError, SnowflakeError
from fashion_reco.snowflake.sql import (
    collect_frame,
    customer_topk_frame,
    customer_topk_sql,
    profile_rows,
    similar_items_frame,
    similar_items_sql,
)
from fashion_reco.snowflake.tables import embedding_rows, write_table


def _numpy_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    ids: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    scores = q @ c.T
    if exclude is not None:
        scores = np.where(exclude, -np.inf, scores)
    order_ids = np.asarray(ids if ids is not None else [f"{i:04d}" for i in range(len(corpus))])
    # highest score first, ties by id ascending (as the SQL ORDER BY)
    order = np.lexsort((np.broadcast_to(order_ids, scores.shape), -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_similar_items_sql_structure() -> None:
    sql = similar_items_sql("reco.public.fashion_reco_image_embeddings", 5)
    assert sql.startswith("WITH scored AS (")
    assert 'FROM "RECO"."PUBLIC"."FASHION_RECO_IMAGE_EMBEDDINGS" AS q' in sql
    assert 'JOIN "RECO"."PUBLIC"."FASHION_RECO_IMAGE_EMBEDDINGS" AS c ON q."ITEM_ID" <> c."ITEM_ID"' in sql
    assert 'VECTOR_COSINE_SIMILARITY(q."EMBEDDING", c."EMBEDDING") AS "SCORE"' in sql
    window = 'ROW_NUMBER() OVER (PARTITION BY "ITEM_ID" ORDER BY "SCORE" DESC, "SIMILAR_ITEM_ID")'
    assert f'{window} AS "RANK"' in sql
    assert f"QUALIFY {window} <= 5" in sql
    assert sql.rstrip().endswith('ORDER BY "ITEM_ID", "RANK"')
    assert ";" not in sql and sql.count("(") == sql.count(")")


def test_customer_topk_sql_structure() -> None:
    sql = customer_topk_sql(
        "FASHION_RECO_CUSTOMER_PROFILES",
        "FASHION_RECO_IMAGE_EMBEDDINGS",
        12,
        exclude_table="FASHION_RECO_CLICKSTREAM",
    )
    assert (
        'FROM "FASHION_RECO_CUSTOMER_PROFILES" AS p\n  CROSS JOIN "FASHION_RECO_IMAGE_EMBEDDINGS" AS e' in sql
    )
    assert 'VECTOR_COSINE_SIMILARITY(p."EMBEDDING", e."EMBEDDING") AS "SCORE"' in sql
    assert (
        'WHERE NOT EXISTS (SELECT 1 FROM "FASHION_RECO_CLICKSTREAM" AS h WHERE h."CUSTOMER_ID" = p."CUSTOMER_ID" '
        'AND h."ITEM_ID" = e."ITEM_ID")'
    ) in sql
    assert re.search(
        r'QUALIFY ROW_NUMBER\(\) OVER \(PARTITION BY "CUSTOMER_ID" ORDER BY "SCORE" DESC, "ITEM_ID"\) '
        r"<= 12\n",
        sql,
    )
    assert "NOT EXISTS" not in customer_topk_sql("P", "E", 3)


@pytest.mark.parametrize("bad", ["emb; DROP TABLE x", 'e"mb', "a b", "a.b.c.d"])
def test_sql_rejects_unsafe_names(bad: str) -> None:
    with pytest.raises(IdentifierError):
        similar_items_sql(bad, 3)
    with pytest.raises(IdentifierError):
        customer_topk_sql("P", "E", 3, exclude_table=bad)
    with pytest.raises(IdentifierError):
        similar_items_sql("E", 3, embedding_column=bad)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_k_must_be_a_positive_integer(k: object) -> None:
    with pytest.raises(SnowflakeError, match="positive integer"):
        similar_items_sql("E", k)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def vectors() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    ids = [f"item{i:02d}" for i in range(12)]
    matrix = rng.normal(size=(12, 512)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix[5] = matrix[3]  # an exact tie for every query: broken by id
    return ids, matrix


def test_similar_items_frame_locally_equals_numpy_topk(local_session, vectors) -> None:
    ids, matrix = vectors
    write_table(local_session, "SQL_T_IMAGE_EMBEDDINGS", embedding_rows(ids, matrix))
    got = collect_frame(similar_items_frame(local_session, "SQL_T_IMAGE_EMBEDDINGS", 4))
    assert list(got.columns) == ["ITEM_ID", "SIMILAR_ITEM_ID", "SCORE", "RANK"]
    assert len(got) == 12 * 4
    order, scores = _numpy_topk(matrix, matrix, 4, exclude=np.eye(12, dtype=bool), ids=ids)
    for q, item in enumerate(ids):
        rows = got[got["ITEM_ID"] == item].sort_values("RANK")
        assert rows["RANK"].tolist() == [1, 2, 3, 4]
        assert rows["SIMILAR_ITEM_ID"].tolist() == [ids[j] for j in order[q]]
        np.testing.assert_allclose(rows["SCORE"].to_numpy(), scores[q], atol=1e-6)
    only = collect_frame(similar_items_frame(local_session, "SQL_T_IMAGE_EMBEDDINGS", 2, item_ids=["item03"]))
    assert only["ITEM_ID"].unique().tolist() == ["item03"] and only["SIMILAR_ITEM_ID"].iloc[0] == "item05"


def test_customer_topk_frame_locally_equals_numpy_topk(local_session, vectors) -> None:
    ids, matrix = vectors
    write_table(local_session, "SQL_T_IMAGE_EMBEDDINGS", embedding_rows(ids, matrix))
    events = pd.DataFrame(
        {
            "customer_id": ["ann", "ann", "ann", "bob", "bob", "cat"],
            "item_id": ["item00", "item01", "item00", "item07", "unknown-item", "unknown-item"],
            "event_type": ["view", "purchase", "add_to_cart", "view", "purchase", "view"],
            "timestamp": pd.Timestamp("2024-01-01"),
        }
    )
    profiles = profile_rows(events, ids, matrix)
    assert profiles["CUSTOMER_ID"].tolist() == ["ann", "bob"]  # cat has no embedded item: no profile
    expected_ann = 4 * matrix[0] + 5 * matrix[1]
    np.testing.assert_allclose(
        profiles["EMBEDDING"].iloc[0], expected_ann / np.linalg.norm(expected_ann), atol=1e-6
    )
    write_table(local_session, "SQL_T_CUSTOMER_PROFILES", profiles)
    seen = local_session.create_dataframe(events[["customer_id", "item_id"]].rename(columns=str.upper))
    seen.write.save_as_table("SQL_T_SEEN", mode="overwrite")

    plain = collect_frame(
        customer_topk_frame(local_session, "SQL_T_CUSTOMER_PROFILES", "SQL_T_IMAGE_EMBEDDINGS", 3)
    )
    filtered = collect_frame(
        customer_topk_frame(
            local_session, "SQL_T_CUSTOMER_PROFILES", "SQL_T_IMAGE_EMBEDDINGS", 3, exclude_table="SQL_T_SEEN"
        )
    )
    profile_matrix = np.asarray(profiles["EMBEDDING"].tolist())
    seen_mask = np.zeros((2, 12), dtype=bool)
    for c, customer in enumerate(["ann", "bob"]):
        for item in events.loc[events["customer_id"] == customer, "item_id"]:
            if item in ids:
                seen_mask[c, ids.index(item)] = True
    for frame, mask in ((plain, None), (filtered, seen_mask)):
        order, scores = _numpy_topk(profile_matrix, matrix, 3, exclude=mask, ids=ids)
        for c, customer in enumerate(["ann", "bob"]):
            rows = frame[frame["CUSTOMER_ID"] == customer].sort_values("RANK")
            assert rows["ITEM_ID"].tolist() == [ids[j] for j in order[c]]
            np.testing.assert_allclose(rows["SCORE"].to_numpy(), scores[c], atol=1e-6)
    assert not set(filtered.loc[filtered["CUSTOMER_ID"] == "ann", "ITEM_ID"]) & {"item00", "item01"}
