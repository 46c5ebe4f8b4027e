"""In-warehouse similarity: top-k similar items per item, and top-k items per customer profile vector.

Each query exists twice, with the same meaning:

* as SQL text (:func:`similar_items_sql`, :func:`customer_topk_sql`) using ``VECTOR_COSINE_SIMILARITY`` and
  ``QUALIFY ROW_NUMBER() OVER (PARTITION BY … ORDER BY "SCORE" DESC, <id>) <= k``, every identifier validated and
  quoted, for a real account (views, tasks, worksheets);
* as a Snowpark DataFrame (:func:`similar_items_frame`, :func:`customer_topk_frame`) built with
  ``call_function("VECTOR_COSINE_SIMILARITY", …)`` and a ``row_number()`` window. It runs on an account and in the
  local testing engine, where :class:`~fashion_reco.snowflake.backend.LocalTestingBackend` emulates the vector
  function (``snowflake.snowpark.mock.patch``).

Ties are broken by the candidate's id (ascending), so results are deterministic. Customer profile vectors are the
L2-normalised, event-weighted sum of the embeddings of the items a customer interacted with
(:func:`profile_rows`); the CUSTOMER_PROFILES table holds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.identifiers import quote_identifier, validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import DataFrame, Session

    from fashion_reco.data.interactions import Interactions

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "collect_frame",
    "customer_topk_frame",
    "customer_topk_sql",
    "more_like_this_frame",
    "more_like_this_function_sql",
    "more_like_this_view_sql",
    "profile_rows",
    "similar_items_frame",
    "similar_items_sql",
]

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise SnowflakeError(f"k must be a positive integer, got {k!r}", key="k")
    return int(k)


def _topk_sql(scored: str, partition: str, candidate: str, k: int) -> str:
    window = f'ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY "SCORE" DESC, {candidate})'
    return (
        f"WITH scored AS (\n{scored}\n)\n"
        f'SELECT {partition}, {candidate}, "SCORE", {window} AS "RANK"\n'
        "FROM scored\n"
        f"QUALIFY {window} <= {k}\n"
        f'ORDER BY {partition}, "RANK"'
    )


def similar_items_sql(
    embeddings_table: str,
    k: int,
    *,
    item_column: str = "ITEM_ID",
    embedding_column: str = "EMBEDDING",
) -> str:
    """Top-``k`` most similar other items for every item → ``ITEM_ID, SIMILAR_ITEM_ID, SCORE, RANK``."""
    k = _check_k(k)
    table = quote_identifier(embeddings_table, "table")
    item, emb = quote_identifier(item_column, "column"), quote_identifier(embedding_column, "column")
    scored = (
        f'  SELECT q.{item} AS "ITEM_ID", c.{item} AS "SIMILAR_ITEM_ID",\n'  # noqa: S608 - names quoted
        f'         VECTOR_COSINE_SIMILARITY(q.{emb}, c.{emb}) AS "SCORE"\n'
        f"  FROM {table} AS q\n"
        f"  JOIN {table} AS c ON q.{item} <> c.{item}"
    )
    return _topk_sql(scored, '"ITEM_ID"', '"SIMILAR_ITEM_ID"', k)


def customer_topk_sql(
    profiles_table: str,
    embeddings_table: str,
    k: int,
    *,
    exclude_table: str | None = None,
    customer_column: str = "CUSTOMER_ID",
    item_column: str = "ITEM_ID",
    embedding_column: str = "EMBEDDING",
) -> str:
    """Top-``k`` items per customer profile vector → ``CUSTOMER_ID, ITEM_ID, SCORE, RANK``.

    ``exclude_table`` (e.g. CLICKSTREAM: ``CUSTOMER_ID``, ``ITEM_ID``) removes items the customer already had.
    """
    k = _check_k(k)
    profiles = quote_identifier(profiles_table, "table")
    items = quote_identifier(embeddings_table, "table")
    cust, item = quote_identifier(customer_column, "column"), quote_identifier(item_column, "column")
    emb = quote_identifier(embedding_column, "column")
    scored = (
        f'  SELECT p.{cust} AS "CUSTOMER_ID", e.{item} AS "ITEM_ID",\n'  # noqa: S608 - names quoted
        f'         VECTOR_COSINE_SIMILARITY(p.{emb}, e.{emb}) AS "SCORE"\n'
        f"  FROM {profiles} AS p\n"
        f"  CROSS JOIN {items} AS e"
    )
    if exclude_table is not None:
        seen = quote_identifier(exclude_table, "table")
        scored += (
            f"\n  WHERE NOT EXISTS (SELECT 1 FROM {seen} AS h"  # noqa: S608 - names quoted
            f" WHERE h.{cust} = p.{cust} AND h.{item} = e.{item})"
        )
    return _topk_sql(scored, '"CUSTOMER_ID"', '"ITEM_ID"', k)


# -- DataFrame form -------------------------------------------------------------------------------------------------
def _ranked(scored: DataFrame, partition: str, candidate: str, k: int) -> DataFrame:
    from snowflake.snowpark import Window
    from snowflake.snowpark import functions as F

    window = Window.partition_by(F.col(partition)).order_by(F.col("SCORE").desc(), F.col(candidate).asc())
    return (
        scored.with_column("RANK", F.row_number().over(window))
        .filter(F.col("RANK") <= k)
        .select(partition, candidate, "SCORE", "RANK")
        .sort(F.col(partition), F.col("RANK"))
    )


def similar_items_frame(
    session: Session,
    embeddings_table: str,
    k: int,
    *,
    item_ids: Sequence[str] | None = None,
    item_column: str = "ITEM_ID",
    embedding_column: str = "EMBEDDING",
) -> DataFrame:
    """DataFrame form of :func:`similar_items_sql` (optionally only for the query items ``item_ids``)."""
    from snowflake.snowpark import functions as F

    k = _check_k(k)
    table = session.table(validate_identifier(embeddings_table, "table"))
    item, emb = validate_identifier(item_column, "column"), validate_identifier(embedding_column, "column")
    queries = table.select(F.col(item).alias("Q_ITEM"), F.col(emb).alias("Q_EMB"))
    if item_ids is not None:
        queries = queries.filter(F.col("Q_ITEM").isin(*[str(i) for i in item_ids]))
    candidates = table.select(F.col(item).alias("C_ITEM"), F.col(emb).alias("C_EMB"))
    scored = (
        queries.cross_join(candidates)
        .filter(F.col("Q_ITEM") != F.col("C_ITEM"))
        .select(
            F.col("Q_ITEM").alias("ITEM_ID"),
            F.col("C_ITEM").alias("SIMILAR_ITEM_ID"),
            F.call_function("VECTOR_COSINE_SIMILARITY", F.col("Q_EMB"), F.col("C_EMB")).alias("SCORE"),
        )
    )
    return _ranked(scored, "ITEM_ID", "SIMILAR_ITEM_ID", k)


def customer_topk_frame(
    session: Session,
    profiles_table: str,
    embeddings_table: str,
    k: int,
    *,
    exclude_table: str | None = None,
    customer_column: str = "CUSTOMER_ID",
    item_column: str = "ITEM_ID",
    embedding_column: str = "EMBEDDING",
) -> DataFrame:
    """DataFrame form of :func:`customer_topk_sql`."""
    from snowflake.snowpark import functions as F

    k = _check_k(k)
    cust, item = validate_identifier(customer_column, "column"), validate_identifier(item_column, "column")
    emb = validate_identifier(embedding_column, "column")
    profiles = session.table(validate_identifier(profiles_table, "table")).select(
        F.col(cust).alias("P_CUSTOMER"), F.col(emb).alias("P_EMB")
    )
    items = session.table(validate_identifier(embeddings_table, "table")).select(
        F.col(item).alias("E_ITEM"), F.col(emb).alias("E_EMB")
    )
    pairs = profiles.cross_join(items)
    if exclude_table is not None:
        seen = (
            session.table(validate_identifier(exclude_table, "table"))
            .select(F.col(cust).alias("H_CUSTOMER"), F.col(item).alias("H_ITEM"))
            .distinct()
        )
        pairs = pairs.join(
            seen,
            (pairs["P_CUSTOMER"] == seen["H_CUSTOMER"]) & (pairs["E_ITEM"] == seen["H_ITEM"]),
            how="leftanti",
        )
    scored = pairs.select(
        F.col("P_CUSTOMER").alias("CUSTOMER_ID"),
        F.col("E_ITEM").alias("ITEM_ID"),
        F.call_function("VECTOR_COSINE_SIMILARITY", F.col("P_EMB"), F.col("E_EMB")).alias("SCORE"),
    )
    return _ranked(scored, "CUSTOMER_ID", "ITEM_ID", k)


def collect_frame(frame: DataFrame) -> pd.DataFrame:
    """A Snowpark DataFrame's rows as pandas, via ``collect()``.

    Snowpark 1.56's local testing ``to_pandas()`` misaligns integer columns of a filtered result (NaN ranks);
    ``collect()`` is correct on both engines.
    """
    rows = frame.collect()
    return pd.DataFrame([row.as_dict() for row in rows], columns=list(frame.columns))


# -- profile vectors ------------------------------------------------------------------------------------------------
def profile_rows(
    interactions: Interactions | pd.DataFrame,
    item_ids: Sequence[Any],
    embeddings: np.ndarray,
    event_weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """CUSTOMER_PROFILES rows: per customer, the L2-normalised event-weighted sum of their items' embeddings.

    Events on items without an embedding are ignored; customers left with no usable event get no profile.
    """
    frame = interactions if isinstance(interactions, pd.DataFrame) else getattr(interactions, "frame", None)
    if not isinstance(frame, pd.DataFrame):
        raise SnowflakeError(f"expected Interactions or a DataFrame, got {type(interactions).__name__}")
    for column in (Columns.CUSTOMER_ID, Columns.ITEM_ID, Columns.EVENT_TYPE):
        if column not in frame.columns:
            raise SnowflakeError("interactions lack a required column", column=column)
    weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    matrix = np.asarray(embeddings, dtype=np.float64)
    position = pd.Series(np.arange(len(item_ids)), index=pd.Index([str(i) for i in item_ids]))
    rows = pd.DataFrame(
        {
            "customer": frame[Columns.CUSTOMER_ID].astype(str).to_numpy(),
            "item": frame[Columns.ITEM_ID].astype(str).map(position).to_numpy(),
            "weight": frame[Columns.EVENT_TYPE].astype(str).map(weights).fillna(0.0).to_numpy(),
        }
    ).dropna(subset=["item"])
    rows = rows[rows["weight"] > 0]
    customers, inverse = np.unique(rows["customer"].to_numpy(), return_inverse=True)
    profiles = np.zeros((len(customers), matrix.shape[1]))
    np.add.at(
        profiles, inverse, matrix[rows["item"].to_numpy(dtype=np.int64)] * rows["weight"].to_numpy()[:, None]
    )
    norms = np.linalg.norm(profiles, axis=1)
    keep = norms > 0
    profiles = profiles[keep] / norms[keep, None]
    counts = np.bincount(inverse, minlength=len(customers))[keep]
    return pd.DataFrame(
        {
            "CUSTOMER_ID": customers[keep].tolist(),
            "EMBEDDING": profiles.tolist(),
            "N_EVENTS": counts.astype(np.int64),
        }
    )


# -- "more like this": same-label candidates only -------------------------------------------------------------------
def _same_label_pairs_sql(catalogue: str, embeddings: str, *, query_filter: str | None = None) -> str:
    """Scored (query item, candidate) pairs of the same label: a join on LABEL, never an N×N cross join."""
    cat, emb = quote_identifier(catalogue, "table"), quote_identifier(embeddings, "table")
    where = f"\n  WHERE {query_filter}" if query_filter else ""
    return (
        '  SELECT q."ITEM_ID" AS "ITEM_ID", c."ITEM_ID" AS "SIMILAR_ITEM_ID",\n'  # noqa: S608 - names quoted
        '         VECTOR_COSINE_SIMILARITY(qe."EMBEDDING", ce."EMBEDDING") AS "SCORE"\n'
        f"  FROM {cat} AS q\n"
        f'  JOIN {emb} AS qe ON qe."ITEM_ID" = q."ITEM_ID"\n'
        f'  JOIN {cat} AS c ON c."LABEL" = q."LABEL" AND c."ITEM_ID" <> q."ITEM_ID"\n'
        f'  JOIN {emb} AS ce ON ce."ITEM_ID" = c."ITEM_ID"' + where
    )


def more_like_this_view_sql(view: str, catalogue_table: str, embeddings_table: str, k: int) -> str:
    """``CREATE OR REPLACE VIEW <view> COPY GRANTS`` of every item's top-``k`` same-label neighbours."""
    k = _check_k(k)
    body = _topk_sql(
        _same_label_pairs_sql(catalogue_table, embeddings_table), '"ITEM_ID"', '"SIMILAR_ITEM_ID"', k
    )
    return f"CREATE OR REPLACE VIEW {quote_identifier(view, 'view')}\n  COPY GRANTS\nAS\n{body}"


def more_like_this_function_sql(function: str, catalogue_table: str, embeddings_table: str) -> str:
    """``<function>(ITEM VARCHAR, K NUMBER)`` → table of the item's top-``K`` same-label neighbours (SQL UDTF)."""
    pairs = _same_label_pairs_sql(
        catalogue_table, embeddings_table, query_filter='q."ITEM_ID" = "QUERY_ITEM"'
    )
    window = 'ROW_NUMBER() OVER (ORDER BY "SCORE" DESC, "SIMILAR_ITEM_ID")'
    return (
        f'CREATE OR REPLACE FUNCTION {quote_identifier(function, "function")}("QUERY_ITEM" VARCHAR, "K" NUMBER)\n'
        "  COPY GRANTS\n"
        '  RETURNS TABLE ("ITEM_ID" VARCHAR, "SIMILAR_ITEM_ID" VARCHAR, "SCORE" FLOAT, "RANK" NUMBER)\n'
        "  COMMENT = 'fashion-reco: more like this (same label, VECTOR_COSINE_SIMILARITY)'\n"
        "AS $$\n"
        f'WITH scored AS (\n{pairs}\n)\nSELECT "ITEM_ID", "SIMILAR_ITEM_ID", "SCORE", {window} AS "RANK"\n'
        f'FROM scored\nQUALIFY {window} <= "K"\n$$'
    )


def more_like_this_frame(
    session: Session,
    catalogue_table: str,
    embeddings_table: str,
    k: int,
    *,
    item_ids: Sequence[str] | None = None,
) -> DataFrame:
    """DataFrame form of :func:`more_like_this_view_sql` (optionally only for ``item_ids``)."""
    from snowflake.snowpark import functions as F

    k = _check_k(k)

    def side(prefix: str) -> DataFrame:  # each side from its own table reads: no ambiguous self-join lineage
        cat = session.table(validate_identifier(catalogue_table, "table")).select(
            F.col("ITEM_ID").alias(f"{prefix}_ITEM"), F.col("LABEL").alias(f"{prefix}_LABEL")
        )
        emb = session.table(validate_identifier(embeddings_table, "table")).select(
            F.col("ITEM_ID").alias(f"{prefix}_EID"), F.col("EMBEDDING").alias(f"{prefix}_EMB")
        )
        joined = cat.join(emb, cat[f"{prefix}_ITEM"] == emb[f"{prefix}_EID"])
        return joined.select(f"{prefix}_ITEM", f"{prefix}_LABEL", f"{prefix}_EMB")

    queries, candidates = side("Q"), side("C")
    if item_ids is not None:
        queries = queries.filter(F.col("Q_ITEM").isin(*[str(i) for i in item_ids]))
    pairs = queries.join(
        candidates,
        (queries["Q_LABEL"] == candidates["C_LABEL"]) & (queries["Q_ITEM"] != candidates["C_ITEM"]),
    )
    scored = pairs.select(
        F.col("Q_ITEM").alias("ITEM_ID"),
        F.col("C_ITEM").alias("SIMILAR_ITEM_ID"),
        F.call_function("VECTOR_COSINE_SIMILARITY", F.col("Q_EMB"), F.col("C_EMB")).alias("SCORE"),
    )
    return _ranked(scored, "ITEM_ID", "SIMILAR_ITEM_ID", k)
