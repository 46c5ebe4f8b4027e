"""Catalogue.from_s3 skips and reports the keys a rerun can never fetch, and says "run again" only when it helps.
Served by the S3 test kit (a scripted S3 endpoint on 127.0.0.1, and moto's server mode)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.datasets import sample_catalogue
from fashion_reco.errors import FashionRecoWarning, FetchError

_KIT_NAME = "fashion_reco_tests_s3_testkit"  # the name tests/data/conftest.py uses: one moto server per run


@pytest.fixture(scope="module")
def kit() -> Iterator[ModuleType]:
    if _KIT_NAME not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "data" / "s3_testkit.py"
        spec = importlib.util.spec_from_file_location(_KIT_NAME, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_KIT_NAME] = module
        spec.loader.exec_module(module)
    kit = sys.modules[_KIT_NAME]
    with kit.credentials_env():
        yield kit


def _photos() -> dict[str, bytes]:
    paths = sample_catalogue().image_paths[:3]
    return {f"shop/dress/{i}.jpg": Path(p).read_bytes() for i, p in enumerate(paths)}


def _serve(kit: ModuleType, objects: dict[str, bytes], **options: object):
    handler = kit.scripted_s3_handler(objects, seen=[], deny_list=False, deny_get=False, **options)
    return kit.serve(handler)


@pytest.mark.parametrize(
    "hostile", ["shop/../evil.jpg", "shop/dress/../../up.jpg", "shop//x.jpg", "shop/a\\b.jpg"]
)
def test_an_unsafe_key_is_reported_and_skipped(kit: ModuleType, tmp_path: Path, hostile: str) -> None:
    objects = {**_photos(), hostile: b"evil"}
    with (
        _serve(kit, objects) as endpoint,
        pytest.warns(FashionRecoWarning, match="can never be fetched") as info,
    ):
        catalogue = Catalogue.from_s3("s3://shop/shop", tmp_path / "dest", endpoint_url=endpoint)
    assert (
        len(catalogue) == 3
        and repr(hostile) in str(info[0].message)
        and "run again" not in str(info[0].message)
    )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["0.jpg", "1.jpg", "2.jpg"]


def test_a_retryable_failure_raises_and_says_run_again(kit: ModuleType, tmp_path: Path) -> None:
    objects = {**_photos(), "shop/../evil.jpg": b"evil"}
    with _serve(kit, objects, corrupt=frozenset({"shop/dress/1.jpg"})) as endpoint:
        with pytest.raises(FetchError, match="run again to resume") as info:
            Catalogue.from_s3("s3://shop/shop", tmp_path / "dest", endpoint_url=endpoint)
    assert info.value.key == "shop/dress/1.jpg" and "1 more can never be fetched" in str(info.value)
    with _serve(kit, objects) as endpoint, pytest.warns(FashionRecoWarning):  # the rerun resumes and succeeds
        assert len(Catalogue.from_s3("s3://shop/shop", tmp_path / "dest", endpoint_url=endpoint)) == 3


def test_moto_missing_bucket_is_not_a_run_again(kit: ModuleType, tmp_path: Path) -> None:
    endpoint = kit.moto_endpoint()
    with pytest.raises(FetchError) as info:
        Catalogue.from_s3("s3://no-such-bucket-here/p", tmp_path / "dest", endpoint_url=endpoint)
    assert "run again" not in str(info.value) and "no-such-bucket-here" in str(info.value)


def test_moto_prefix_with_photos_gives_a_catalogue(kit: ModuleType, tmp_path: Path) -> None:
    endpoint = kit.moto_endpoint()
    kit.ensure_bucket(endpoint, "rel-shop", _photos())
    catalogue = Catalogue.from_s3("s3://rel-shop/shop", tmp_path / "dest", endpoint_url=endpoint)
    assert sorted(catalogue.item_ids) == ["dress/0", "dress/1", "dress/2"]
