"""End to end in a local testing session: stage → UDF → tables → in-warehouse verification; idempotent re-runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fashion_reco.config import RecommenderConfig, SnowflakeConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.errors import NotFittedError, SnowflakeError
from fashion_reco.model.image_model import ImageModel
from fashion_reco.snowflake.deploy import DeploymentReport, deploy, deploy_recommender, verify_udf_embeddings
from fashion_reco.snowflake.sql import collect_frame, customer_topk_frame, similar_items_frame


@pytest.fixture(scope="module")
def catalogue(twelve_photos: list[Path]) -> Catalogue:
    return Catalogue.from_frame(
        pd.DataFrame(
            {
                "item_id": [p.stem for p in twelve_photos],
                "image_path": [str(p) for p in twelve_photos],
                "label": [p.parent.name for p in twelve_photos],
            }
        )
    )


@pytest.fixture(scope="module")
def shoppers(catalogue: Catalogue) -> tuple[Customers, Interactions, pd.DataFrame]:
    ids = list(catalogue.item_ids)
    customers = Customers.from_frame(
        pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "gender": ["f", "m", "f"]})
    )
    t0 = pd.Timestamp("2024-05-01 09:00")
    interactions = Interactions.from_frame(
        pd.DataFrame(
            {
                "customer_id": ["c1", "c1", "c2", "c2", "c3"],
                "item_id": [ids[0], ids[1], ids[2], ids[2], ids[5]],
                "event_type": ["view", "purchase", "view", "add_to_cart", "view"],
                "timestamp": [t0, t0 + pd.Timedelta(hours=1), t0, t0 + pd.Timedelta(minutes=3), t0],
            }
        )
    )
    recommendations = pd.DataFrame(
        {
            "customer_id": ["c1"] * 3 + ["c2"] * 3,
            "item_id": [ids[3], ids[4], ids[6], ids[7], ids[8], ids[9]],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "rank": [1, 2, 3, 1, 2, 3],
            "reason": "looks like your views",
        }
    )
    return customers, interactions, recommendations


@pytest.fixture(scope="module")
def first_deploy(
    local_session, tiny_model_dir: Path, catalogue: Catalogue, local_embeddings: np.ndarray, shoppers
) -> tuple[DeploymentReport, SnowflakeConfig]:
    customers, interactions, recommendations = shoppers
    config = SnowflakeConfig(table_prefix="DEPLOY_T_", stage="DEPLOY_T_STAGE", udf_name="DEPLOY_T_EMBED")
    report = deploy(
        local_session,
        tiny_model_dir,
        catalogue,
        local_embeddings,
        customers=customers,
        interactions=interactions,
        recommendations=recommendations,
        config=config,
        verify_sample=6,
    )
    return report, config


def test_deploy_creates_everything_and_verifies_in_warehouse_embeddings(
    first_deploy, catalogue: Catalogue
) -> None:
    report, _ = first_deploy
    assert report.mode == "local" and report.udf_name == "DEPLOY_T_EMBED" and report.stage == "DEPLOY_T_STAGE"
    # the artefact (metadata + weights) and, for the default torch-free runtime, its ONNX export
    assert {f.name for f in report.stage_files} == {
        "metadata.json",
        "model.onnx",
        *(f.name for f in report.stage_files if f.name.startswith("weights-")),
    }
    assert len(report.stage_files) == 3
    assert any(f.location.startswith("@DEPLOY_T_STAGE/onnx/") for f in report.stage_files)
    assert report.tables == {
        "DEPLOY_T_CATALOGUE": 12,
        "DEPLOY_T_PHOTOS": 12,
        "DEPLOY_T_IMAGE_EMBEDDINGS": 12,
        "DEPLOY_T_CUSTOMERS": 3,
        "DEPLOY_T_CLICKSTREAM": 5,
        "DEPLOY_T_CUSTOMER_PROFILES": 3,
        "DEPLOY_T_RECOMMENDATIONS": 6,
    }
    assert report.verified_items == sorted(catalogue.item_ids)[:6]
    assert report.max_abs_diff <= 1e-5
    assert "match local" in report.summary()
    assert DeploymentReport.model_validate_json(report.model_dump_json()) == report


def test_redeploy_is_idempotent(
    first_deploy,
    local_session,
    tiny_model_dir: Path,
    catalogue: Catalogue,
    local_embeddings: np.ndarray,
    shoppers,
) -> None:
    report, config = first_deploy
    customers, interactions, recommendations = shoppers
    before = {
        name: collect_frame(local_session.table(name).sort(local_session.table(name).columns[0]))
        for name in report.tables
    }
    again = deploy(
        local_session,
        tiny_model_dir,
        catalogue,
        local_embeddings,
        customers=customers,
        interactions=interactions,
        recommendations=recommendations,
        config=config,
        verify_sample=3,
    )
    assert again.tables == report.tables
    assert again.stage_files == report.stage_files
    inserted = {w.table: w.inserted for w in again.writes}
    assert inserted.pop("DEPLOY_T_RECOMMENDATIONS") == 6  # replaced per customer: 6 deleted, 6 inserted
    assert set(inserted.values()) == {0}
    for name, frame in before.items():
        after = collect_frame(local_session.table(name).sort(local_session.table(name).columns[0]))
        assert len(after) == len(frame)
        if name != "DEPLOY_T_RECOMMENDATIONS":  # GENERATED_AT moves on
            pd.testing.assert_frame_equal(after, frame)


def test_warehouse_tables_answer_similarity_queries(
    first_deploy, local_session, catalogue: Catalogue, local_embeddings: np.ndarray
) -> None:
    similar = collect_frame(similar_items_frame(local_session, "DEPLOY_T_IMAGE_EMBEDDINGS", 3))
    ids = list(catalogue.item_ids)
    scores = local_embeddings @ local_embeddings.T
    np.fill_diagonal(scores, -np.inf)
    for q, item in enumerate(ids):
        got = similar[similar["ITEM_ID"] == item].sort_values("RANK")["SIMILAR_ITEM_ID"].tolist()
        assert got == [ids[j] for j in np.argsort(-scores[q], kind="stable")[:3]]
    per_customer = collect_frame(
        customer_topk_frame(
            local_session,
            "DEPLOY_T_CUSTOMER_PROFILES",
            "DEPLOY_T_IMAGE_EMBEDDINGS",
            4,
            exclude_table="DEPLOY_T_CLICKSTREAM",
        )
    )
    assert set(per_customer["CUSTOMER_ID"]) == {"c1", "c2", "c3"}
    c1 = per_customer[per_customer["CUSTOMER_ID"] == "c1"]
    assert len(c1) == 4 and not set(c1["ITEM_ID"]) & {ids[0], ids[1]}


def test_a_model_that_disagrees_with_local_embeddings_is_caught(
    first_deploy, local_session, local_embeddings: np.ndarray, catalogue: Catalogue
) -> None:
    item = catalogue.item_ids[4]
    wrong = local_embeddings[4] + 1e-3
    with pytest.raises(SnowflakeError, match="differs from the local one") as info:
        verify_udf_embeddings(
            local_session,
            "DEPLOY_T_PHOTOS",
            "DEPLOY_T_EMBED_FILE",
            {item: wrong},
            1e-4,
            photo_stage=SnowflakeConfig().photo_stage,
        )
    assert info.value.item_id == item


def test_bad_inputs_fail_before_anything_is_written(
    local_session, tiny_model_dir: Path, catalogue: Catalogue, local_embeddings: np.ndarray
) -> None:
    config = SnowflakeConfig(table_prefix="NEVER_", stage="NEVER_STAGE")
    with pytest.raises(SnowflakeError, match="5 embeddings for 12 items"):
        deploy(local_session, tiny_model_dir, catalogue, local_embeddings[:5], config=config)
    with pytest.raises(SnowflakeError):
        deploy(
            local_session,
            tiny_model_dir,
            catalogue,
            local_embeddings,
            config=SnowflakeConfig(table_prefix="bad prefix "),
        )
    with pytest.raises(SnowflakeError):
        deploy(
            local_session,
            tiny_model_dir,
            catalogue,
            local_embeddings,
            config=SnowflakeConfig(udf_name="embed;drop"),
        )
    assert not [t for t in local_session._conn.entity_registry.table_registry if "NEVER_" in t]


def test_deploy_recommender_writes_a_self_contained_record(
    local_session,
    tiny_model: ImageModel,
    catalogue: Catalogue,
    local_embeddings: np.ndarray,
    shoppers,
    tmp_path: Path,
) -> None:
    customers, interactions, recommendations = shoppers
    config = RecommenderConfig(
        snowflake={"table_prefix": "RECO_T_", "stage": "RECO_T_STAGE", "udf_name": "RECO_T_EMBED"},
        blend={"k": 3},
    )
    fitted = SimpleNamespace(
        config=config,
        image_model=tiny_model,
        catalogue=catalogue,
        item_embeddings=local_embeddings,
        customers=customers,
        interactions=interactions,
        recommender=object(),
        recommend=lambda ids, k: recommendations[
            recommendations["customer_id"].isin(ids) & (recommendations["rank"] <= k)
        ],
    )
    report = deploy_recommender(fitted, session=local_session, work_dir=tmp_path / "warehouse")
    assert report.tables["RECO_T_RECOMMENDATIONS"] == 6
    record = json.loads((tmp_path / "warehouse" / "deployment.json").read_text())
    assert record["udf_name"] == "RECO_T_EMBED"
    exported = pd.read_parquet(tmp_path / "warehouse" / "tables" / "RECO_T_CLICKSTREAM.parquet")
    assert len(exported) == 5
    with pytest.raises(NotFittedError):
        deploy_recommender(
            SimpleNamespace(config=config, image_model=None, catalogue=None), session=local_session
        )


def test_deploy_recommender_registers_the_batch_procedure_which_reproduces_the_uploaded_lists(
    local_session, tiny_model: ImageModel, catalogue: Catalogue, local_embeddings: np.ndarray, shoppers
) -> None:
    from fashion_reco.config import BlendConfig
    from fashion_reco.recommend.base import FitContext
    from fashion_reco.recommend.blend import BlendRecommender
    from fashion_reco.snowflake.sql import collect_frame

    customers, interactions, _ = shoppers
    blend = BlendRecommender(BlendConfig(tune=False, k=3)).fit(
        interactions, FitContext.from_catalogue(catalogue, local_embeddings, customers=customers)
    )
    config = RecommenderConfig(
        snowflake={"table_prefix": "BR_T_", "stage": "BR_T_STAGE", "procedure_name": "BR_T_BATCH"},
        blend={"k": 3},
    )
    fitted = SimpleNamespace(
        config=config,
        image_model=tiny_model,
        catalogue=catalogue,
        item_embeddings=local_embeddings,
        customers=customers,
        interactions=interactions,
        recommender=blend,
        recommend=lambda ids, k: blend.recommend(ids, k=k),
    )
    report = deploy_recommender(fitted, session=local_session)
    assert report.batch is not None and report.batch.procedure == "BR_T_BATCH" and report.batch.task is None
    assert "batch procedure BR_T_BATCH" in report.summary()
    uploaded = collect_frame(local_session.table("BR_T_RECOMMENDATIONS")).sort_values(["CUSTOMER_ID", "RANK"])
    json.loads(local_session.call("BR_T_BATCH", 3))
    recomputed = collect_frame(local_session.table("BR_T_RECOMMENDATIONS")).sort_values(
        ["CUSTOMER_ID", "RANK"]
    )
    assert len(recomputed) == len(uploaded) == 9
    assert np.allclose(recomputed["SCORE"].to_numpy(), uploaded["SCORE"].to_numpy(), rtol=1e-5)
