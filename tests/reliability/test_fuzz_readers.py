"""Property-based fuzzing of the CSV, TOML and bundle readers: whatever the bytes, the answer is a result or a
FashionRecoError — never another exception — and no file but the target changes."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_reco import FashionRecommender
from fashion_reco.config import RecommenderConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.errors import FashionRecoError
from fashion_reco.model.image_model import ImageModel
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.ranker import RankerRecommender

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def result_or_library_error(call: Callable[[], object]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except FashionRecoError:
            pass


# ------------------------------------------------------------------ CSV

HEADERS = {
    "catalogue": ["item_id", "image_path", "image_uri", "label", "split", "size", "colour"],
    "interactions": ["customer_id", "item_id", "event_type", "timestamp", "quantity", "page"],
    "customers": ["customer_id", "age_band", "gender", "preferred_labels", "signup_date", "shoe"],
}
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "NaN",
            "None",
            "nan",
            "inf",
            "-1",
            "0",
            "1e308",
            "view",
            "purchase",
            "2024-01-01",
            "2200-01-01",
            "1700000000",
            "s3://b/k.jpg",
            "https://x/y.jpg",
            "../x.jpg",
            "a;b",
            '"q"',
            "é",
            "\u202e",
            "train",
            "val",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
)


@st.composite
def csv_bytes(draw: st.DrawFn, kind: str) -> bytes:
    header = draw(st.lists(st.sampled_from(HEADERS[kind]), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 1), max_size=5))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    text = "\n".join([sep.join(header), *(sep.join(r) for r in rows)])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=4)) + data[cut:]
    return data


READERS: dict[str, Callable[[Path], object]] = {
    "catalogue": lambda p: Catalogue.from_manifest(p, check_files=False),
    "interactions": Interactions.from_csv,
    "customers": Customers.from_csv,
}


@pytest.mark.parametrize("kind", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_csv_readers(kind: str, data: st.DataObject, tmp_path: Path) -> None:
    (tmp_path / "canary.parquet").write_bytes(b"user data")
    target = tmp_path / "input.csv"
    target.write_bytes(data.draw(csv_bytes(kind)))
    before = snapshot(tmp_path)
    result_or_library_error(lambda: READERS[kind](target))
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ TOML

KEYS = {
    "blend": ["k", "half_life_days", "trend_half_life_days", "test_days", "event_weights", "kay"],
    "data": ["on_bad_image", "batch_size", "num_workers", "min_image_side", "root"],
    "model": ["image_size", "finetune_epochs", "weights", "max_train_seconds"],
    "snowflake": ["udf_name", "database", "stage"],
    "nope": ["x"],
}
VALUES = st.sampled_from(
    [
        "0",
        "-1",
        "1",
        "3.5",
        "nan",
        "inf",
        "-inf",
        "1e400",
        '""',
        '"drop"',
        '"skip"',
        '"x; drop table t"',
        "true",
        "[1, 2]",
        "{ purchase = nan }",
        "{ view = -1.0 }",
        '"\\u0000"',
        "2024-01-01T00:00:00Z",
        "9999999999999999999",
    ]
)


@st.composite
def toml_text(draw: st.DrawFn) -> str:
    lines = []
    for section in draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=3, unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(KEYS[section]), max_size=3, unique=True)):
            lines.append(f"{key} = {draw(VALUES)}")
    text = "\n".join(lines)
    if draw(st.booleans()):
        text += draw(st.text(max_size=10))
    return text


@FUZZ
@given(text=toml_text())
def test_toml_reader(text: str, tmp_path: Path) -> None:
    (tmp_path / "canary.txt").write_text("keep me")
    target = tmp_path / "config.toml"
    target.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    result_or_library_error(lambda: RecommenderConfig.from_toml(target))
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ bundles

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.text(max_size=6),
        st.sampled_from(["../../etc/passwd", "catalogue-000000000000.parquet", "0" * 64, "array", "frame"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys/indices) into a JSON document."""
    out = [prefix]
    if isinstance(document, dict):
        for k, v in document.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(document, list):
        for i, v in enumerate(document[:4]):
            out += _paths(v, (*prefix, i))
    return out


def _replace(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    document[path[0]] = _replace(document[path[0]], path[1:], value)
    return document


def _component(bundle: Path, key: str, manifest: str = "fashion_reco.json") -> Path:
    return bundle / json.loads((bundle / manifest).read_text())["files"][key]["file"]


def _fallback_blend(bundle: Path) -> Path:
    """The blend inside the saved ranker (the tiny log is too small to train one: the ranker falls back to it)."""
    return _component(_component(bundle, "recommender"), "fallback", "ranker.json")


@pytest.fixture(scope="module")
def bundle_copy(saved_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    return Path(shutil.copytree(saved_template, tmp_path_factory.mktemp("fuzz") / "bundle"))


TARGETS: dict[str, tuple[Callable[[Path], Path], str, Callable[[Path], object]]] = {
    "bundle": (lambda b: b, "fashion_reco.json", FashionRecommender.load),
    "recommender": (lambda b: _component(b, "recommender"), "ranker.json", RankerRecommender.load),
    "blend": (_fallback_blend, "recommender.json", BlendRecommender.load),
    "image_model": (lambda b: _component(b, "image_model"), "metadata.json", ImageModel.load),
}


@pytest.mark.slow  # every example loads a 45 MB ResNet18 artefact
@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_forged_manifests(target: str, bundle_copy: Path, data: st.DataObject) -> None:
    folder_of, name, load = TARGETS[target]
    folder = folder_of(bundle_copy)
    manifest = folder / name
    original = manifest.read_bytes()
    document = json.loads(original)
    path = data.draw(st.sampled_from(_paths(document)[1:]))
    forged = _replace(document, path, data.draw(JSON_VALUES))
    manifest.write_text(json.dumps(forged))
    others = {k: v for k, v in snapshot(bundle_copy).items() if not k.endswith(name)}
    try:
        result_or_library_error(lambda: load(folder))
        assert {k: v for k, v in snapshot(bundle_copy).items() if not k.endswith(name)} == others
    finally:
        manifest.write_bytes(original)


@pytest.mark.slow  # every example loads a 45 MB ResNet18 artefact
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_forged_payloads_with_matching_checksums(bundle_copy: Path, data: st.DataObject) -> None:
    """A payload replaced by other bytes *and* re-registered in the manifest: the decoders themselves are hit."""
    manifest_path = bundle_copy / "fashion_reco.json"
    original_manifest = manifest_path.read_bytes()
    document = json.loads(original_manifest)
    key = data.draw(st.sampled_from(["catalogue", "embeddings", "interactions", "customers"]))
    entry = document["files"][key]
    payload = (bundle_copy / entry["file"]).read_bytes()
    mutation = data.draw(st.sampled_from(["flip", "truncate", "append", "random", "other payload"]))
    if mutation == "flip":
        at = data.draw(st.integers(0, len(payload) - 1))
        forged = payload[:at] + bytes([payload[at] ^ data.draw(st.integers(1, 255))]) + payload[at + 1 :]
    elif mutation == "truncate":
        forged = payload[: data.draw(st.integers(0, len(payload) - 1))]
    elif mutation == "append":
        forged = payload + data.draw(st.binary(min_size=1, max_size=64))
    elif mutation == "random":
        forged = data.draw(st.binary(max_size=256))
    else:
        other = document["files"][data.draw(st.sampled_from(["catalogue", "embeddings", "interactions"]))]
        forged = (bundle_copy / other["file"]).read_bytes()
    sha = hashlib.sha256(forged).hexdigest()
    stem, suffix = entry["file"].split("-")[0], Path(entry["file"]).suffix
    name = f"{stem}-{sha[:12]}{suffix}"
    created = not (bundle_copy / name).exists()
    (bundle_copy / name).write_bytes(forged)
    entry.update(file=name, sha256=sha)
    manifest_path.write_text(json.dumps(document))
    try:
        result_or_library_error(lambda: FashionRecommender.load(bundle_copy))
    finally:
        manifest_path.write_bytes(original_manifest)
        if created:
            (bundle_copy / name).unlink()
