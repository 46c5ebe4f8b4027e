"""The batch procedure scoring with the fitted LightGBM ranker: the handler on pandas frames, the procedure in local
testing, the staged text model, the generated CREATE PROCEDURE text, and the guards around a rebuilt state."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from snowflake.snowpark.types import StructType

from fashion_reco.config import BlendConfig, RankerConfig, SnowflakeConfig
from fashion_reco.data.simulation import simulate_retail
from fashion_reco.errors import NotFittedError, SnowflakeError
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.candidates import build_env
from fashion_reco.recommend.ranker import RankerRecommender
from fashion_reco.snowflake.batch import (
    BlendScorer,
    ScoringPayload,
    WarehouseFrames,
    batch_recommend,
    customers_to_score,
    deploy_batch,
    iter_recommendations,
    procedure_arguments,
    read_frames,
    register_procedure,
    scorer_for,
    scorer_packages,
    uses_prices,
)
from fashion_reco.snowflake.ranker_scoring import RankerScorer, model_file_name, pin_vocabulary
from fashion_reco.snowflake.sql import collect_frame
from fashion_reco.snowflake.tables import (
    TABLES,
    TableSpec,
    catalogue_rows,
    clickstream_rows,
    customers_rows,
    embedding_rows,
    write_table,
)

K = 6
LABELS = ("dress", "hat", "pants", "shirt", "shoes", "skirt")


@pytest.fixture(scope="module")
def retail() -> dict[str, Any]:
    """The simulator's shop (60 items in 6 labels, 100 customers, 28 days), label-clustered 512-d embeddings, and a
    ranker that trained (no fallback: the gate is off so that the LightGBM path is what is tested)."""
    labels = np.repeat(LABELS, 10)
    items = pd.DataFrame({"item_id": [f"i{j:03d}" for j in range(labels.size)], "label": labels})
    sim = simulate_retail(items, n_customers=100, days=28, seed=3)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(LABELS), 512))
    emb = centres[pd.factorize(labels)[0]] + 0.5 * rng.normal(size=(labels.size, 512))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    context = FitContext(
        item_ids=items["item_id"].to_numpy(),
        item_embeddings=emb,
        item_labels=labels.astype(object),
        customers=sim.customers.frame,
    )
    config = RankerConfig(n_windows=2, max_rounds=30, validate_against_blend=False, min_train_customers=20)
    model = RankerRecommender(config).fit(sim.interactions, context)
    assert model.fallback_ is None and model.state_ is not None
    frames = WarehouseFrames(
        clickstream=clickstream_rows(sim.interactions),
        customers=customers_rows(sim.customers),
        embeddings=embedding_rows(items["item_id"], emb),
        catalogue=catalogue_rows(items),
    )
    return {"items": items, "sim": sim, "emb": emb, "context": context, "model": model, "frames": frames}


def _assert_same_lists(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same customers, ranks, scores; the same item at every rank except among tied scores."""
    want = want.rename(columns={c: c.upper() for c in want.columns})
    keys = ["CUSTOMER_ID", "RANK"]
    merged = got.merge(want, on=keys, suffixes=("_w", "_l"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert np.allclose(merged["SCORE_w"], merged["SCORE_l"], rtol=1e-5, atol=1e-6)
    tied = merged.groupby("CUSTOMER_ID")["SCORE_l"].transform(lambda s: s.round(6).duplicated(keep=False))
    assert (merged.loc[~tied, "ITEM_ID_w"] == merged.loc[~tied, "ITEM_ID_l"]).all()
    assert (merged.loc[~tied, "REASON_w"] == merged.loc[~tied, "REASON_l"]).all()


def _assert_same_features(rebuilt: Any, local: Any, n_customers: int = 40) -> None:
    """The same candidates and feature matrix for the first customers: every column bit for bit, except the
    collaborative source's score — implicit's multi-threaded ALS refit is reproducible only to float rounding."""
    rows = np.arange(n_customers)
    a, b = rebuilt.generator.generate(rows), local.generator.generate(rows)
    assert np.array_equal(a.item, b.item) and np.array_equal(a.row, b.row)
    x, y = rebuilt.features.transform(rows, a).X, local.features.transform(rows, b).X
    threaded = [j for j, name in enumerate(local.feature_names) if name.startswith("src_collaborative")]
    exact = np.setdiff1d(np.arange(x.shape[1]), threaded)
    np.testing.assert_array_equal(x[:, exact], y[:, exact])
    np.testing.assert_allclose(x[:, threaded], y[:, threaded], rtol=1e-5, atol=1e-6)


def _model_dir(scorer: RankerScorer, tmp_path: Path) -> Path:
    scorer.write_model(tmp_path)
    return tmp_path


def test_the_deployed_scorer_follows_the_model(retail: dict[str, Any]) -> None:
    """The ranker's own scorer when it trained; the blend's when the model is a blend or the ranker fell back."""
    assert isinstance(scorer_for(retail["model"]), RankerScorer)
    blend = BlendRecommender(BlendConfig(tune=False)).fit(retail["sim"].interactions, retail["context"])
    assert isinstance(scorer_for(blend), BlendScorer)
    small = RankerRecommender(RankerConfig(min_train_customers=10**6)).fit(
        retail["sim"].interactions, retail["context"]
    )
    assert small.fallback_ is not None
    scorer = scorer_for(small)
    assert isinstance(scorer, BlendScorer) and scorer.payload.weights == small.fallback_.weights_
    with pytest.raises(NotFittedError, match="fell back"):
        RankerScorer.from_recommender(small)
    with pytest.raises(SnowflakeError, match="no batch scorer"):
        scorer_for(object())  # type: ignore[arg-type]


def test_handler_on_pandas_frames_equals_local_ranker_recommend(
    retail: dict[str, Any], tmp_path: Path
) -> None:
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    payload = ScoringPayload.from_json(scorer.payload.to_json())
    assert payload == scorer.payload and payload.kind == "ranker"
    assert payload.model_file == model_file_name(retail["model"].state_.model_text)[0]
    got = batch_recommend(retail["frames"], payload, K, model_dir=_model_dir(scorer, tmp_path))
    ids = customers_to_score(retail["frames"])
    assert got["CUSTOMER_ID"].nunique() == len(ids) == 100 and len(got) == 100 * K
    _assert_same_lists(got, retail["model"].recommend(ids, k=K))


def test_the_rebuilt_state_is_the_fitted_one(retail: dict[str, Any], tmp_path: Path) -> None:
    """Sources and features refitted from the warehouse frames equal those ``fit`` built (same data, same cut)."""
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    rebuilt = scorer.fitted(retail["frames"]).state_
    local = retail["model"].state_
    assert rebuilt is not None and rebuilt.cut_ns == local.cut_ns
    assert rebuilt.feature_names == local.feature_names and rebuilt.generator.names == local.generator.names
    _assert_same_features(rebuilt, local)


def test_customers_are_scored_in_batches_with_the_same_result(retail: dict[str, Any]) -> None:
    scorer = scorer_for(retail["model"])
    model = scorer.fitted(retail["frames"])
    ids = customers_to_score(retail["frames"])
    parts = list(iter_recommendations(model, ids, K, batch_customers=40))
    assert [p["CUSTOMER_ID"].nunique() for p in parts] == [40, 40, 20]
    whole = pd.concat(list(iter_recommendations(model, ids, K)), ignore_index=True)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    # reasons are explained as one call over every customer would be: TreeSHAP here (100 × K rows) ...
    assert model.ranker_config.explain_method == "shap"
    # ... and path attribution for every batch once the whole call is larger than shap_max_rows
    model.ranker_config = model.ranker_config.model_copy(
        update={"explain_method": "auto", "shap_max_rows": 500}
    )
    small_batches = pd.concat(
        list(iter_recommendations(model, ids, K, batch_customers=40)), ignore_index=True
    )
    assert model.ranker_config.explain_method == "path"
    local = retail["model"]
    local.ranker_config = local.ranker_config.model_copy(update={"shap_max_rows": 500})
    try:
        want = local.recommend(ids, k=K)
    finally:
        local.ranker_config = local.ranker_config.model_copy(update={"shap_max_rows": 5_000})
    assert small_batches["REASON"].tolist() == want["reason"].tolist()


def test_the_model_file_is_read_only_when_intact(retail: dict[str, Any], tmp_path: Path) -> None:
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    frames, payload = retail["frames"], scorer.payload
    with pytest.raises(SnowflakeError, match="missing from the procedure's imports"):
        batch_recommend(frames, payload, K, model_dir=tmp_path)
    with pytest.raises(SnowflakeError, match="no import directory"):
        batch_recommend(frames, payload, K)
    path = scorer.write_model(tmp_path)
    path.write_text(path.read_text().replace("num_leaves", "num_leafs", 1))
    with pytest.raises(SnowflakeError, match="does not match its checksum"):
        batch_recommend(frames, payload, K, model_dir=tmp_path)


def test_the_payload_is_checksummed_and_versioned(retail: dict[str, Any]) -> None:
    text = scorer_for(retail["model"]).payload.to_json()
    doc = json.loads(text)
    assert "password" not in text.lower() and len(text) < 20_000  # small enough for the procedure's closure
    doc["payload"]["feature_names"] = doc["payload"]["feature_names"][:-1]
    with pytest.raises(SnowflakeError, match="checksum mismatch"):
        ScoringPayload.from_json(json.dumps(doc))
    with pytest.raises(SnowflakeError, match="unreadable"):
        ScoringPayload.from_json("{not json")
    old = ScoringPayload(kind="blend", config={}, version=1)
    with pytest.raises(SnowflakeError, match="version 1"):
        ScoringPayload.from_json(old.to_json())


def test_an_empty_clickstream_is_a_clear_error(retail: dict[str, Any], tmp_path: Path) -> None:
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    frames = retail["frames"]
    empty = WarehouseFrames(
        frames.clickstream.iloc[:0], frames.customers, frames.embeddings, frames.catalogue
    )
    with pytest.raises(SnowflakeError, match="CLICKSTREAM has no event"):
        batch_recommend(empty, scorer.payload, K, model_dir=_model_dir(scorer, tmp_path))


def test_a_model_whose_features_the_warehouse_cannot_rebuild_fails_clearly(
    retail: dict[str, Any], tmp_path: Path
) -> None:
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    names = [*scorer.payload.feature_names, "item_price"]
    odd = ScoringPayload(**{**scorer.payload.__dict__, "feature_names": names})
    with pytest.raises(SnowflakeError, match="do not match the deployed model"):
        batch_recommend(retail["frames"], odd, K, model_dir=_model_dir(scorer, tmp_path))


def test_label_codes_stay_those_the_model_learned() -> None:
    """A label new to the warehouse (sorting first) is unlabelled to the model; the others keep their codes."""
    trained = ["dress", "hat", "shirt"]
    now = np.array(["aaa-new", "dress", "hat", "shirt", None, "hat"], dtype=object)
    env, names_now, segments_now = build_env(3, now, np.array(["b", "a", None], dtype=object), None)
    pinned = pin_vocabulary(env, names_now, segments_now, trained, ["a", "b"])
    assert pinned.item_label.tolist() == [-1, 0, 1, 2, -1, 1]
    assert pinned.n_labels == 3
    assert pinned.customer_segment.tolist() == [1, 0, -1] and pinned.n_segments == 2
    gone = pin_vocabulary(env, names_now, segments_now, ["zzz"], [])
    assert gone.n_labels == 0 and (gone.item_label == -1).all() and gone.n_segments == 0


# -- in local testing -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ranker_tables(local_session, retail: dict[str, Any]) -> dict[str, str]:
    """The simulated shop written to the local session (names BR_K_<BASE>), plus an event on an unknown item."""
    names = {base: f"BR_K_{base}" for base in ("CATALOGUE", "IMAGE_EMBEDDINGS", "CUSTOMERS", "CLICKSTREAM")}
    frames = retail["frames"]
    for base, rows in (
        ("CATALOGUE", frames.catalogue),
        ("IMAGE_EMBEDDINGS", frames.embeddings),
        ("CUSTOMERS", frames.customers),
        ("CLICKSTREAM", frames.clickstream),
    ):
        write_table(local_session, names[base], rows, spec=base)
    # an event on an item outside the catalogue, after every other one: no model can use it, so it must neither be
    # read nor move the scoring time
    ghost = frames.clickstream.iloc[:1].copy()
    ghost["EVENT_ID"] = "ghost-event"
    ghost["ITEM_ID"] = "ghost-item"
    ghost["TIMESTAMP"] = pd.Timestamp(frames.clickstream["TIMESTAMP"].max()) + pd.Timedelta(days=3)
    write_table(local_session, names["CLICKSTREAM"], ghost, spec="CLICKSTREAM")
    return {**names, "RECOMMENDATIONS": "BR_K_RECOMMENDATIONS"}


def test_read_frames_selects_the_lookback_window_and_only_needed_columns(
    local_session, retail: dict[str, Any], ranker_tables: dict[str, str]
) -> None:
    names = {b: n for b, n in ranker_tables.items() if b != "RECOMMENDATIONS"}
    clicks = retail["frames"].clickstream
    latest = pd.Timestamp(clicks["TIMESTAMP"].max())
    full = read_frames(local_session, names, customer_columns=["AGE_BAND"])
    assert full.as_of == latest and len(full.clickstream) == len(clicks)  # the ghost event is left out
    assert "ghost-item" not in set(full.clickstream["ITEM_ID"])
    assert list(full.customers.columns) == ["CUSTOMER_ID", "AGE_BAND"]
    assert list(full.catalogue.columns) == ["ITEM_ID", "LABEL"]
    week = read_frames(local_session, names, customer_columns=[], lookback_days=7)
    since = latest - pd.Timedelta(days=7)
    assert week.as_of == latest and list(week.customers.columns) == ["CUSTOMER_ID"]
    assert len(week.clickstream) == int((pd.to_datetime(clicks["TIMESTAMP"]) >= since).sum()) > 0
    assert pd.to_datetime(week.clickstream["TIMESTAMP"]).min() >= since


def test_procedure_in_local_testing_scores_with_the_staged_ranker(
    local_session, retail: dict[str, Any], ranker_tables: dict[str, str]
) -> None:
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    config = SnowflakeConfig(procedure_name="BR_K_RECOMMEND", stage="BR_K_STAGE")
    arguments = procedure_arguments(local_session, scorer, ranker_tables, config)
    assert arguments["imports"] == [f"@BR_K_STAGE/ranker/{scorer.model_file}"]
    register_procedure(local_session, scorer, ranker_tables, config, batch_customers=40)
    summary = json.loads(local_session.call("BR_K_RECOMMEND", K))
    assert summary["scorer"] == "ranker" and summary["batches"] == 3
    assert summary["customers"] == 100 and summary["rows"] == 100 * K
    table = collect_frame(local_session.table(ranker_tables["RECOMMENDATIONS"]))
    ids = customers_to_score(retail["frames"])
    _assert_same_lists(
        table[["CUSTOMER_ID", "ITEM_ID", "SCORE", "RANK", "REASON"]], retail["model"].recommend(ids, k=K)
    )
    # the same model uploads to the same content-addressed file (PUT skipped, not duplicated)
    assert scorer.upload(local_session, "BR_K_STAGE") == f"@BR_K_STAGE/ranker/{scorer.model_file}"


def test_create_procedure_text_on_an_account(
    local_session, retail: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CREATE PROCEDURE statement Snowpark generates from our arguments, captured instead of being sent."""
    from snowflake.snowpark.stored_procedure import StoredProcedureRegistration

    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    config = SnowflakeConfig(
        mode="account",
        procedure_name="reco.public.batch_recommend",
        stage="BR_SQL_STAGE",
        check_packages=False,
    )
    names = {
        "RECOMMENDATIONS": "R",
        "CLICKSTREAM": "C",
        "CUSTOMERS": "U",
        "IMAGE_EMBEDDINGS": "E",
        "CATALOGUE": "K",
    }
    arguments = procedure_arguments(
        local_session,
        scorer,
        names,
        config,
        code_imports=["@BR_SQL_STAGE/code/abc/fashion_reco-abc.zip"],
        lookback_days=180,
        account=True,
    )
    statements: list[str] = []
    monkeypatch.setattr(local_session, "_run_query", lambda sql, *a, **k: statements.append(sql) or [])
    monkeypatch.setattr(local_session, "_list_files_in_stage", lambda *a, **k: set())
    monkeypatch.setattr(
        local_session, "_resolve_packages", lambda packages, *a, **k: [str(p) for p in packages]
    )
    monkeypatch.setattr(local_session._conn, "upload_stream", lambda *a, **k: None)
    StoredProcedureRegistration(local_session).register(**arguments)
    create = next(s for s in statements if "PROCEDURE" in s and "CREATE" in s)
    text = " ".join(create.split())
    assert text.startswith("CREATE OR REPLACE PROCEDURE RECO.PUBLIC.BATCH_RECOMMEND(arg1 INT) COPY GRANTS")
    assert "RETURNS STRING LANGUAGE PYTHON" in text and "RUNTIME_VERSION=3.11" in text
    imports = re.search(r"IMPORTS=\(([^)]*)\)", text)
    assert imports is not None
    listed = [i.strip("'") for i in imports.group(1).split(",")]
    # the library's code, the ranker's text model, and Snowpark's own pickled handler (large closures are staged)
    assert listed[:2] == [
        "@BR_SQL_STAGE/code/abc/fashion_reco-abc.zip",
        f"@BR_SQL_STAGE/ranker/{scorer.model_file}",
    ]
    assert all(i.startswith("@") for i in listed)
    assert "'lightgbm>=3.3.5'" in text and "'implicit>=0.7'" in text and "EXECUTE AS OWNER" in text
    assert all("==" not in p for p in arguments["packages"])
    assert any(s.startswith("COMMENT ON PROCEDURE") for s in statements)
    payload = ScoringPayload.from_json(arguments["func"].__closure__[-1].cell_contents)
    assert payload.lookback_days == 180.0 and payload.kind == "ranker"


def test_the_procedure_asks_for_what_the_model_s_sources_import(retail: dict[str, Any]) -> None:
    """The collaborative source needs ``implicit`` in the warehouse; a user's own package list is taken as is."""
    scorer = scorer_for(retail["model"])
    assert "collaborative" in scorer.payload.options["sources"]
    names = [spec.split(">")[0] for spec in scorer_packages(scorer, SnowflakeConfig())]
    assert names.count("implicit") == 1 and "lightgbm" in names
    mine = SnowflakeConfig(procedure_packages=["numpy", "lightgbm>=4.1"])
    assert scorer_packages(scorer, mine) == ["numpy", "lightgbm>=4.1"]
    blend = BlendRecommender(BlendConfig(tune=False)).fit(retail["sim"].interactions, retail["context"])
    assert not any(s.startswith("implicit") for s in scorer_packages(scorer_for(blend), SnowflakeConfig()))


def test_deploy_batch_in_local_testing_runs_the_ranker_procedure(
    local_session, retail: dict[str, Any], ranker_tables: dict[str, str]
) -> None:
    config = SnowflakeConfig(
        table_prefix="BR_K_", procedure_name="BR_K_DEPLOYED", stage="BR_K_STAGE", batch_lookback_days=400
    )
    result = deploy_batch(local_session, scorer_for(retail["model"]), config, k=K)
    assert result.task is None and result.first_run is not None
    assert result.first_run["scorer"] == "ranker" and result.first_run["rows"] == 100 * K
    assert result.first_run["events"] == len(retail["frames"].clickstream)


def test_a_segment_column_outside_the_declared_schema_comes_from_attributes(local_session) -> None:
    from fashion_reco.snowflake.batch import _read_customers

    people = pd.DataFrame({"customer_id": ["a", "b", "c"], "age_band": ["18-24", None, "35-44"]})
    people["tier"] = ["gold", None, "silver"]
    write_table(local_session, "BR_A_CUSTOMERS", customers_rows(people), spec="CUSTOMERS")
    frame = _read_customers(local_session.table("BR_A_CUSTOMERS"), ["tier", "AGE_BAND"])
    frame = frame.sort_values("CUSTOMER_ID").reset_index(drop=True)
    assert list(frame.columns) == ["CUSTOMER_ID", "AGE_BAND", "TIER"]
    assert frame["TIER"].tolist() == ["gold", None, "silver"]
    assert frame["AGE_BAND"].tolist() == ["18-24", None, "35-44"]


_TORCHLESS_RANKER = """
import sys, json, pickle
class Block:  # torch, torchvision, onnxruntime and scikit-learn (only an optional import of lightgbm) are absent
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "onnxruntime", "sklearn"}:
            raise ImportError(f"{name} is not available in the procedure's runtime")
sys.meta_path.insert(0, Block())
import pandas as pd
from fashion_reco.snowflake.batch import ScoringPayload, WarehouseFrames, batch_recommend
payload = ScoringPayload.from_json(open(sys.argv[1]).read())
frames = WarehouseFrames(*[pd.read_parquet(f"{sys.argv[2]}/{name}.parquet") for name in
                           ("clickstream", "customers", "embeddings", "catalogue")])
out = batch_recommend(frames, payload, 3, model_dir=sys.argv[2])
print(json.dumps({"rows": len(out), "modules": sorted({m.split('.')[0] for m in sys.modules})}))
"""


def test_the_ranker_procedure_runtime_needs_neither_torch_nor_onnxruntime(
    retail: dict[str, Any], tmp_path: Path
) -> None:
    """What scoring with the ranker imports, in a fresh interpreter where torch, onnxruntime and scikit-learn cannot
    be imported: it runs, and only on packages the procedure asks the channel for."""
    import subprocess
    import sys

    from fashion_reco.snowflake.packages import parse_spec

    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer)
    scorer.write_model(tmp_path)
    (tmp_path / "payload.json").write_text(scorer.payload.to_json())
    frames = retail["frames"]
    for name in ("clickstream", "customers", "embeddings", "catalogue"):
        frame = getattr(frames, name).drop(columns=["ATTRIBUTES"], errors="ignore")
        frame.to_parquet(tmp_path / f"{name}.parquet")
    run = subprocess.run(
        [sys.executable, "-c", _TORCHLESS_RANKER, str(tmp_path / "payload.json"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["rows"] == 100 * 3 and "torch" not in result["modules"]
    channel = {parse_spec(s).name for s in scorer_packages(scorer, SnowflakeConfig())}
    names = {"pydantic_settings": "pydantic-settings", "snowflake": "snowflake-snowpark-python"}
    heavy = {
        "numpy",
        "pandas",
        "scipy",
        "pydantic",
        "pydantic_settings",
        "lightgbm",
        "implicit",
        "sklearn",
        "faiss",
    }
    used = {names.get(m, m) for m in heavy & set(result["modules"])}
    assert used <= channel, used - channel


# -- price features -------------------------------------------------------------------------------------------------
PRICE_FEATURES = ["item_price", "cust_price_mean", "cust_price_median", "item_price_rel"]


def _priced_shop(retail: dict[str, Any], where: str) -> dict[str, Any]:
    """The shop with prices — in the catalogue's ``price`` column, or the log's ``unit_price`` one (what a real
    receipt log such as Online Retail has) — and a ranker fitted on it with the library's own context builders."""
    from fashion_reco.data.interactions import Interactions

    rng = np.random.default_rng(7)
    items = retail["items"].copy()
    base = np.round(rng.uniform(5.0, 80.0, size=len(items)), 2)
    events = retail["sim"].interactions.frame
    if where == "catalogue":
        items["price"] = np.where(np.arange(len(items)) % 9 == 4, np.nan, base)  # a few items without one
        log = retail["sim"].interactions
    else:
        position = pd.Index(items["item_id"]).get_indexer(events["item_id"])
        paid = np.round(base[position] * rng.uniform(0.8, 1.0, size=len(events)), 2)
        events["unit_price"] = np.where(rng.random(len(events)) < 0.1, np.nan, paid)  # some receipts lack it
        log = Interactions.from_frame(events)
    prices = items["price"].to_numpy() if where == "catalogue" else None
    context = replace(retail["context"], item_prices=prices)
    config = RankerConfig(n_windows=2, max_rounds=30, validate_against_blend=False, min_train_customers=20)
    model = RankerRecommender(config).fit(log, context)
    assert model.fallback_ is None and model.state_ is not None
    assert set(PRICE_FEATURES) <= set(model.state_.feature_names)
    frames = WarehouseFrames(
        clickstream=clickstream_rows(log),
        customers=retail["frames"].customers,
        embeddings=retail["frames"].embeddings,
        catalogue=catalogue_rows(items),
    )
    return {"model": model, "frames": frames, "items": items, "log": log}


@pytest.fixture(scope="module", params=["catalogue", "log"])
def priced(request: pytest.FixtureRequest, retail: dict[str, Any]) -> dict[str, Any]:
    return {"where": request.param, **_priced_shop(retail, request.param)}


def test_prices_travel_in_the_price_columns(priced: dict[str, Any]) -> None:
    """CATALOGUE.PRICE is the catalogue's price, CLICKSTREAM.PRICE the log's unit price (NULL where unknown)."""
    frames = priced["frames"]
    catalogue_price = pd.to_numeric(frames.catalogue["PRICE"]).to_numpy(np.float64)
    event_price = pd.to_numeric(frames.clickstream["PRICE"]).to_numpy(np.float64)
    if priced["where"] == "catalogue":
        np.testing.assert_array_equal(catalogue_price, priced["items"]["price"].to_numpy())
        assert frames.clickstream["PRICE"].isna().all()
        assert all(a is None or "price" not in a for a in frames.catalogue["ATTRIBUTES"])
    else:
        assert frames.catalogue["PRICE"].isna().all()
        np.testing.assert_array_equal(event_price, priced["log"].frame["unit_price"].to_numpy(np.float64))
    assert uses_prices(scorer_for(priced["model"]).payload)


def test_a_text_catalogue_price_stays_an_attribute() -> None:
    """Local fitting skips a non-numeric price column (warned), so the warehouse carries no PRICE for it either."""
    items = pd.DataFrame({"item_id": ["a", "b"], "price": ["12.99 EUR", None]})
    rows = catalogue_rows(items)
    assert rows["PRICE"].isna().all()
    assert rows["ATTRIBUTES"].tolist() == [{"price": "12.99 EUR"}, None]


def test_handler_with_price_features_equals_local_recommend(priced: dict[str, Any], tmp_path: Path) -> None:
    scorer = scorer_for(priced["model"])
    assert isinstance(scorer, RankerScorer)
    rebuilt = scorer.fitted(priced["frames"]).state_
    local = priced["model"].state_
    assert rebuilt is not None and rebuilt.feature_names == local.feature_names
    _assert_same_features(rebuilt, local)
    got = batch_recommend(priced["frames"], scorer.payload, K, model_dir=_model_dir(scorer, tmp_path))
    ids = customers_to_score(priced["frames"])
    assert len(got) == len(ids) * K
    _assert_same_lists(got, priced["model"].recommend(ids, k=K))


def test_a_model_without_prices_ignores_the_price_columns(
    retail: dict[str, Any], priced: dict[str, Any], tmp_path: Path
) -> None:
    """The plain ranker scored on the priced tables: no price feature is rebuilt, the lists are unchanged."""
    scorer = scorer_for(retail["model"])
    assert isinstance(scorer, RankerScorer) and not uses_prices(scorer.payload)
    assert not set(PRICE_FEATURES) & set(scorer.payload.feature_names)
    frames = replace(priced["frames"], clickstream=clickstream_rows(retail["sim"].interactions))
    got = batch_recommend(frames, scorer.payload, K, model_dir=_model_dir(scorer, tmp_path))
    _assert_same_lists(got, retail["model"].recommend(customers_to_score(frames), k=K))


def test_a_priced_model_on_tables_without_prices_fails_clearly(
    priced: dict[str, Any], tmp_path: Path
) -> None:
    """Frames without PRICE columns rebuild no price feature: the procedure's feature-mismatch error, not a guess."""
    scorer = scorer_for(priced["model"])
    assert isinstance(scorer, RankerScorer)
    frames = priced["frames"]
    bare = replace(
        frames,
        clickstream=frames.clickstream.drop(columns=["PRICE"]),
        catalogue=frames.catalogue.drop(columns=["PRICE"]),
    )
    with pytest.raises(SnowflakeError, match="do not match the deployed model"):
        batch_recommend(bare, scorer.payload, K, model_dir=_model_dir(scorer, tmp_path))


@pytest.mark.slow  # ~30 s each: local testing writes the shop's events and merges 600 recommendation rows
def test_procedure_with_price_features_in_local_testing_equals_local_recommend(
    local_session, retail: dict[str, Any], priced: dict[str, Any]
) -> None:
    prefix = f"BR_P{priced['where'][0].upper()}_"
    names = {
        base: f"{prefix}{base}" for base in ("CATALOGUE", "IMAGE_EMBEDDINGS", "CUSTOMERS", "CLICKSTREAM")
    }
    frames = priced["frames"]
    for base, rows in (
        ("CATALOGUE", frames.catalogue),
        ("IMAGE_EMBEDDINGS", frames.embeddings),
        ("CUSTOMERS", frames.customers),
        ("CLICKSTREAM", frames.clickstream),
    ):
        write_table(local_session, names[base], rows, spec=base)
    tables = {b: n for b, n in names.items()}
    read = read_frames(local_session, tables, customer_columns=[], prices=True)
    assert list(read.catalogue.columns) == ["ITEM_ID", "LABEL", "PRICE"]
    assert list(read.clickstream.columns)[-1] == "PRICE"
    assert "PRICE" not in read_frames(local_session, tables, customer_columns=[]).catalogue.columns
    scorer = scorer_for(priced["model"])
    assert isinstance(scorer, RankerScorer)
    config = SnowflakeConfig(procedure_name=f"{prefix}RECOMMEND", stage=f"{prefix}STAGE")
    register_procedure(local_session, scorer, {**names, "RECOMMENDATIONS": f"{prefix}RECS"}, config)
    summary = json.loads(local_session.call(f"{prefix}RECOMMEND", K))
    assert summary["scorer"] == "ranker" and summary["rows"] == 100 * K
    table = collect_frame(local_session.table(f"{prefix}RECS"))
    _assert_same_lists(
        table[["CUSTOMER_ID", "ITEM_ID", "SCORE", "RANK", "REASON"]],
        priced["model"].recommend(customers_to_score(frames), k=K),
    )


def test_a_table_from_before_prices_is_named_in_the_error(local_session, retail: dict[str, Any]) -> None:
    """A priced model on a CATALOGUE created without PRICE: one error naming the table and the fix."""
    names = {base: f"BR_O_{base}" for base in ("CATALOGUE", "IMAGE_EMBEDDINGS", "CLICKSTREAM")}
    frames = retail["frames"]
    write_table(local_session, names["IMAGE_EMBEDDINGS"], frames.embeddings, spec="IMAGE_EMBEDDINGS")
    write_table(local_session, names["CLICKSTREAM"], frames.clickstream.iloc[:50], spec="CLICKSTREAM")
    declared = TABLES["CATALOGUE"]
    before = TableSpec(
        "CATALOGUE", StructType([f for f in declared.schema.fields if f.name != "PRICE"]), ("ITEM_ID",)
    )
    write_table(local_session, names["CATALOGUE"], frames.catalogue.drop(columns=["PRICE"]), spec=before)
    read_frames(local_session, names, customer_columns=[])  # a model without prices reads it as before
    with pytest.raises(SnowflakeError, match="BR_O_CATALOGUE has no PRICE column"):
        read_frames(local_session, names, customer_columns=[], prices=True)
    # writing the catalogue again adds the column to the old table (NULL for rows not written) and fills it
    priced = catalogue_rows(retail["items"].assign(price=np.arange(len(retail["items"]), dtype=float)))
    write_table(local_session, names["CATALOGUE"], priced.iloc[:5], spec="CATALOGUE")
    read = read_frames(local_session, names, customer_columns=[], prices=True).catalogue
    read = read.sort_values("ITEM_ID").reset_index(drop=True)
    assert (
        read["PRICE"].iloc[:5].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and read["PRICE"].iloc[5:].isna().all()
    )
    assert len(read) == len(retail["items"])


def test_an_account_table_gains_the_price_column_in_place(recording_session) -> None:
    """On an account a write upgrades an older table with ``ALTER TABLE … ADD COLUMN IF NOT EXISTS`` (no rewrite)."""
    from fashion_reco.snowflake.backend import AccountBackend

    spec = TABLES["CLICKSTREAM"]
    AccountBackend(recording_session).add_columns(
        "FASHION_RECO_CLICKSTREAM", [f for f in spec.schema.fields if f.name in spec.added]
    )
    assert recording_session.statements == [
        'ALTER TABLE "FASHION_RECO_CLICKSTREAM" ADD COLUMN IF NOT EXISTS "PRICE" FLOAT'
    ]
