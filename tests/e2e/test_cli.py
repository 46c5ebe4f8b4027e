"""Every CLI subcommand, end to end on real photos; bad input exits non-zero with one line naming the culprit."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fashion_reco import Columns
from fashion_reco.cli import app
from fashion_reco.model.image_model import ImageModel

runner = CliRunner()

SMALL_TOML = """
[data]
num_workers = 0
[model]
image_size = 64
head_epochs = 1
finetune_epochs = 1
max_train_images = 60
augment = false
batch_size = 16
"""


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def small_toml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "small.toml"
    path.write_text(SMALL_TOML)
    return path


@pytest.fixture(scope="module")
def photo_folder(few_photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A retailer-style folder catalogue: <label>/<file>.jpg, 3 real photos per class."""
    root = tmp_path_factory.mktemp("shop")
    for photo in few_photos:
        (root / photo.parent.name).mkdir(exist_ok=True)
        (root / photo.parent.name / photo.name).write_bytes(photo.read_bytes())
    return root


@pytest.fixture(scope="module")
def trained_model_dir(photo_folder: Path, small_toml: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "image_model"
    code, stdout, stderr = run("train", "--catalogue", photo_folder, "--out", out, "--config", small_toml)
    assert code == 0, stderr
    assert "image model saved" in stdout
    return out


def test_train_writes_a_loadable_image_model(trained_model_dir: Path) -> None:
    model = ImageModel.load(trained_model_dir)
    assert len(model.classes) == 10


def test_embed_writes_one_unit_vector_per_photo(
    trained_model_dir: Path, photo_folder: Path, tmp_path: Path, small_toml: Path
) -> None:
    out = tmp_path / "emb.parquet"
    code, _stdout, stderr = run(
        "embed",
        "--model",
        trained_model_dir,
        "--catalogue",
        photo_folder,
        "--out",
        out,
        "--config",
        small_toml,
    )
    assert code == 0, stderr
    frame = pd.read_parquet(out)
    vectors = np.stack(frame["embedding"].to_numpy())
    assert vectors.shape == (30, 512)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_fit_from_csv_files(
    trained_model_dir: Path, e2e_catalogue, csv_files: dict[str, Path], tmp_path: Path, small_toml: Path
) -> None:
    manifest = tmp_path / "manifest.csv"
    e2e_catalogue.to_frame()[[Columns.ITEM_ID, Columns.IMAGE_PATH, Columns.LABEL]].to_csv(
        manifest, index=False
    )
    out = tmp_path / "bundle"
    code, _stdout, stderr = run(
        "fit",
        "--catalogue",
        manifest,
        "--interactions",
        csv_files["train"],
        "--customers",
        csv_files["customers"],
        "--image-model",
        trained_model_dir,
        "--out",
        out,
        "--config",
        small_toml,
    )
    assert code == 0, stderr
    assert (out / "fashion_reco.json").is_file()


def test_similar_prints_ranked_neighbours(saved_bundle: Path, fitted: dict) -> None:
    item = fitted["reco"].catalogue.item_ids[0]
    code, stdout, stderr = run("similar", "--model", saved_bundle, item, "-k", "3")
    assert code == 0, stderr
    assert stdout.count(item) == 3


def test_recommend_writes_csv(saved_bundle: Path, fitted: dict, tmp_path: Path) -> None:
    customers = fitted["test"].frame[Columns.CUSTOMER_ID].drop_duplicates().head(2).tolist()
    out = tmp_path / "recs.csv"
    code, _, stderr = run(
        "recommend", "--model", saved_bundle, ",".join(customers), "nobody-yet", "-k", "5", "--out", out
    )
    assert code == 0, stderr
    recs = pd.read_csv(out)
    assert recs.groupby(Columns.CUSTOMER_ID).size().to_dict() == {c: 5 for c in [*customers, "nobody-yet"]}


def test_evaluate_prints_ranker_and_baselines(
    saved_bundle: Path, csv_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "eval.csv"
    code, _, stderr = run("evaluate", "--model", saved_bundle, "--test", csv_files["test"], "--out", out)
    assert code == 0, stderr
    table = pd.read_csv(out)
    assert table["model"].iloc[0] == "ranker"
    assert {"popularity", "behaviour_only", "visual_only"} <= set(table["model"])


def test_report_writes_html(saved_bundle: Path, csv_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, _stdout, stderr = run("report", "--model", saved_bundle, "--test", csv_files["test"], "--out", out)
    assert code == 0, stderr
    html = out.read_text()
    assert "<svg" in html and "data:image/jpeg;base64," in html


def test_deploy_into_local_testing_session(saved_bundle: Path) -> None:
    code, stdout, stderr = run("deploy", "--model", saved_bundle)
    assert code == 0, stderr
    assert "local testing session" in stdout


def test_deploy_target_tables_registers_the_batch_procedure(saved_bundle: Path) -> None:
    code, stdout, stderr = run("deploy", "--model", saved_bundle, "--target", "tables")
    assert code == 0, stderr
    assert "local testing session" in stdout and "batch procedure FASHION_RECO_BATCH_RECOMMEND" in stdout


def test_deploy_target_registry_without_the_extra_is_one_clear_line(saved_bundle: Path) -> None:
    """snowflake-ml-python is not installed here: the registry target says which extra to install (exit 2)."""
    import importlib.util

    if importlib.util.find_spec("snowflake.ml") is not None:
        pytest.skip("snowflake-ml-python is installed: the missing-extra path cannot be shown")
    code, _, stderr = run("deploy", "--model", saved_bundle, "--target", "registry")
    assert code == 2
    assert (
        stderr.startswith("error: ")
        and "fashion-reco[snowflake-ml]" in stderr
        and "Traceback" not in stderr
        and len(stderr.strip().splitlines()) == 1
    )
    code, _, stderr = run("deploy", "--model", saved_bundle, "--target", "warehouse")
    assert code == 2 and "warehouse" in stderr


def test_fetch_from_an_s3_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, few_photos: list[Path]
) -> None:
    kit = _s3kit()
    for name, value in kit.CREDENTIAL_ENV.items():
        monkeypatch.setenv(name, value)
    endpoint = kit.moto_endpoint()
    objects = {f"shop/{p.parent.name}/{p.name}": p.read_bytes() for p in few_photos[:6]}
    kit.ensure_bucket(endpoint, "cli-fetch-bucket", objects)
    code, stdout, stderr = run(
        "fetch", "s3://cli-fetch-bucket/shop/", tmp_path / "dest", "--endpoint-url", endpoint
    )
    assert code == 0, stderr
    assert "downloaded 6" in stdout
    assert len(list((tmp_path / "dest").rglob("*.jpg"))) == 6
    code, stdout, _ = run(
        "fetch", "s3://cli-fetch-bucket/shop/", tmp_path / "dest", "--endpoint-url", endpoint
    )
    assert "downloaded 0, skipped 6" in stdout


def test_embed_reads_a_catalogue_straight_from_s3(
    trained_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, few_photos: list[Path]
) -> None:
    kit = _s3kit()
    for name, value in kit.CREDENTIAL_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FASHION_RECO_CACHE", str(tmp_path / "cache"))
    endpoint = kit.moto_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    kit.ensure_bucket(
        endpoint,
        "cli-catalogue-bucket",
        {f"shop/{p.parent.name}/{p.name}": p.read_bytes() for p in few_photos[:4]},
    )
    out = tmp_path / "emb.parquet"
    code, _, stderr = run(
        "embed", "--model", trained_model_dir, "--catalogue", "s3://cli-catalogue-bucket/shop/", "--out", out
    )
    assert code == 0, stderr
    assert len(pd.read_parquet(out)) == 4
    assert len(list((tmp_path / "cache" / "s3" / "cli-catalogue-bucket" / "shop").rglob("*.jpg"))) == 4


def test_unsafe_s3_catalogue_uri_is_refused(trained_model_dir: Path, tmp_path: Path) -> None:
    code, _, stderr = run(
        "embed",
        "--model",
        trained_model_dir,
        "--catalogue",
        "s3://bucket/../../etc/",
        "--out",
        tmp_path / "x.npy",
    )
    assert code == 2 and "s3://bucket/../../etc/" in stderr


def _s3kit():  # type: ignore[no-untyped-def]
    name = "fashion_reco_tests_s3_testkit"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parents[1] / "data" / "s3_testkit.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_demo_quick_runs_the_whole_pipeline(tmp_path: Path) -> None:
    code, stdout, stderr = run("demo", "--quick", "--catalogue", "sample", "--out", tmp_path / "demo")
    assert code == 0, stderr
    assert "report:" in stdout and (tmp_path / "demo" / "report.html").is_file()
    assert "ranker" in stdout and "popularity" in stdout
    assert (tmp_path / "demo" / "model" / "fashion_reco.json").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["similar", "--model", "/nonexistent/bundle", "x"],
            "/nonexistent/bundle: no saved recommender here",
        ),
        (["train", "--catalogue", "/nonexistent/folder", "--out", "/tmp/x"], "/nonexistent/folder"),
        (["train", "--config", "/nonexistent/cfg.toml", "--out", "/tmp/x"], "cfg.toml"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(args: list[str], needle: str) -> None:
    code, _stdout, stderr = run(*args)
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stderr
    assert "Traceback" not in stderr


def test_bad_manifest_names_row_and_column(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("item_id,image_path,label\na,/no/such.jpg,shirt\n")
    code, _, stderr = run("train", "--catalogue", manifest, "--out", tmp_path / "out")
    assert code == 2
    assert "m.csv" in stderr and "row 1" in stderr and "image_path" in stderr


def test_unknown_config_key_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[model]\nimage_sise = 3\n")
    code, _, stderr = run("train", "--config", cfg, "--out", tmp_path / "out")
    assert code == 2 and "model.image_sise" in stderr


def test_console_script_runs_as_a_real_process(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("fashion-reco")
    done = subprocess.run(
        [str(exe), "recommend", "--model", str(tmp_path / "missing"), "c1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "--debug" not in done.stderr
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120, check=False)
    for command in (
        "fetch",
        "train",
        "embed",
        "deploy",
        "similar",
        "recommend",
        "evaluate",
        "report",
        "demo",
    ):
        assert command in done.stdout


HOSTILE_CLICKSTREAMS = {
    "missing_column.csv": ("customer_id,item_id,timestamp\nc1,i1,2024-01-01\n", "event_type"),
    "bad_timestamp.csv": (
        "customer_id,item_id,event_type,timestamp\nc1,i1,view,2024-01-01\nc1,i2,view,yesterday\n",
        "row 2",
    ),
    "unknown_event.csv": (
        "customer_id,item_id,event_type,timestamp\nc1,i1,wishlist,2024-01-01\n",
        "wishlist",
    ),
    "utf16.csv": (None, "utf16.csv"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CLICKSTREAMS))
def test_hostile_clickstream_fails_fast_with_one_line(name: str, photo_folder: Path, tmp_path: Path) -> None:
    text, needle = HOSTILE_CLICKSTREAMS[name]
    path = tmp_path / name
    if text is None:
        path.write_bytes("customer_id,item_id,event_type,timestamp\nc1,i1,view,2024-01-01\n".encode("utf-16"))
    else:
        path.write_text(text)
    out = tmp_path / "bundle"
    code, _, stderr = run("fit", "--catalogue", photo_folder, "--interactions", path, "--out", out)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, stderr
    assert name in lines[0] and needle in lines[0]
    assert not out.exists(), "nothing is written when the input is rejected"


def test_duplicate_ids_in_manifest_name_the_row(photo_folder: Path, tmp_path: Path) -> None:
    photo = next(photo_folder.rglob("*.jpg"))
    manifest = tmp_path / "dupes.csv"
    manifest.write_text(f"item_id,image_path,label\nsku1,{photo},shirt\nsku1,{photo},shirt\n")
    code, _, stderr = run("train", "--catalogue", manifest, "--out", tmp_path / "m")
    assert code == 2 and "dupes.csv" in stderr and "row 2" in stderr and "item_id" in stderr


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[blend]\nevent_weights = { view = nan }\n", "blend.event_weights.view"),
        ("[blend]\nhalf_life_days = inf\n", "blend.half_life_days"),
        ("[model]\nimage_size = 8\n", "model.image_size"),
    ],
)
def test_bad_config_value_is_one_line_naming_file_and_key(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    code, _, stderr = run("train", "--config", cfg, "--out", tmp_path / "out")
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, stderr
    assert key in lines[0] and "bad.toml" in lines[0]
    assert "pydantic.dev" not in stderr and "Traceback" not in stderr


def test_any_pydantic_error_reaches_the_user_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A validation error from any pydantic model inside a command: one line naming the key, no URL dump."""
    import typer
    from pydantic import BaseModel, ConfigDict

    from fashion_reco.cli import _friendly

    class Options(BaseModel):
        model_config = ConfigDict(allow_inf_nan=False)
        weight: float
        name: str

    @_friendly
    def command(debug: bool = False) -> None:
        Options.model_validate({"weight": "nan", "name": 3})

    with pytest.raises(typer.Exit) as info:
        command(debug=False)
    err = capsys.readouterr().err
    assert info.value.exit_code == 2
    assert err.count("\n") == 1 and "weight" in err and "finite" in err and "https://" not in err
    with pytest.raises(Exception, match="validation error"):
        command(debug=True)
