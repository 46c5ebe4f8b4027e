"""The one artefact writer under the whole bundle: a save never touches files it did not write, a failed save leaves
the previous bundle loading exactly as before, and every forged or swapped payload is an ArtefactError naming it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco import FashionRecommender
from fashion_reco.artefacts import ArtefactReader, ArtefactWriter
from fashion_reco.bundle import MANIFEST, verify_bundle
from fashion_reco.errors import ArtefactError, CatalogueError, FashionRecoWarning


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def write_manifest(folder: Path, document: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(document))


def test_save_refuses_a_folder_of_user_files_and_changes_nothing(
    tiny_reco: FashionRecommender, tmp_path: Path
) -> None:
    (tmp_path / "sales.parquet").write_bytes(b"PAR1 user data")
    (tmp_path / "vectors.npy").write_bytes(b"\x93NUMPY user data")
    before = snapshot(tmp_path)
    with pytest.raises(ArtefactError, match="not empty and holds no saved recommender") as info:
        tiny_reco.save(tmp_path)
    assert info.value.file == tmp_path and "sales.parquet" in str(info.value)
    assert snapshot(tmp_path) == before


def test_save_refuses_a_file_and_another_artefact(tiny_reco: FashionRecommender, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtefactError, match="a file, not a folder"):
        tiny_reco.save(tmp_path / "file")
    model_dir = tiny_reco.image_model.save(tmp_path / "model")  # type: ignore[union-attr]
    before = snapshot(model_dir)
    with pytest.raises(ArtefactError, match="holds no saved recommender"):
        tiny_reco.save(model_dir)
    assert snapshot(model_dir) == before


def test_resave_keeps_user_files_and_drops_only_its_own_old_parts(
    tiny_reco: FashionRecommender, saved: Path
) -> None:
    (saved / "NOTES.txt").write_text("my notes")
    (saved / "catalogue.parquet").write_bytes(b"mine")  # looks like a payload, is not one
    old_files = {e["file"] for e in manifest(saved)["files"].values()}
    tiny_reco.save(saved)  # the same model saved again: content-addressed names are reused
    new_files = {e["file"] for e in manifest(saved)["files"].values()}
    # only the image model is new (its metadata records when it was saved); the old one is gone
    assert {f for f in new_files if not f.startswith("image_model-")} == {
        f for f in old_files if not f.startswith("image_model-")
    }
    assert {p.name for p in saved.iterdir()} == new_files | {MANIFEST, "NOTES.txt", "catalogue.parquet"}
    assert (saved / "NOTES.txt").read_text() == "my notes" and (
        saved / "catalogue.parquet"
    ).read_bytes() == b"mine"
    assert not [p for p in saved.iterdir() if p.name.startswith(".fr-")]
    verify_bundle(saved)


def test_a_failed_save_leaves_the_previous_bundle_exactly_as_it_was(
    tiny_reco: FashionRecommender, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(saved)
    expected = FashionRecommender.load(saved).recommend(
        ["c-unknown", *tiny_reco.customers.customer_ids[:3]], k=5
    )  # type: ignore[union-attr]
    calls = {"n": 0}
    original = ArtefactWriter.add_array

    def failing(self: ArtefactWriter, key: str, array: np.ndarray) -> dict:
        calls["n"] += 1
        if key == "embeddings":  # after both components and the catalogue were written beside the old ones
            raise OSError(28, "No space left on device")
        return original(self, key, array)

    monkeypatch.setattr(ArtefactWriter, "add_array", failing)
    tiny_reco.item_embeddings = tiny_reco.item_embeddings * 1.0001  # type: ignore[operator]
    with pytest.raises(OSError):
        tiny_reco.save(saved)
    monkeypatch.undo()
    assert calls["n"] > 0
    reloaded = FashionRecommender.load(saved)
    pd.testing.assert_frame_equal(
        reloaded.recommend(["c-unknown", *tiny_reco.customers.customer_ids[:3]], k=5), expected
    )  # type: ignore[union-attr]
    now = snapshot(saved)
    assert all(now[k] == v for k, v in before.items())  # nothing the old manifest reaches was touched
    verify_bundle(saved)
    tiny_reco.item_embeddings = tiny_reco.item_embeddings / 1.0001  # type: ignore[operator]
    tiny_reco.save(saved)  # the next save succeeds and removes the leftovers of the failed one
    names = {p.name for p in saved.iterdir()}
    referenced = {e["file"] for e in manifest(saved)["files"].values()}
    assert names == referenced | {MANIFEST}


def test_mixed_type_attribute_is_coerced_at_load_and_saves(
    tiny_reco: FashionRecommender, tiny_catalogue, tmp_path: Path
) -> None:
    items = tiny_catalogue.to_frame()
    items["size"] = [38 if i % 2 else "M" for i in range(len(items))]
    with pytest.warns(FashionRecoWarning, match="'size' mixes int and str"):
        catalogue = type(tiny_catalogue).from_frame(items)
    assert catalogue.to_frame()["size"].tolist()[:2] == ["M", "38"]
    items["tags"] = [["a"], 1] * (len(items) // 2)
    with pytest.raises(CatalogueError, match="holds a list") as info:
        type(tiny_catalogue).from_frame(items)
    assert info.value.column == "tags" and info.value.row == 1


def _swap(folder: Path, a: str, b: str) -> None:
    doc = manifest(folder)
    doc["files"][a], doc["files"][b] = doc["files"][b], doc["files"][a]
    write_manifest(folder, doc)


@pytest.mark.parametrize(
    ("forge", "names"),
    [
        (lambda f: _swap(f, "catalogue", "interactions"), "interactions-|catalogue-"),
        (lambda f: _swap(f, "embeddings", "catalogue"), "embeddings-|catalogue-"),
        (lambda f: _swap(f, "image_model", "recommender"), "image_model-|recommender-|metadata.json"),
        (lambda f: _swap(f, "customers", "interactions"), "customers-|interactions-"),
    ],
)
def test_swapped_payloads_name_the_file(saved: Path, forge, names: str) -> None:
    forge(saved)
    with pytest.raises(ArtefactError, match=names):
        FashionRecommender.load(saved)


def _forge_payload(folder: Path, key: str, data: bytes, **entry: object) -> None:
    """Replace a payload AND fix its checksum in the manifest (a deliberate forgery, not corruption)."""
    doc = manifest(folder)
    sha = hashlib.sha256(data).hexdigest()
    stem = doc["files"][key]["file"].split("-")[0]
    suffix = Path(doc["files"][key]["file"]).suffix
    name = f"{stem}-{sha[:12]}{suffix}"
    (folder / name).write_bytes(data)
    doc["files"][key].update({"file": name, "sha256": sha, **entry})
    write_manifest(folder, doc)


@pytest.mark.parametrize(
    ("key", "data", "extra"),
    [
        ("embeddings", b"\x93NUMPY\x01\x00garbage", {}),
        ("embeddings", b"not numpy at all", {}),
        ("catalogue", b"PAR1 forged PAR1", {}),
        ("catalogue", b"", {}),
        ("interactions", b"\x00" * 64, {}),
    ],
)
def test_forged_payloads_are_artefact_errors_naming_the_file(
    saved: Path, key: str, data: bytes, extra: dict
) -> None:
    _forge_payload(saved, key, data, **extra)
    with pytest.raises(ArtefactError) as info:
        FashionRecommender.load(saved)
    assert Path(str(info.value.file)).parent == saved and key in str(info.value.file)


def test_forged_array_of_the_wrong_shape_is_refused(saved: Path) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ones((3, 8), dtype=np.float32))
    _forge_payload(saved, "embeddings", buffer.getvalue(), shape=[3, 8], dtype="<f4")
    with pytest.raises(ArtefactError, match="do not fit the 30 catalogue items") as info:
        FashionRecommender.load(saved)
    assert "embeddings-" in str(info.value.file)


@pytest.mark.parametrize(
    "entry",
    [
        {"file": "../../etc/passwd", "sha256": "0" * 64, "kind": "frame"},
        {"file": "/etc/passwd", "sha256": "0" * 64, "kind": "frame"},
        {"file": "catalogue-000000000000.parquet", "sha256": "nope", "kind": "frame"},
        {"file": "catalogue-000000000000.parquet", "sha256": "0" * 64, "kind": "array"},
        {"file": 7},
    ],
)
def test_forged_file_table_entries(saved: Path, entry: dict) -> None:
    doc = manifest(saved)
    doc["files"]["catalogue"] = entry
    write_manifest(saved, doc)
    with pytest.raises(ArtefactError):
        FashionRecommender.load(saved)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(format="fashion-reco-bundle/1"),
        lambda d: d.update(format_version=99),
        lambda d: d.update(format_version="2"),
        lambda d: d.update(files=[]),
        lambda d: d.update(config={"blend": {"k": "many"}}),
        lambda d: d.update(config=None),
        lambda d: d.update(fit_report={"future_events": "lots"}),
        lambda d: d["files"].pop("embeddings"),
    ],
)
def test_forged_manifests(saved: Path, edit) -> None:
    doc = manifest(saved)
    edit(doc)
    write_manifest(saved, doc)
    with pytest.raises(ArtefactError) as info:
        FashionRecommender.load(saved)
    assert str(saved) in str(info.value)


def test_tampered_blend_weights_and_nan_manifest(saved: Path) -> None:
    ranker = saved / manifest(saved)["files"]["recommender"]["file"]
    # the tiny log is too small to train the ranker: the blend it falls back to is saved inside it
    blend = ranker / json.loads((ranker / "ranker.json").read_text())["files"]["fallback"]["file"]
    doc = json.loads((blend / "recommender.json").read_text())
    doc["weights"] = {k: float("nan") for k in doc["weights"]} or {"x": float("nan")}
    (blend / "recommender.json").write_text(json.dumps(doc))  # also breaks the bundle's checksum of it
    with pytest.raises(ArtefactError, match="checksum"):
        FashionRecommender.load(saved)
    from fashion_reco.recommend.blend import BlendRecommender

    with pytest.raises(ArtefactError, match="non-finite"):
        BlendRecommender.load(blend)


def test_reader_decodes_and_verifies_every_kind(tmp_path: Path) -> None:
    writer = ArtefactWriter(tmp_path / "a", manifest="m.json", format="test", version=1, what="test artefact")
    writer.add_bytes("model", b"tree\n", suffix=".txt")
    writer.add_text("notes", "héllo")
    writer.add_json("schema", {"features": ["a", "b"], "x": float("nan")})
    writer.add_array("v", np.arange(4, dtype=np.int16))
    writer.add_frame("t", pd.DataFrame({"a": [1, 2]}))
    writer.add_component(
        "sub",
        lambda p: ArtefactWriter(p, manifest="s.json", format="s", version=1, what="s").commit({"n": 1}),
        manifest="s.json",
    )
    writer.commit({"schema_version": 3})
    reader = ArtefactReader.open(
        tmp_path / "a", manifest="m.json", format="test", version=1, what="test artefact"
    )
    assert reader.read_bytes("model") == b"tree\n" and reader.text("notes") == "héllo"
    assert reader.json("schema") == {"features": ["a", "b"], "x": None}
    assert reader.array("v").tolist() == [0, 1, 2, 3] and reader.frame("t")["a"].tolist() == [1, 2]
    assert (reader.component("sub") / "s.json").is_file() and reader.meta["schema_version"] == 3
    reader.verify()
    with pytest.raises(ArtefactError, match="expected 'text'"):
        reader.text("model")
    with pytest.raises(ArtefactError, match="has no 'nope' part"):
        reader.json("nope")
    shutil.rmtree(reader.component("sub"))
    with pytest.raises(ArtefactError, match="missing"):
        reader.verify()


def test_writer_refuses_object_arrays_and_unstorable_frames(tmp_path: Path) -> None:
    writer = ArtefactWriter(tmp_path / "a", manifest="m.json", format="test", version=1, what="test artefact")
    with pytest.raises(ArtefactError, match="object array"):
        writer.add_array("o", np.array([object()], dtype=object))
    with pytest.raises(ArtefactError, match="cannot save this table") as info:
        writer.add_frame("t", pd.DataFrame({"ok": [1, 2], "mixed": [1, "a"]}))
    assert info.value.column == "mixed"
    assert not (tmp_path / "a" / "m.json").exists()


def test_a_bundle_of_the_previous_format_is_refused_on_load_and_replaced_on_save(
    tiny_reco: FashionRecommender, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "catalogue-0123456789ab.parquet").write_bytes(b"old payload")
    (old / "README.txt").write_text("mine")
    write_manifest(
        old, {"format": "fashion-reco-bundle/1", "files": {"catalogue": "catalogue-0123456789ab.parquet"}}
    )
    with pytest.raises(ArtefactError, match="older fashion-reco"):
        FashionRecommender.load(old)
    tiny_reco.save(old)
    assert (
        not (old / "catalogue-0123456789ab.parquet").exists() and (old / "README.txt").read_text() == "mine"
    )
    verify_bundle(old)


def test_a_first_save_never_deletes_look_alike_files(tiny_reco: FashionRecommender, tmp_path: Path) -> None:
    """A file named like a payload (or a killed first save's leftover) in a folder without a bundle is kept."""
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "catalogue-0123456789ab.parquet").write_bytes(b"look-alike")
    tiny_reco.save(folder)
    assert (folder / "catalogue-0123456789ab.parquet").read_bytes() == b"look-alike"
    verify_bundle(folder)
