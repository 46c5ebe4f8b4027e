"""Every example in examples/ runs in its ``--smoke`` mode and produces what it says it does: examples never rot.

Each example is imported by path and its ``main(["--smoke", "--out", <tmp>])`` is run once per module (a fixture);
the tests read the tables and files it wrote and check them against the library's own answers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from fashion_reco import Columns, EventTypes, FashionRecommender, RecommenderConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TESTED = {"quickstart", "s3_catalogue", "snowflake_deploy", "evaluation", "config_reference"}
# needs a real Snowflake account, so it has no --smoke run; tests/snowflake/test_account_smoke_example.py tests it
ACCOUNT_ONLY = {"snowflake_account_smoke"}
METRICS = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage")


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path (examples are scripts, not a package)."""
    module_name = f"fashion_reco_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Run:
    code: int
    out: Path
    stdout: str

    def json(self, name: str) -> dict:
        return json.loads((self.out / name).read_text(encoding="utf-8"))


def run_example(name: str, out: Path, *extra: str) -> Run:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = load_example(name).main(["--smoke", "--out", str(out), *extra])
    return Run(code, out, buffer.getvalue())


def test_every_example_is_tested_and_has_main_and_smoke() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    known = TESTED | ACCOUNT_ONLY
    assert names == known, f"examples without a test (or tests without an example): {names ^ known}"
    for name in sorted(names):
        source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        assert "def main(argv: list[str] | None = None) -> int:" in source, name
        assert name in ACCOUNT_ONLY or '"--smoke"' in source, name
        assert 'if __name__ == "__main__":' in source and 'if __name__ == "__main__":' in source, name


# ---------------------------------------------------------------------------------------------------- quickstart
@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_example("quickstart", tmp_path_factory.mktemp("quickstart"))


def test_quickstart_similar_items_are_ranked_neighbours(quickstart: Run) -> None:
    assert quickstart.code == 0, quickstart.stdout
    summary = quickstart.json("quickstart.json")
    similar = pd.read_csv(quickstart.out / "similar.csv")
    assert similar[Columns.ITEM_ID].eq(summary["query_item"]).all()
    assert similar[Columns.RANK].tolist() == [1, 2, 3, 4, 5]
    assert not similar[Columns.SIMILAR_ITEM_ID].eq(summary["query_item"]).any()
    assert np.all(np.diff(similar[Columns.SCORE].to_numpy()) <= 1e-7)
    assert "more like this" in quickstart.stdout


def test_quickstart_recommends_for_known_and_cold_customers_and_reloads(quickstart: Run) -> None:
    summary = quickstart.json("quickstart.json")
    recs = pd.read_csv(quickstart.out / "recommendations.csv", dtype={Columns.ITEM_ID: str})
    known, cold = summary["known_customer"], summary["cold_customer"]
    assert recs.groupby(Columns.CUSTOMER_ID).size().to_dict() == {known: 5, cold: 5}
    assert recs[Columns.REASON].str.len().gt(0).all()
    assert summary["reloaded_same"] is True and "reloaded answers identical: True" in quickstart.stdout

    loaded = FashionRecommender.load(quickstart.out / "model")
    again = loaded.recommend([known, cold], k=5)
    assert again[Columns.ITEM_ID].tolist() == recs[Columns.ITEM_ID].tolist()
    events = loaded.interactions.frame
    bought = events.loc[
        (events[Columns.CUSTOMER_ID] == known) & (events[Columns.EVENT_TYPE] == EventTypes.PURCHASE),
        Columns.ITEM_ID,
    ]
    assert len(bought) > 0, "the example picks a customer who bought something"
    from fashion_reco.recommend.blend import BlendRecommender

    if isinstance(loaded.recommender, BlendRecommender):  # the blend filters purchases by default
        assert not set(bought) & set(recs.loc[recs[Columns.CUSTOMER_ID] == known, Columns.ITEM_ID])
    # the ranker keeps repurchases by default (a learned feature); the business rule still removes them
    ruled = loaded.recommend([known], k=5, filter_already_purchased=True)
    assert not set(bought) & set(ruled[Columns.ITEM_ID])


# ---------------------------------------------------------------------------------------------------- S3
@pytest.fixture(scope="module")
def s3_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_example("s3_catalogue", tmp_path_factory.mktemp("s3"))


def test_s3_example_fetches_every_uploaded_photo_then_resumes(s3_run: Run) -> None:
    assert s3_run.code == 0, s3_run.stdout
    summary = s3_run.json("s3_catalogue.json")
    keys = summary["uploaded_keys"]
    assert len(keys) == 30
    assert summary["first_fetch"] == {"downloaded": 30}
    assert summary["second_fetch"] == {"downloaded": 0, "skipped": 30, "failed": 0}
    dest = Path(summary["dest"])
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.jpg")) == sorted(
        k.removeprefix("shop/") for k in keys
    )
    expected_ids = sorted(k.removeprefix("shop/").removesuffix(".jpg") for k in keys)
    assert sorted(summary["item_ids"]) == expected_ids
    assert len(summary["classes"]) == 10


def test_s3_example_embeds_and_finds_similar_items(s3_run: Run) -> None:
    summary = s3_run.json("s3_catalogue.json")
    assert summary["embedding_shape"] == [30, 512]
    similar = pd.read_csv(s3_run.out / "similar.csv")
    assert similar[Columns.ITEM_ID].eq(summary["query_item"]).all() and len(similar) == 5
    assert set(similar[Columns.SIMILAR_ITEM_ID]) <= set(summary["item_ids"]) - {summary["query_item"]}


def test_s3_example_without_uri_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()):
        load_example("s3_catalogue").main([])
    assert info.value.code == 2


# ---------------------------------------------------------------------------------------------------- Snowflake
@pytest.fixture(scope="module")
def snowflake_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_example("snowflake_deploy", tmp_path_factory.mktemp("snowflake"))


def test_snowflake_example_deploys_every_table(snowflake_run: Run) -> None:
    assert snowflake_run.code == 0, snowflake_run.stdout
    summary = snowflake_run.json("snowflake_deploy.json")
    tables = summary["tables"]
    assert summary["mode"] == "local"
    assert tables["FASHION_RECO_CATALOGUE"] == tables["FASHION_RECO_IMAGE_EMBEDDINGS"] == 60
    assert summary["embedding_rows"] == 60 and summary["embedding_dim"] == 512
    assert tables["FASHION_RECO_RECOMMENDATIONS"] == 12 * tables["FASHION_RECO_CUSTOMERS"]
    recs = pd.read_csv(snowflake_run.out / "recommendations_table.csv")
    assert len(recs) == tables["FASHION_RECO_RECOMMENDATIONS"]
    assert recs.groupby("CUSTOMER_ID")["RANK"].apply(list).map(lambda r: r == list(range(1, 13))).all()
    assert recs["REASON"].str.len().gt(0).all()


def test_snowflake_example_in_warehouse_similarity_matches_local(snowflake_run: Run) -> None:
    warehouse = pd.read_csv(snowflake_run.out / "similar_in_warehouse.csv")
    local = pd.read_csv(snowflake_run.out / "similar_local.csv")
    assert warehouse["SIMILAR_ITEM_ID"].tolist() == local[Columns.SIMILAR_ITEM_ID].tolist()
    np.testing.assert_allclose(warehouse["SCORE"], local[Columns.SCORE], atol=1e-5)
    assert snowflake_run.json("snowflake_deploy.json")["same_neighbours"] is True


def test_snowflake_example_writes_the_account_sql(snowflake_run: Run) -> None:
    similar = (snowflake_run.out / "similar_items.sql").read_text()
    topk = (snowflake_run.out / "customer_topk.sql").read_text()
    assert 'VECTOR_COSINE_SIMILARITY(q."EMBEDDING", c."EMBEDDING")' in similar
    assert 'FROM "FASHION_RECO_IMAGE_EMBEDDINGS"' in similar and "<= 5" in similar and "QUALIFY" in similar
    assert (
        '"FASHION_RECO_CUSTOMER_PROFILES"' in topk
        and 'NOT EXISTS (SELECT 1 FROM "FASHION_RECO_CLICKSTREAM"' in topk
    )
    assert "snowflake.mode = 'account'" in snowflake_run.stdout


# ---------------------------------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def evaluation_run(tmp_path_factory: pytest.TempPathFactory, online_retail_csv: Path) -> Run:
    return run_example(
        "evaluation", tmp_path_factory.mktemp("evaluation"), "--retail-csv", str(online_retail_csv)
    )


def _check_metrics(table: pd.DataFrame) -> None:
    assert table[list(METRICS)].apply(lambda col: col.between(0, 1)).all().all(), table.to_string()
    assert table["n_customers"].nunique() == 1 and table["n_customers"].iloc[0] > 0


def test_evaluation_example_retail_blend_vs_baselines(evaluation_run: Run) -> None:
    assert evaluation_run.code == 0, evaluation_run.stdout
    warm = pd.read_csv(evaluation_run.out / "retail_warm.csv")
    cold = pd.read_csv(evaluation_run.out / "retail_cold.csv")
    for table in (warm, cold):
        assert table["model"].iloc[0] == "blend"
        assert {"popularity", "recent_popularity", "behaviour_only"} <= set(table["model"])
        assert "visual_only" not in set(table["model"]), "the purchase log has no photos"
        _check_metrics(table)
    ndcg = warm.set_index("model")["ndcg"]
    assert (ndcg.drop("blend") < ndcg["blend"]).all(), warm.to_string()
    assert cold["n_customers"].iloc[0] > 30


def test_evaluation_example_synthetic_through_the_facade(evaluation_run: Run) -> None:
    table = pd.read_csv(evaluation_run.out / "synthetic.csv")
    assert table["model"].iloc[0] == "ranker"  # the facade's personalised model
    assert {"popularity", "recent_popularity", "visual_only", "behaviour_only"} <= set(table["model"])
    _check_metrics(table)
    assert table["diversity"].between(0, 2).all()
    results = (evaluation_run.out / "results.md").read_text()
    assert "### Online Retail" in results and "### Synthetic fashion clickstream" in results
    assert results.count("| blend |") == 2 and results.count("| ranker |") == 1


# ---------------------------------------------------------------------------------------------------- configuration
def test_configuration_docs_are_generated_from_the_models() -> None:
    module = load_example("config_reference")
    assert module.undocumented() == []
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert module.main(["--check", str(ROOT / "docs" / "configuration.md")]) == 0, (
            "docs/configuration.md is stale: python examples/config_reference.py --write docs/configuration.md"
        )
    text = module.render()
    for section, field in RecommenderConfig.model_fields.items():
        assert f"## `[{section}]`" in text
        for name, info in field.annotation.model_fields.items():
            assert f"| `{info.alias or name}` |" in text, f"{section}.{name} missing"


def test_configuration_check_flags_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration reference\n")
    module = load_example("config_reference")
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert module.main(["--check", str(stale)]) == 1
    assert "out of date" in err.getvalue()


def test_config_reference_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "config_reference.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == load_example("config_reference").render()
