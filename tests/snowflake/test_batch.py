"""Batch recommendations in the warehouse: the pure handler, the procedure in local testing, the task SQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco.config import BlendConfig, SnowflakeConfig
from fashion_reco.data.interactions import Interactions
from fashion_reco.errors import ConfigError, IdentifierError, SnowflakeError
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.snowflake.batch import (
    BlendScorer,
    ScoringPayload,
    WarehouseFrames,
    batch_recommend,
    read_frames,
    register_procedure,
    resume_task_sql,
    task_sql,
)
from fashion_reco.snowflake.sql import collect_frame
from fashion_reco.snowflake.tables import (
    catalogue_rows,
    clickstream_rows,
    customers_rows,
    embedding_rows,
    recommendation_rows,
    write_table,
)

K = 5


@pytest.fixture(scope="module")
def shop(twelve_photos: list[Path], local_embeddings: np.ndarray) -> dict:
    """Twelve photographed items, eight customers (one only in the customer table), 60 events over two weeks."""
    rng = np.random.default_rng(7)
    items = pd.DataFrame(
        {"item_id": [p.stem for p in twelve_photos], "label": [p.parent.name for p in twelve_photos]}
    )
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(8)],
            "gender": ["f", "m"] * 4,
            "preferred_labels": [items["label"][i % 12] for i in range(8)],
        }
    )
    n = 60
    events = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 7, n)],
            "item_id": items["item_id"].to_numpy()[rng.integers(0, 12, n)],
            "event_type": rng.choice(["view", "add_to_cart", "purchase"], n, p=[0.6, 0.25, 0.15]),
            "timestamp": pd.Timestamp("2024-05-01")
            + pd.to_timedelta(rng.integers(0, 14 * 24 * 60, n), "min"),
        }
    )
    log = Interactions.from_frame(events)
    context = FitContext(
        item_ids=items["item_id"].to_numpy(),
        item_embeddings=local_embeddings,
        item_labels=items["label"].to_numpy(object),
        customers=customers,
    )
    local = BlendRecommender(BlendConfig(tune=False)).fit(log, context)
    return {
        "items": items,
        "customers": customers,
        "log": log,
        "model": local,
        "embeddings": local_embeddings,
    }


def _expected(shop: dict) -> pd.DataFrame:
    ids = sorted(set(shop["log"].frame["customer_id"].astype(str)) | set(shop["customers"]["customer_id"]))
    out = shop["model"].recommend(ids, k=K)
    return out.rename(columns={c: c.upper() for c in out.columns})


def _assert_same_lists(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal per customer and rank, ties aside: scores equal everywhere, items equal where the score is not tied."""
    key = ["CUSTOMER_ID", "RANK"]
    merged = want.merge(got, on=key, how="outer", suffixes=("_w", "_g"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert np.allclose(merged["SCORE_w"], merged["SCORE_g"], rtol=1e-5, atol=1e-7)
    tied = merged.groupby("CUSTOMER_ID")["SCORE_w"].transform(lambda s: s.round(7).duplicated(keep=False))
    assert (merged.loc[~tied, "ITEM_ID_w"] == merged.loc[~tied, "ITEM_ID_g"]).all()
    assert len(got) == len(want) and want["CUSTOMER_ID"].nunique() == 8


def _warehouse_frames(shop: dict) -> WarehouseFrames:
    return WarehouseFrames(
        clickstream=clickstream_rows(shop["log"]),
        customers=customers_rows(shop["customers"]),
        embeddings=embedding_rows(shop["items"]["item_id"], shop["embeddings"]),
        catalogue=catalogue_rows(shop["items"]),
    )


def test_handler_on_pandas_frames_equals_local_recommend(shop: dict) -> None:
    payload = BlendScorer.from_recommender(shop["model"]).payload
    assert ScoringPayload.from_json(payload.to_json()) == payload
    got = batch_recommend(_warehouse_frames(shop), payload, K)
    assert list(got.columns) == ["CUSTOMER_ID", "ITEM_ID", "SCORE", "RANK", "REASON"]
    _assert_same_lists(got, _expected(shop))


def test_handler_uses_the_learned_weights_not_the_config_defaults(shop: dict) -> None:
    payload = BlendScorer.from_recommender(shop["model"]).payload
    only_popularity = ScoringPayload(**{**payload.__dict__, "weights": {"popularity": 1.0}})
    model = BlendScorer(only_popularity).fitted(_warehouse_frames(shop))
    assert model.weights_["popularity"] == 1.0 and model.weights_.get("behaviour", 0.0) == 0.0


def test_handler_refuses_bad_input(shop: dict) -> None:
    payload = BlendScorer.from_recommender(shop["model"]).payload
    with pytest.raises(SnowflakeError, match="k must be"):
        batch_recommend(_warehouse_frames(shop), payload, 0)
    with pytest.raises(SnowflakeError, match="unknown scorer kind"):
        batch_recommend(_warehouse_frames(shop), ScoringPayload(kind="ranker-v9", config={}), K)
    frames = _warehouse_frames(shop)
    empty = WarehouseFrames(
        frames.clickstream, frames.customers, frames.embeddings.iloc[:0], frames.catalogue
    )
    with pytest.raises(SnowflakeError, match="no catalogue item has an embedding"):
        batch_recommend(empty, payload, K)


@pytest.fixture(scope="module")
def batch_tables(local_session, shop: dict) -> dict[str, str]:
    """The shop's tables written to the local session (names BATCH_T_<BASE>)."""
    names = {
        base: f"BATCH_T_{base}" for base in ("CATALOGUE", "IMAGE_EMBEDDINGS", "CUSTOMERS", "CLICKSTREAM")
    }
    frames = _warehouse_frames(shop)
    for base, rows in (
        ("CATALOGUE", frames.catalogue),
        ("IMAGE_EMBEDDINGS", frames.embeddings),
        ("CUSTOMERS", frames.customers),
        ("CLICKSTREAM", frames.clickstream),
    ):
        write_table(local_session, names[base], rows, spec=base)
    return {**names, "RECOMMENDATIONS": "BATCH_T_RECOMMENDATIONS"}


def test_procedure_in_local_testing_merges_the_same_lists(
    local_session, shop: dict, batch_tables: dict[str, str]
) -> None:
    names = batch_tables
    frames = _warehouse_frames(shop)
    # a stale, longer list for c0 must disappear (replaced per customer)
    stale = pd.DataFrame(
        {"customer_id": ["c0"] * 9, "item_id": ["x"] * 9, "score": [0.0] * 9, "rank": range(1, 10)}
    )
    write_table(local_session, names["RECOMMENDATIONS"], recommendation_rows(stale), spec="RECOMMENDATIONS")

    read = read_frames(local_session, {b: n for b, n in names.items() if b != "RECOMMENDATIONS"})
    assert len(read.clickstream) == len(frames.clickstream)

    config = SnowflakeConfig(procedure_name="BATCH_T_RECOMMEND", stage="BATCH_T_STAGE")
    register_procedure(local_session, BlendScorer.from_recommender(shop["model"]), names, config)
    summary = json.loads(local_session.call("BATCH_T_RECOMMEND", K))
    assert summary["customers"] == 8 and summary["rows"] == 8 * K
    table = collect_frame(local_session.table(names["RECOMMENDATIONS"]))
    assert not (table["ITEM_ID"] == "x").any()
    _assert_same_lists(table[["CUSTOMER_ID", "ITEM_ID", "SCORE", "RANK", "REASON"]], _expected(shop))
    # running it again replaces, never duplicates
    json.loads(local_session.call("BATCH_T_RECOMMEND", K))
    assert local_session.table(names["RECOMMENDATIONS"]).count() == 8 * K


def test_task_sql_is_validated_text() -> None:
    sql = task_sql("reco.public.nightly", "reco.public.batch", "reco_wh", "USING CRON 0 3 * * * UTC", 12)
    assert sql == (
        'CREATE OR REPLACE TASK "RECO"."PUBLIC"."NIGHTLY"\n'
        '  WAREHOUSE = "RECO_WH"\n'
        "  SCHEDULE = 'USING CRON 0 3 * * * UTC'\n"
        "  COMMENT = 'fashion-reco batch recommendations'\n"
        'AS CALL "RECO"."PUBLIC"."BATCH"(12)'
    )
    assert resume_task_sql("nightly") == 'ALTER TASK "NIGHTLY" RESUME'
    assert "SCHEDULE = '60 MINUTE'" in task_sql("t", "p", "w", "60 MINUTE", 5)
    for bad in ("USING CRON 0 3 * * * UTC'; DROP TABLE X; --", "daily", ""):
        with pytest.raises(ConfigError, match="task schedule"):
            task_sql("t", "p", "w", bad, 5)
    with pytest.raises(IdentifierError):
        task_sql("t; DROP", "p", "w", "5 MINUTE", 5)


def test_account_procedure_registration_arguments(recording_session, shop: dict) -> None:
    registered: list[dict] = []
    recording_session.sproc = type(
        "S", (), {"register": lambda self, **kw: registered.append(kw) or "proc"}
    )()
    config = SnowflakeConfig(
        mode="account",
        procedure_name="reco.public.batch_recommend",
        stage="reco.public.models",
        artifact_repository="snowflake.snowpark.pypi_shared_repository",
    )
    register_procedure(
        recording_session,
        BlendScorer.from_recommender(shop["model"]),
        {
            "RECOMMENDATIONS": "R",
            "CLICKSTREAM": "C",
            "CUSTOMERS": "U",
            "IMAGE_EMBEDDINGS": "E",
            "CATALOGUE": "K",
        },
        config,
        code_imports=["@RECO.PUBLIC.MODELS/code/abc/fashion_reco-abc.zip"],
    )
    (kwargs,) = registered
    assert kwargs["name"] == "RECO.PUBLIC.BATCH_RECOMMEND"
    assert kwargs["is_permanent"] and kwargs["copy_grants"] is True and kwargs["execute_as"] == "owner"
    assert kwargs["stage_location"] == "@RECO.PUBLIC.MODELS/procedures"
    assert kwargs["artifact_repository"] == "SNOWFLAKE.SNOWPARK.PYPI_SHARED_REPOSITORY"
    names = {p.split(">=")[0] for p in kwargs["packages"]}
    assert {
        "snowflake-snowpark-python",
        "numpy",
        "pandas",
        "scipy",
    } <= names  # snowpark pinned by us, not by 1.56
    assert not any("==" in p for p in kwargs["packages"])


def test_deploy_batch_on_an_account_creates_function_view_task_in_order(
    recording_session, shop: dict
) -> None:
    from fashion_reco.snowflake.batch import deploy_batch

    registered: list[dict] = []
    recording_session.sproc = type(
        "S", (), {"register": lambda self, **kw: registered.append(kw) or "proc"}
    )()
    config = SnowflakeConfig(mode="account", warehouse="RECO_WH", check_packages=False, table_prefix="R_")
    import fashion_reco.snowflake.udf as udf_module

    original = udf_module._stage_code
    udf_module._stage_code = lambda session, stage, runtime: [
        "@FASHION_RECO_MODELS/code/x/fashion_reco-x.zip"
    ]
    try:
        result = deploy_batch(
            recording_session, BlendScorer.from_recommender(shop["model"]), config, run_now=False
        )
    finally:
        udf_module._stage_code = original
    assert (
        result.procedure == "FASHION_RECO_BATCH_RECOMMEND" and result.task == "FASHION_RECO_NIGHTLY_RECOMMEND"
    )
    statements = recording_session.statements
    assert statements[0].startswith('CREATE OR REPLACE FUNCTION "R_MORE_LIKE_THIS"("QUERY_ITEM" VARCHAR')
    assert statements[1].startswith('CREATE OR REPLACE VIEW "R_SIMILAR_ITEMS"\n  COPY GRANTS')
    assert statements[2].startswith('CREATE OR REPLACE TASK "FASHION_RECO_NIGHTLY_RECOMMEND"')
    assert 'AS CALL "FASHION_RECO_BATCH_RECOMMEND"(12)' in statements[2]
    assert statements[3] == 'ALTER TASK "FASHION_RECO_NIGHTLY_RECOMMEND" RESUME'
    assert all(len(s.encode()) < 1_000_000 for s in statements)
    with pytest.raises(ConfigError, match=r"snowflake\.warehouse"):
        deploy_batch(
            recording_session, BlendScorer.from_recommender(shop["model"]), SnowflakeConfig(mode="account")
        )


def test_deploy_batch_in_local_testing_runs_the_procedure(
    local_session, shop: dict, batch_tables: dict[str, str]
) -> None:
    from fashion_reco.snowflake.batch import deploy_batch

    config = SnowflakeConfig(table_prefix="BATCH_T_", procedure_name="BATCH_T_DEPLOYED")
    result = deploy_batch(local_session, BlendScorer.from_recommender(shop["model"]), config, k=K)
    assert result.task is None and result.first_run is not None and result.first_run["rows"] == 8 * K


def test_no_secret_travels_with_the_procedure(recording_session, shop: dict) -> None:
    registered: list[dict] = []
    recording_session.sproc = type(
        "S", (), {"register": lambda self, **kw: registered.append(kw) or "proc"}
    )()
    config = SnowflakeConfig(mode="account", account="org-acct", user="u", password="hunter2-very-secret")  # noqa: S106 - a test secret
    scorer = BlendScorer.from_recommender(shop["model"])
    register_procedure(recording_session, scorer, {"RECOMMENDATIONS": "R"}, config, code_imports=[])
    (kwargs,) = registered
    closure = [c.cell_contents for c in kwargs["func"].__closure__ or ()]
    text = json.dumps({k: v for k, v in kwargs.items() if k != "func"}, default=str) + repr(closure)
    assert "hunter2" not in text and "hunter2" not in scorer.payload.to_json()


_TORCHLESS_PROCEDURE = """
import sys, json
class Block:  # torch, torchvision and onnxruntime cannot be imported (a finder, not sys.modules placeholders)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "onnxruntime"}:
            raise ImportError(f"{name} is not available in the procedure's runtime")
sys.meta_path.insert(0, Block())
import numpy as np, pandas as pd
from fashion_reco.snowflake.batch import BlendScorer, ScoringPayload, WarehouseFrames, batch_recommend
from fashion_reco.snowflake.tables import catalogue_rows, clickstream_rows, embedding_rows
payload = ScoringPayload.from_json(sys.argv[1])
rng = np.random.default_rng(0)
items = pd.DataFrame({"item_id": [f"i{n}" for n in range(6)], "label": ["a", "a", "b", "b", "c", "c"]})
events = pd.DataFrame({"customer_id": ["x", "x", "y", "z"], "item_id": ["i0", "i2", "i2", "i5"],
                       "event_type": ["view", "purchase", "view", "add_to_cart"],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])})
vectors = rng.normal(size=(6, 512))
frames = WarehouseFrames(clickstream_rows(events), None, embedding_rows(items["item_id"], vectors), catalogue_rows(items))
out = batch_recommend(frames, payload, 2)
print(json.dumps({"rows": len(out), "torch": "torch" in sys.modules,
                  "modules": sorted({m.split('.')[0] for m in sys.modules})}))
"""


def test_the_procedure_runtime_needs_neither_torch_nor_onnxruntime(shop: dict) -> None:
    """What the procedure imports, in a fresh interpreter where torch and onnxruntime cannot be imported."""
    import subprocess
    import sys

    from fashion_reco.snowflake.packages import PROCEDURE_PACKAGES, parse_spec

    payload = BlendScorer.from_recommender(shop["model"]).payload.to_json()
    run = subprocess.run(
        [sys.executable, "-c", _TORCHLESS_PROCEDURE, payload],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["rows"] == 6 and result["torch"] is False
    channel = {parse_spec(s).name for s in PROCEDURE_PACKAGES}
    third_party = {"numpy", "pandas", "scipy", "pydantic", "pydantic_settings", "snowflake"} & set(
        result["modules"]
    )
    names = {"pydantic_settings": "pydantic-settings", "snowflake": "snowflake-snowpark-python"}
    assert {names.get(m, m) for m in third_party} <= channel
