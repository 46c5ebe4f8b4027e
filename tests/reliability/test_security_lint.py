"""Security rules hold across the library: ruff's bandit-derived checks, no pickle, no unsafe torch.load."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "fashion_reco"


def test_ruff_security_rules_are_clean_or_justified_in_place() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is part of the dev extra)")
    done = subprocess.run(
        [ruff, "check", "--select", "S", "--output-format", "concise", str(SRC)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_pickle_and_no_unsafe_torch_load_in_the_library() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.search(r"\bimport pickle\b|\bpickle\.loads?\(|allow_pickle\s*=\s*True", code):
                offenders.append(f"{path}:{number}: {line.strip()}")
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
