"""fetch_s3 against a real S3 API server (moto's server mode on 127.0.0.1) and small scripted S3 endpoints."""

from __future__ import annotations

import logging
import os
import string
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.s3 import FetchReport, fetch_s3, key_to_path, make_s3_client, parse_s3_uri
from fashion_reco.errors import FetchError


def _no_partials(root: Path) -> bool:
    return not [p for p in root.rglob("*.tmp")]


# ---------------------------------------------------------------------- the big bucket


def test_fetch_paginates_past_1000_keys_then_resumes(
    s3kit: ModuleType, moto_endpoint: str, big_bucket: dict[str, bytes], tmp_path: Path
) -> None:
    """1,508 objects below photos/ (two listing pages); the .jpg third of them is fetched (the full 1,500 go through
    the fault-injecting proxy in tests/reliability/test_s3_faults.py), so a 1,000-key cap would lose files."""
    dest = tmp_path / "catalogue"
    uri = f"s3://{s3kit.BIG_BUCKET}/photos"  # no trailing slash: still a folder, photos2/ is not picked up
    jpgs = {k: v for k, v in big_bucket.items() if k.endswith(".jpg")}
    expected = s3kit.relative_digest(jpgs, s3kit.BIG_PREFIX)
    beyond_first_page = set(sorted(big_bucket)[1000:]) & set(jpgs)
    assert len(expected) == 500 and len(beyond_first_page) > 100

    first = fetch_s3(uri, dest, endpoint_url=moto_endpoint, suffixes=(".jpg",), max_concurrency=8)
    assert isinstance(first, FetchReport)
    assert (first.downloaded, first.skipped, first.failed) == (500, 0, {})
    assert beyond_first_page <= set(first.downloaded_keys)
    assert first.bytes == sum(size for size, _ in expected.values())
    assert s3kit.tree_digest(dest) == expected  # nested folders kept; other suffixes, photos2/ left alone
    assert _no_partials(dest)

    second = fetch_s3(uri, dest, endpoint_url=moto_endpoint, suffixes=(".jpg",))
    assert (second.downloaded, second.skipped, second.failed, second.bytes) == (0, 500, {}, 0)

    files = sorted(p for p in dest.rglob("*") if p.is_file())
    truncated, same_size_corrupt, deleted = files[10], files[250], files[400]
    truncated.write_bytes(truncated.read_bytes()[:-7])
    corrupt = bytearray(same_size_corrupt.read_bytes())
    corrupt[0] ^= 0xFF
    same_size_corrupt.write_bytes(bytes(corrupt))
    deleted.unlink()
    untouched = {p: p.stat().st_mtime_ns for p in files[:5]}

    third = fetch_s3(uri, dest, endpoint_url=moto_endpoint, suffixes=(".jpg",))
    repaired = {p.relative_to(dest).as_posix() for p in (truncated, same_size_corrupt, deleted)}
    assert third.downloaded == 3 and third.skipped == 497 and not third.failed
    assert {k.removeprefix(s3kit.BIG_PREFIX) for k in third.downloaded_keys} == repaired
    assert s3kit.tree_digest(dest) == expected
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched


def test_suffix_filter_and_catalogue_from_s3_folder(
    s3kit: ModuleType, moto_endpoint: str, big_bucket: dict[str, bytes], tmp_path: Path
) -> None:
    report = fetch_s3(
        f"s3://{s3kit.BIG_BUCKET}/photos/class-3/",
        tmp_path,
        endpoint_url=moto_endpoint,
        suffixes=(".TXT",),  # case-insensitive
    )
    assert report.downloaded == 1 and [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["notes-3.txt"]


# ---------------------------------------------------------------------- real photos, manifest, unsigned


@pytest.fixture(scope="module")
def photo_bucket(s3kit: ModuleType, moto_endpoint: str, few_photos: list[Path]) -> tuple[str, list[Path]]:
    """A public-read bucket of real photos: shop/<label>/<name>.jpg, plus a manifest.csv under with-manifest/."""
    photos = sorted({p.parent.name: p for p in few_photos}.values())  # one per class
    objects = {f"shop/{p.parent.name}/{p.name}": p.read_bytes() for p in photos}
    manifest = "item_id,image_path,label,price\n" + "".join(
        f"sku-{i},{p.parent.name}/{p.name},{p.parent.name},{10 + i}.5\n" for i, p in enumerate(photos)
    )
    objects.update({f"with-manifest/{p.parent.name}/{p.name}": p.read_bytes() for p in photos})
    objects["with-manifest/manifest.csv"] = manifest.encode()
    s3kit.ensure_bucket(moto_endpoint, "public-photos", objects, acl="public-read")
    return "public-photos", photos


def test_unsigned_fetch_of_public_bucket_builds_catalogue(
    moto_endpoint: str, photo_bucket: tuple[str, list[Path]], tmp_path: Path
) -> None:
    bucket, photos = photo_bucket
    catalogue = Catalogue.from_s3(f"s3://{bucket}/shop", tmp_path, endpoint_url=moto_endpoint, unsigned=True)
    assert len(catalogue) == len(photos) == 10
    assert catalogue.classes == sorted(p.parent.name for p in photos)
    assert sorted(catalogue.item_ids) == sorted(f"{p.parent.name}/{p.stem}" for p in photos)
    for path in catalogue.image_paths:
        assert Path(path).is_file() and Path(path).is_relative_to(tmp_path)


def test_catalogue_from_s3_uses_the_manifest_at_the_prefix_root(
    moto_endpoint: str, photo_bucket: tuple[str, list[Path]], tmp_path: Path
) -> None:
    bucket, photos = photo_bucket
    catalogue = Catalogue.from_s3(
        f"s3://{bucket}/with-manifest/", tmp_path, endpoint_url=moto_endpoint, progress=True
    )
    frame = catalogue.to_frame()
    assert list(frame["item_id"]) == [f"sku-{i}" for i in range(len(photos))]
    assert frame["price"].tolist() == [10.5 + i for i in range(len(photos))]
    assert all(Path(p).is_file() for p in frame["image_path"])


def test_large_object_goes_through_ranged_download(
    s3kit: ModuleType, moto_endpoint: str, tmp_path: Path
) -> None:
    body = s3kit.object_body("big", size=9 * 1024 * 1024 + 123)  # above the 8 MiB multipart threshold
    s3kit.ensure_bucket(moto_endpoint, "large-objects", {"x/huge.png": body})
    client = make_s3_client(endpoint_url=moto_endpoint)
    ranges: list[str] = []
    client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **kw: ranges.append(params.get("Range", "full"))
    )
    report = fetch_s3("s3://large-objects/x", tmp_path, client=client, max_concurrency=2)
    assert report.downloaded == 1 and (tmp_path / "huge.png").read_bytes() == body
    assert len(ranges) == 2 and all(r.startswith("bytes=") for r in ranges)


def test_missing_bucket_is_a_fetch_error(moto_endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"s3://no-such-bucket-here/x/.*no such bucket") as info:
        fetch_s3("s3://no-such-bucket-here/x", tmp_path, endpoint_url=moto_endpoint)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unreachable_endpoint_is_a_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"cannot list objects.*EndpointConnectionError"):
        fetch_s3("s3://b/p", tmp_path, endpoint_url="http://127.0.0.1:9", max_attempts=1, unsigned=True)


# ---------------------------------------------------------------------- scripted endpoints: 403, headers, hostile keys


def _scripted(s3kit: ModuleType, objects: dict[str, bytes], **options: object):
    seen: list[dict[str, str]] = []
    options = {"deny_list": False, "deny_get": False, **options}
    handler = s3kit.scripted_s3_handler(objects, seen=seen, **options)
    return s3kit.serve(handler), seen


def test_access_denied_listing_names_bucket_and_hides_credentials(
    s3kit: ModuleType, aws_env: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = _scripted(s3kit, {}, deny_list=True)
    caplog.set_level(logging.DEBUG)
    with server as endpoint, pytest.raises(FetchError) as info:
        fetch_s3("s3://private-shop/photos", tmp_path, endpoint_url=endpoint)
    message = str(info.value)
    assert (
        "access denied" in message and "'private-shop'" in message and "s3://private-shop/photos/" in message
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert s3kit.SECRET_KEY not in caplog.text  # botocore's own DEBUG lines show the key id, never the secret
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("fashion_reco")]
    for secret in (s3kit.SECRET_KEY, s3kit.ACCESS_KEY):
        assert secret not in message and not any(secret in line for line in ours)


def test_access_denied_objects_are_reported_not_written(
    s3kit: ModuleType, aws_env: None, tmp_path: Path
) -> None:
    objects = {"photos/a/1.jpg": b"x" * 10, "photos/b/2.jpg": b"y" * 20}
    server, _ = _scripted(s3kit, objects, deny_get=True)
    with server as endpoint:
        report = fetch_s3("s3://shop/photos", tmp_path, endpoint_url=endpoint)
    assert report.downloaded == 0 and sorted(report.failed) == sorted(objects)
    assert all(reason.startswith("AccessDenied (HTTP 403)") for reason in report.failed.values())
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_unsigned_requests_carry_no_authorization(s3kit: ModuleType, aws_env: None, tmp_path: Path) -> None:
    objects = {"p/a.jpg": b"abc"}
    server, seen = _scripted(s3kit, objects)
    with server as endpoint:
        fetch_s3("s3://shop/p", tmp_path / "signed", endpoint_url=endpoint, unsigned=False)
        signed = len(seen)
        fetch_s3("s3://shop/p", tmp_path / "anon", endpoint_url=endpoint, unsigned=True)
    assert signed and all("authorization" in h for h in seen[:signed])
    assert all("authorization" not in h for h in seen[signed:])


def test_no_credentials_falls_back_to_unsigned(
    s3kit: ModuleType, aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    server, seen = _scripted(s3kit, {"p/a.jpg": b"abc"})
    with server as endpoint:
        report = fetch_s3("s3://shop/p", tmp_path, endpoint_url=endpoint)  # unsigned=None
        with pytest.raises(FetchError, match="no AWS credentials"):
            fetch_s3("s3://shop/p", tmp_path / "strict", endpoint_url=endpoint, unsigned=False)
    assert report.downloaded == 1 and seen and all("authorization" not in h for h in seen)


def test_checksums_catch_corruption_and_respect_kms_etags(
    s3kit: ModuleType, aws_env: None, tmp_path: Path
) -> None:
    objects = {"p/good.jpg": b"good" * 50, "p/bitrot.jpg": b"rot" * 50, "p/secret.jpg": b"kms" * 50}
    server, seen = _scripted(
        s3kit, objects, corrupt=frozenset({"p/bitrot.jpg"}), kms=frozenset({"p/secret.jpg"})
    )
    with server as endpoint:
        first = fetch_s3("s3://shop/p", tmp_path, endpoint_url=endpoint)
        gets = [h["path"] for h in seen if "bitrot" in h["path"] and h["method"] == "GET"]
        second = fetch_s3("s3://shop/p", tmp_path, endpoint_url=endpoint)
    assert first.downloaded_keys == ["p/good.jpg", "p/secret.jpg"]
    assert list(first.failed) == ["p/bitrot.jpg"] and "checksum mismatch" in first.failed["p/bitrot.jpg"]
    assert len(gets) == 2  # a corrupt download is retried once, then reported
    assert not (tmp_path / "bitrot.jpg").exists() and _no_partials(tmp_path)
    assert (tmp_path / "secret.jpg").read_bytes() == objects["p/secret.jpg"]
    assert second.skipped_keys == ["p/good.jpg", "p/secret.jpg"]  # the KMS ETag is not an MD5: size decides


def test_hostile_keys_are_refused_and_nothing_escapes(
    s3kit: ModuleType, aws_env: None, tmp_path: Path
) -> None:
    hostile = [
        "p/../escaped.jpg",
        "p/a/../../escaped2.jpg",
        "p//double.jpg",
        "p/./dot.jpg",
        "p/a\\b.jpg",
        "p/C:/drive.jpg",
        "p/ctrl\x01.jpg",
    ]
    objects = {key: b"evil" for key in hostile}
    objects["p/ok/fine.jpg"] = b"fine"
    dest = tmp_path / "dest"
    server, _ = _scripted(s3kit, objects)
    with server as endpoint:
        report = fetch_s3("s3://shop/p", dest, endpoint_url=endpoint)
    assert report.downloaded == 1 and sorted(report.failed) == sorted(hostile)
    assert all("unsafe key" in reason for reason in report.failed.values())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [dest / "ok" / "fine.jpg"]


# ---------------------------------------------------------------------- URIs and key → path mapping


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/photos", ("bucket", "photos/")),
        ("s3://bucket/photos/2024/", ("bucket", "photos/2024/")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri", ["bucket/photos", "https://bucket/x", "s3://", "s3:///photos", "s3://bad bucket/x"]
)
def test_parse_s3_uri_rejects(uri: str) -> None:
    with pytest.raises(FetchError, match="not an S3 URI"):
        parse_s3_uri(uri)


_SEGMENT = st.text(
    alphabet=string.ascii_letters + string.digits + "-_. +=@,()[]~!ÄéЖ漢", min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))
_ANY_KEY = st.lists(st.sampled_from([*"ab./\\:C-_~ \x00\né", "..", "//", "../"]), max_size=20).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(["", "photos", "photos/", "a/b/"]), rest=_ANY_KEY)
def test_key_to_path_never_escapes(tmp_path: Path, prefix: str, rest: str) -> None:
    key = (prefix.rstrip("/") + "/" if prefix else "") + rest
    try:
        path = key_to_path(tmp_path, prefix, key)
    except FetchError as exc:
        assert exc.key == key
        return
    resolved = os.path.abspath(path)
    assert resolved != str(tmp_path) and Path(resolved).is_relative_to(tmp_path)
    assert ".." not in Path(path).relative_to(tmp_path).parts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(st.lists(_SEGMENT, min_size=1, max_size=4), min_size=1, max_size=8, unique_by=tuple))
def test_safe_keys_map_one_to_one(tmp_path: Path, segments: list[list[str]]) -> None:
    keys = ["cat/" + "/".join(parts) for parts in segments]
    paths = [key_to_path(tmp_path, "cat", key) for key in keys]
    assert len(set(paths)) == len(keys)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [k.removeprefix("cat/") for k in keys]


def test_key_outside_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not under the prefix") as info:
        key_to_path(tmp_path, "photos", "photos2/x.jpg")
    assert info.value.key == "photos2/x.jpg"


# ---------------------------------------------------------------------- S3Options


def test_one_options_object_drives_fetch_and_catalogue(
    moto_endpoint: str, photo_bucket: tuple[str, list[Path]], tmp_path: Path
) -> None:
    from fashion_reco.data import S3Options
    from fashion_reco.data.sources import open_catalogue

    bucket, photos = photo_bucket
    options = S3Options(endpoint_url=moto_endpoint, unsigned=True, max_concurrency=2)
    report = fetch_s3(f"s3://{bucket}/shop", tmp_path / "a", options)
    assert report.downloaded == len(photos)
    only_csv = fetch_s3(f"s3://{bucket}/shop", tmp_path / "b", options, suffixes=(".csv",))  # keywords win
    assert only_csv.downloaded == 0 and only_csv.ok
    catalogue = Catalogue.from_s3(f"s3://{bucket}/shop", tmp_path / "a", options)
    assert len(catalogue) == len(photos)
    again = open_catalogue(f"s3://{bucket}/shop", dest=tmp_path / "a", s3=options)
    assert list(again.item_ids) == list(catalogue.item_ids)


def test_options_are_validated_and_immutable() -> None:
    from pydantic import ValidationError

    from fashion_reco.config import DataConfig
    from fashion_reco.data import S3Options

    with pytest.raises(FetchError, match="max_concurrency"):
        fetch_s3("s3://b/p", "/nonexistent-never-created", max_concurrency=0)
    with pytest.raises(FetchError, match="read_timeout"):
        S3Options().replace(read_timeout=float("nan"))
    with pytest.raises(ValidationError):
        S3Options(retry_mode="sometimes")  # type: ignore[arg-type]
    options = S3Options.from_data_config(DataConfig(s3_max_concurrency=3, s3_max_attempts=2), unsigned=True)
    assert (options.max_concurrency, options.max_attempts, options.unsigned) == (3, 2, True)
    with pytest.raises(ValidationError):
        options.max_concurrency = 9  # type: ignore[misc]
