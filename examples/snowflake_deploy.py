"""Deploy a fitted recommender into Snowflake and query it there: tables, the image-embedding UDF, and
``VECTOR_COSINE_SIMILARITY`` "more like this".

    python examples/snowflake_deploy.py --smoke                     # Snowpark local testing: no account, no network
    python examples/snowflake_deploy.py --config fashion-reco.toml  # a real account (see below)

By default everything runs in Snowpark's *local testing* session, inside this process. To deploy to a real account,
write a TOML file with a ``[snowflake]`` section and pass it with ``--config``::

    [snowflake]
    mode = "account"
    connection_name = "reco"      # an entry of ~/.snowflake/connections.toml (or: account = "...", user = "...")
    role = "RECO_DEPLOYER"
    warehouse = "RECO_WH"
    database = "RETAIL"
    schema = "RECO"

(or set ``FASHION_RECO_SNOWFLAKE__MODE=account`` and ``FASHION_RECO_SNOWFLAKE__CONNECTION_NAME=reco``). Nothing else
changes: the same ``deploy()`` stages the model, registers the UDF and upserts the tables; on an account the
generated SQL below runs as it is (``session.sql(...)``). See docs/snowflake.md for privileges and what is created.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fashion_reco import FashionRecommender, RecommenderConfig
from fashion_reco.data import sample_catalogue
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.snowflake.session import create_session
from fashion_reco.snowflake.sql import (
    collect_frame,
    customer_topk_sql,
    similar_items_frame,
    similar_items_sql,
)


def make_config(smoke: bool, config_file: Path | None) -> RecommenderConfig:
    """The ``[snowflake]`` section comes from ``config_file`` (local testing when absent); the budget is small."""
    budget = (
        {"image_size": 64, "head_epochs": 0, "finetune_epochs": 1, "augment": False, "batch_size": 32}
        if smoke
        else {"image_size": 96, "head_epochs": 1, "finetune_epochs": 2, "max_train_seconds": 180}
    )
    overrides: dict = {"model": budget}
    if smoke:
        overrides["data"] = {"num_workers": 0}
    if config_file is not None:
        return RecommenderConfig.from_toml(config_file, **overrides)
    return RecommenderConfig(**overrides)


def as_vector(value: object) -> np.ndarray:
    """A VECTOR cell as numpy: a list on an account, JSON text in local testing (which stores VECTOR as ARRAY)."""
    return np.asarray(json.loads(value) if isinstance(value, str) else value, dtype=np.float32)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="60 photos, 64 px, one epoch, 30 customers")
    parser.add_argument("--config", type=Path, help="TOML with a [snowflake] section (mode = 'account' ...)")
    parser.add_argument("--out", type=Path, default=Path("out/snowflake_deploy"), help="output folder")
    return parser.parse_args(argv)


def fit_small(config: RecommenderConfig, smoke: bool) -> FashionRecommender:
    """The shipped sample photos (two per class and split in smoke mode), a synthetic clickstream, the blend."""
    catalogue = sample_catalogue()
    if smoke:
        items = catalogue.to_frame()
        catalogue = catalogue.subset(items.groupby(["label", "split"]).head(2)["item_id"])
    reco = FashionRecommender(config)
    reco.train(catalogue, progress=not smoke)
    embeddings = reco.embed(catalogue, progress=not smoke)
    customers = generate_customers(catalogue, n=30 if smoke else 200, seed=5)
    clicks = generate_clickstream(catalogue, customers, item_embeddings=embeddings, days=30, seed=5)
    return reco.fit(catalogue, clicks, customers, item_embeddings=embeddings, progress=False)


def main(argv: list[str] | None = None) -> int:
    """Fit, deploy, read the tables back, run "more like this" in the warehouse; 0 when it matches local answers."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = make_config(args.smoke, args.config)
    reco = fit_small(config, args.smoke)
    prefix = config.snowflake.table_prefix

    # 1. deploy: stage the model, register the UDF, upsert every table, verify embeddings inside the warehouse
    session = create_session(config.snowflake)  # local testing unless snowflake.mode = "account"
    report = reco.deploy(session)
    print(report.summary())

    # 2. read results back through the session, as any Snowflake client would
    recommendations = collect_frame(session.table(f"{prefix}RECOMMENDATIONS"))
    embeddings = collect_frame(session.table(f"{prefix}IMAGE_EMBEDDINGS"))
    recommendations = recommendations.sort_values(["CUSTOMER_ID", "RANK"], ignore_index=True)
    print(f"\n{prefix}RECOMMENDATIONS: {len(recommendations)} rows, first customer:")
    first = recommendations["CUSTOMER_ID"].iloc[0]
    print(
        recommendations[recommendations["CUSTOMER_ID"] == first]
        .drop(columns="GENERATED_AT")
        .to_string(index=False)
    )
    vectors = np.stack([as_vector(v) for v in embeddings["EMBEDDING"]])
    print(f"\n{prefix}IMAGE_EMBEDDINGS: {vectors.shape[0]} rows of VECTOR(FLOAT, {vectors.shape[1]})")

    # 3. "more like this" as SQL for an account (views, tasks, worksheets) ...
    sql = similar_items_sql(f"{prefix}IMAGE_EMBEDDINGS", k=5)
    topk_sql = customer_topk_sql(
        f"{prefix}CUSTOMER_PROFILES", f"{prefix}IMAGE_EMBEDDINGS", k=12, exclude_table=f"{prefix}CLICKSTREAM"
    )
    print(f"\nSQL that runs on a real account:\n{sql}")
    (args.out / "similar_items.sql").write_text(sql + ";\n", encoding="utf-8")
    (args.out / "customer_topk.sql").write_text(topk_sql + ";\n", encoding="utf-8")

    # ... and the same query as a Snowpark DataFrame, which also runs in local testing
    query = str(reco.catalogue.item_ids[0])
    if report.mode == "account":
        in_warehouse = pd.DataFrame([r.as_dict() for r in session.sql(sql).collect()])
        in_warehouse = in_warehouse[in_warehouse["ITEM_ID"] == query]
    else:
        in_warehouse = collect_frame(
            similar_items_frame(session, f"{prefix}IMAGE_EMBEDDINGS", 5, item_ids=[query])
        )
    session.close()  # one open session at a time: local testing's UDFs need it
    local = reco.similar_items([query], k=5)
    same = in_warehouse["SIMILAR_ITEM_ID"].tolist() == local["similar_item_id"].tolist()
    print(f"\nin-warehouse more-like-this for {query}:\n{in_warehouse.to_string(index=False)}")
    print(f"same neighbours as FashionRecommender.similar_items: {same}")

    recommendations.drop(columns="GENERATED_AT").to_csv(args.out / "recommendations_table.csv", index=False)
    in_warehouse.to_csv(args.out / "similar_in_warehouse.csv", index=False)
    local.to_csv(args.out / "similar_local.csv", index=False)
    (args.out / "deployment.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    summary = {
        "mode": report.mode,
        "tables": report.tables,
        "query_item": query,
        "same_neighbours": same,
        "embedding_rows": int(vectors.shape[0]),
        "embedding_dim": int(vectors.shape[1]),
    }
    (args.out / "snowflake_deploy.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if report.mode == "local":
        print(
            "\nthis was a Snowpark local testing session; for a real account set snowflake.mode = 'account' and "
            "snowflake.connection_name (see this file's docstring and docs/snowflake.md)"
        )
    session.close()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
