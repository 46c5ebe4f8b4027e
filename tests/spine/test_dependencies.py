"""Dependencies are declared once: the core install imports and runs without any extra, each extra is declared."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "fashion_reco"
# import name -> distribution name, where they differ
DISTRIBUTION = {
    "PIL": "pillow",
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "faiss": "faiss-cpu",
    "snowflake": "snowflake-snowpark-python",
    "typing_extensions": "typing-extensions",
    "pydantic_settings": "pydantic-settings",
    "mypy_boto3_s3": "boto3-stubs",
    "botocore": "boto3",  # boto3 pins the botocore and s3transfer it works with
    "s3transfer": "boto3",
    "tomli": "tomli",
}
OPTIONAL = ("boto3", "botocore", "faiss", "optuna", "implicit", "onnx", "onnxruntime", "sklearn", "moto")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    for stop in "[<>=!;~ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower()


def _imported_top_level_modules() -> set[str]:
    stdlib = set(sys.stdlib_module_names)
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {n.split(".")[0] for n in names}
    return {m for m in found if m not in stdlib and m not in ("fashion_reco", "__future__")}


def test_every_imported_package_is_declared_once() -> None:
    project = _project()
    core = {_name(r) for r in project["dependencies"]}
    extras = {
        name: {_name(r) for r in reqs if not r.startswith("fashion-reco")}
        for name, reqs in project["optional-dependencies"].items()
    }
    declared = core | set().union(*extras.values())
    missing = {m for m in _imported_top_level_modules() if DISTRIBUTION.get(m, m).lower() not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
    for name, reqs in extras.items():
        assert not reqs & core, f"extra {name!r} repeats core dependencies {sorted(reqs & core)}"
    runtime = [e for e in extras if e != "dev"]
    for i, a in enumerate(runtime):
        for b in runtime[i + 1 :]:
            assert not extras[a] & extras[b], (
                f"extras {a!r} and {b!r} both declare {sorted(extras[a] & extras[b])}"
            )


def test_the_core_install_imports_without_any_extra() -> None:
    """`pip install fashion-reco` alone: the facade, CLI, report and Snowflake layers import, S3 says what to install."""
    code = (
        "import sys\n"
        f"for name in {OPTIONAL!r}:\n"
        "    sys.modules[name] = None\n"
        "import fashion_reco.cli, fashion_reco.facade, fashion_reco.demo, fashion_reco.report.html\n"
        "import fashion_reco.snowflake.deploy\n"
        "from fashion_reco.data import fetch_s3\n"
        "from fashion_reco.errors import FetchError\n"
        "try:\n"
        "    fetch_s3('s3://bucket/prefix', 'unused')\n"
        "except FetchError as exc:\n"
        "    assert 'fashion-reco[s3]' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('fetch_s3 without boto3 should explain the s3 extra')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
