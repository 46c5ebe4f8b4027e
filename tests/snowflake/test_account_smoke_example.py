"""examples/snowflake_account_smoke.py needs a real account: here only its import and argument checks run."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "snowflake_account_smoke.py"


@pytest.fixture(scope="module")
def smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fashion_reco_example_account_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing connects to nothing and loads no model
    return module


def test_arguments(smoke: ModuleType) -> None:
    args = smoke.parse_args(["--connection", "reco", "--database", "retail", "--warehouse", "reco_wh"])
    assert (args.connection, args.photos, args.keep, args.schema_prefix) == (
        "reco",
        50,
        False,
        "FASHION_RECO_SMOKE",
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no connection: it must never fall back to anything implicit
        ["--connection", "reco", "--database", "retail"],
        ["--connection", "reco", "--database", 'retail"; DROP DATABASE x; --', "--warehouse", "w"],
        ["--connection", "reco", "--database", "r", "--warehouse", "w", "--photos", "100000"],
    ],
)
def test_bad_arguments_stop_before_connecting(smoke: ModuleType, argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        smoke.main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_scratch_schema_is_unique_and_recognisable(smoke: ModuleType) -> None:
    now = dt.datetime(2026, 11, 30, 18, 5, 7, tzinfo=dt.timezone.utc)
    first, second = (
        smoke.scratch_schema("fashion_reco_smoke", now),
        smoke.scratch_schema("fashion_reco_smoke", now),
    )
    assert re.fullmatch(r"FASHION_RECO_SMOKE_20261130_180507_[0-9A-F]{6}", first) and first != second


def test_help_runs_as_a_script() -> None:
    import subprocess

    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0 and "--connection" in run.stdout
