"""Smoke-test fashion-reco on a REAL Snowflake account, in a scratch schema that is dropped at the end.

    python examples/snowflake_account_smoke.py --connection reco --database RETAIL --warehouse RECO_WH

What it does, in a new schema ``<database>.FASHION_RECO_SMOKE_<UTC time>_<random>``:

1. fits a small image model (ResNet18, ``weights=None``, 64 px: no download), the blend and the LightGBM ranker on
   50 photos of the clothing data set and the simulator's shop over them (100 customers, 28 days), locally;
2. ``deploy``: checks the packages against INFORMATION_SCHEMA.PACKAGES, stages the model and its ONNX export, PUTs the
   photos, registers the embedding UDFs and upserts the tables; the UDF embeds a sample of the staged photos in the
   warehouse and must match the local embeddings (1e-5);
3. ``deploy_batch``: registers the batch-recommendation procedure and the "more like this" function and view, runs the
   procedure once and compares RECOMMENDATIONS with local ``recommend`` (ties aside) — first with the blend, then
   with the ranker (its LightGBM text model staged and imported, its sources and features rebuilt in the warehouse);
4. runs ``<prefix>MORE_LIKE_THIS(item, 5)`` and compares it with local same-label cosine top-5;
5. drops the scratch schema (``--keep`` leaves it for inspection) and writes ``smoke.json``.

Connection: an entry of ``connections.toml`` (``$SNOWFLAKE_HOME`` or ``~/.snowflake``). The role needs USAGE on the
warehouse and database and CREATE SCHEMA on the database (docs/snowflake.md, "Roles and privileges"). Cost: a few
minutes of an X-Small warehouse. It never runs in the test suite (there is no account there); ``--help`` and the
argument checks do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import secrets
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; names are checked as unquoted Snowflake identifiers before anything connects."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="entry of connections.toml to connect with")
    parser.add_argument("--database", required=True, help="database in which the scratch schema is created")
    parser.add_argument("--warehouse", required=True, help="warehouse for the UDF, MERGEs and the procedure")
    parser.add_argument("--role", help="role to use (default: the connection's)")
    parser.add_argument("--photos", type=int, default=50, help="photos to deploy (default 50)")
    parser.add_argument("--schema-prefix", default="FASHION_RECO_SMOKE", help="scratch schema name prefix")
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema (default: drop it)")
    parser.add_argument("--out", type=Path, default=Path("out/snowflake_account_smoke"), help="output folder")
    args = parser.parse_args(argv)
    for key in ("database", "warehouse", "role", "schema_prefix"):
        value = getattr(args, key)
        if value is not None and not NAME.fullmatch(value):
            parser.error(f"--{key.replace('_', '-')} must be an unquoted Snowflake identifier, got {value!r}")
    if not 2 <= args.photos <= 500:
        parser.error("--photos must be between 2 and 500")
    return args


def scratch_schema(prefix: str, now: dt.datetime | None = None) -> str:
    """``<PREFIX>_<YYYYMMDD_HHMMSS>_<6 hex>``: unique, sortable, recognisable when listing schemas."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d_%H%M%S")
    return f"{prefix}_{stamp}_{secrets.token_hex(3)}".upper()


def main(argv: list[str] | None = None) -> int:
    """Run the smoke test; 0 when every in-warehouse result matches the local one."""
    args = parse_args(argv)
    import torch

    from fashion_reco.config import BlendConfig, ModelConfig, RankerConfig, SnowflakeConfig
    from fashion_reco.data import load_clothing
    from fashion_reco.data.simulation import simulate_retail
    from fashion_reco.model.image_model import ImageModel
    from fashion_reco.recommend.base import FitContext
    from fashion_reco.recommend.blend import BlendRecommender
    from fashion_reco.recommend.ranker import RankerRecommender
    from fashion_reco.snowflake.backend import backend_for
    from fashion_reco.snowflake.batch import BlendScorer, deploy_batch, scorer_for
    from fashion_reco.snowflake.deploy import deploy
    from fashion_reco.snowflake.identifiers import quote_identifier
    from fashion_reco.snowflake.session import create_session
    from fashion_reco.snowflake.sql import collect_frame

    args.out.mkdir(parents=True, exist_ok=True)
    schema = scratch_schema(args.schema_prefix)
    config = SnowflakeConfig(
        mode="account",
        connection_name=args.connection,
        database=args.database,
        warehouse=args.warehouse,
        role=args.role,
        schema_=schema,
        table_prefix="SMOKE_",
    )
    items = load_clothing().to_frame()
    items = items.groupby("label").head(max(1, args.photos // items["label"].nunique() + 1)).head(args.photos)
    from fashion_reco.data.catalogue import Catalogue

    catalogue = Catalogue.from_frame(items)
    torch.manual_seed(0)
    model = ImageModel.untrained(sorted(set(catalogue.labels)), ModelConfig(image_size=64))
    embeddings = np.asarray(model.embed([str(p) for p in items["image_path"]], num_workers=0))
    shop = simulate_retail(items[["item_id", "label"]], n_customers=100, days=28, seed=5)
    customers, clicks = shop.customers, shop.interactions
    context = FitContext.from_catalogue(catalogue, embeddings, customers=customers)
    blend = BlendRecommender(BlendConfig(tune=False)).fit(clicks, context)
    ranker_config = RankerConfig(
        n_windows=2, max_rounds=30, validate_against_blend=False, min_train_customers=20
    )
    ranker = RankerRecommender(ranker_config).fit(clicks, context)

    quoted = f"{quote_identifier(args.database, 'database')}.{quote_identifier(schema, 'schema')}"
    session = create_session(config.model_copy(update={"schema_": None}))
    backend = backend_for(session)
    result: dict = {"schema": f"{args.database}.{schema}".upper(), "photos": len(items)}
    try:
        backend.run_sql(f"CREATE SCHEMA {quoted} COMMENT = 'fashion-reco smoke test (safe to drop)'")
        session.use_schema(quoted)
        with tempfile.TemporaryDirectory() as tmp:
            report = deploy(
                session,
                model.save(Path(tmp) / "image_model"),
                catalogue,
                embeddings,
                customers=customers,
                interactions=clicks,
                config=config,
            )
        result["udf_max_abs_diff"] = report.max_abs_diff
        print(report.summary())

        batch = deploy_batch(session, BlendScorer.from_recommender(blend), config, k=12, schedule=False)
        ids = sorted(set(clicks.frame["customer_id"].astype(str)) | set(map(str, customers.customer_ids)))

        def compare(local: pd.DataFrame, name: str) -> bool:
            got = collect_frame(session.table("SMOKE_RECOMMENDATIONS"))
            merged = local.merge(got, left_on=["customer_id", "rank"], right_on=["CUSTOMER_ID", "RANK"])
            diff = float(np.abs(merged["score"] - merged["SCORE"]).max()) if len(merged) else float("inf")
            result[f"{name}_rows"] = {"warehouse": len(got), "local": len(local), "matched": len(merged)}
            result[f"{name}_max_score_diff"] = diff
            return len(merged) == len(local) == len(got) and diff <= 1e-5

        blend_ok = compare(blend.recommend(ids, k=12), "blend")
        result["first_run"] = batch.first_run
        ranker_scorer = scorer_for(ranker)
        result["ranker_scorer"] = ranker_scorer.payload.kind  # "blend" when the ranker fell back
        ranker_batch = deploy_batch(
            session,
            ranker_scorer,
            config.model_copy(update={"procedure_name": "SMOKE_RANKER_RECOMMEND"}),
            k=12,
            schedule=False,
        )
        result["ranker_first_run"] = ranker_batch.first_run
        ranker_ok = compare(ranker.recommend(ids, k=12), "ranker")

        query = str(catalogue.item_ids[0])
        function = quote_identifier(str(batch.more_like_this_function), "function")
        rows = session.sql(f"SELECT * FROM TABLE({function}(?, 5))", params=[query]).collect()  # noqa: S608
        warehouse = pd.DataFrame([r.as_dict() for r in rows]).sort_values("RANK")
        label = items.set_index("item_id")["label"]
        same = [i for i in catalogue.item_ids if label[i] == label[query] and i != query]
        matrix = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        position = {i: n for n, i in enumerate(catalogue.item_ids)}
        scores = sorted((-float(matrix[position[query]] @ matrix[position[i]]), i) for i in same)[:5]
        result["more_like_this_same"] = warehouse["SIMILAR_ITEM_ID"].tolist() == [i for _, i in scores]
        ok = report.max_abs_diff <= 1e-5 and blend_ok and ranker_ok and result["more_like_this_same"]
        result["ok"] = bool(ok)
    finally:
        if not args.keep:
            backend.run_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
            result["dropped"] = True
        (args.out / "smoke.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        session.close()
    print(json.dumps(result, indent=2, default=str))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
