"""fetch_s3 under faults: a proxy in front of the moto S3 server answers 500/503, resets connections, cuts bodies
short and stalls; the fetch must still end identical to the bucket. A fetch killed mid-way resumes without
re-downloading anything it had completed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from fashion_reco.data.s3 import fetch_s3

_KIT_NAME = (
    "fashion_reco_tests_s3_testkit"  # the same name tests/data/conftest.py uses: one moto server per run
)


def _load_kit() -> ModuleType:
    if _KIT_NAME not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "data" / "s3_testkit.py"
        spec = importlib.util.spec_from_file_location(_KIT_NAME, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_KIT_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_KIT_NAME]


@pytest.fixture(scope="module")
def kit() -> ModuleType:
    return _load_kit()


@pytest.fixture(scope="module")
def bucket(kit: ModuleType):
    """(moto endpoint, the 1,500 objects a fetch of photos/ must produce), with dummy credentials in the env."""
    with kit.credentials_env():
        endpoint = kit.moto_endpoint()
        yield endpoint, kit.big_bucket(endpoint)


def _files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")}


def test_1500_objects_through_a_faulty_proxy_end_identical(kit: ModuleType, bucket, tmp_path: Path) -> None:
    endpoint, wanted = bucket
    plan = kit.FaultPlan(seed=20240601, rate=0.04, slow_seconds=0.05)
    with kit.serve(kit.fault_proxy_handler(endpoint, plan)) as proxy:
        report = fetch_s3(f"s3://{kit.BIG_BUCKET}/photos/", tmp_path, endpoint_url=proxy, max_concurrency=8)
    assert report.failed == {}
    assert (report.downloaded, report.skipped) == (1500, 0)
    assert kit.tree_digest(tmp_path) == kit.relative_digest(wanted, kit.BIG_PREFIX)  # sizes and MD5s
    assert not list(tmp_path.rglob("*.tmp"))
    assert all(plan.counts[kind] > 0 for kind in kit.FaultPlan.KINDS), plan.counts
    stalled = plan.counts["slow"] * plan.slow_seconds
    assert stalled <= 3.0  # the injected stalls stay bounded


def test_killed_fetch_resumes_without_redownloading(kit: ModuleType, bucket, tmp_path: Path) -> None:
    endpoint, wanted = bucket
    prefix = "photos/class-0/batch-1/"  # 71 objects
    subset = {k: v for k, v in wanted.items() if k.startswith(prefix)}
    expected = kit.relative_digest(subset, prefix)
    dest = tmp_path / "dest"
    slow = kit.FaultPlan(seed=1, rate=1.0, slow_seconds=0.01, max_in_a_row=10**9, kinds=("slow",))
    script = (
        "import sys\n"
        "from fashion_reco.data.s3 import fetch_s3\n"
        "fetch_s3(sys.argv[1], sys.argv[2], endpoint_url=sys.argv[3], max_concurrency=2)\n"
    )
    with kit.serve(kit.fault_proxy_handler(endpoint, slow)) as proxy:
        process = subprocess.Popen(
            [sys.executable, "-c", script, f"s3://{kit.BIG_BUCKET}/{prefix}", str(dest), proxy],
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        try:
            deadline = time.monotonic() + 120
            while (len(_files(dest)) if dest.exists() else 0) < 20:
                assert process.poll() is None, "the fetch ended before it could be interrupted"
                assert time.monotonic() < deadline, "the fetch made no progress"
                time.sleep(0.005)
        finally:
            process.kill()  # SIGKILL: no cleanup handlers run, as after a crash or an OOM kill
            process.wait()
    complete = _files(dest)
    assert 20 <= len(complete) < len(expected)
    stale = dest / ".item-99999.jpg.ab12_x9z.tmp"  # a temp file as atomic_open names them
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a photo")

    report = fetch_s3(f"s3://{kit.BIG_BUCKET}/{prefix}", dest, endpoint_url=endpoint)
    assert report.failed == {}
    assert report.skipped == len(complete) and report.downloaded == len(expected) - len(complete)
    assert set(report.skipped_keys) == {prefix + p.relative_to(dest).as_posix() for p in complete}
    assert all(
        p.stat().st_mtime_ns == mtime for p, mtime in complete.items()
    )  # nothing complete was rewritten
    assert kit.tree_digest(dest) == expected
    assert not list(dest.rglob("*.tmp"))
