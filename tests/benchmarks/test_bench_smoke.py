"""Every benchmark runs end to end in ``--quick`` mode and writes its section, so the benchmarks never rot.

No timing is asserted (benchmarks own timings, and these sizes are too small to mean anything); what is asserted is
that each benchmark measured what it claims to compare: its methods agree with each other and its section lands in
the docs file without touching the others.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def one_torch_thread() -> object:
    """Tiny tensors on a shared machine: one intra-op thread keeps the quick runs short (restored afterwards)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _load(name: str) -> ModuleType:
    module_name = f"bench_{name}" if name != "benchlib" else name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH_DIR / f"{module_name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _section(docs: Path, name: str) -> str:
    text = docs.read_text(encoding="utf-8")
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    assert text.count(start) == 1 and text.count(end) == 1, text
    body = text[text.index(start) + len(start) : text.index(end)]
    assert "| --- |" in body  # a results table
    assert "load average" in body and "cores visible" in body  # the machine description
    return body


def test_write_section_replaces_only_its_own_block(tmp_path: Path) -> None:
    bl = _load("benchlib")
    docs = tmp_path / "docs" / "benchmarks.md"
    bl.write_section(docs, "alpha", "first alpha")
    bl.write_section(docs, "beta", "only beta")
    docs.write_text(docs.read_text(encoding="utf-8") + "\nhand-written footer\n", encoding="utf-8")
    bl.write_section(docs, "alpha", "second alpha")
    text = docs.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "second alpha" in text and "first alpha" not in text
    assert "only beta" in text and "hand-written footer" in text
    assert text.index("<!-- bench:alpha -->") < text.index("<!-- bench:beta -->")
    assert not list(docs.parent.glob(".*.tmp"))  # atomic writes leave no temp file behind


def test_embedding_quick(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result = _load("embedding").main(["--quick", "--docs", str(docs)])
    body = _section(docs, "embedding")
    assert "end to end" in body and "model only" in body and "naive loop" in body
    for size in result["per_size"]:
        assert size["agree"]["model only"] <= 1e-5  # same network, same pixels
        assert (
            size["agree"]["naive loop"] <= 1e-3
        )  # PIL decode without the policy's EXIF step may differ a hair


def test_similarity_quick(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result = _load("similarity").main(["--quick", "--docs", str(docs)])
    body = _section(docs, "similarity")
    assert "faiss" in body and "skipped" in body  # the sampled size never runs the N×N naive method
    for run in result["runs"]:
        assert run["recall_ties"] == pytest.approx(1.0)
    assert result["runs"][0]["naive_recall"][1] == pytest.approx(1.0)


def test_recommend_quick(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result = _load("recommend").main(["--quick", "--docs", str(docs)])
    _section(docs, "recommend")
    assert result["checks"]["ours_full_lists"] == pytest.approx(1.0)
    assert result["checks"]["ours_rows"] == result["sizes"]["customers"] * 12


def test_udf_quick(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result = _load("udf").main(["--quick", "--docs", str(docs)])
    _section(docs, "udf")
    assert max(result["agree"].values()) <= 1e-5  # handler, embed_bytes and embed give the same rows


def test_run_all_rejects_unknown_benchmarks() -> None:
    spec = importlib.util.spec_from_file_location("run_all", BENCH_DIR / "run_all.py")
    assert spec is not None and spec.loader is not None
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    assert set(run_all.BENCHMARKS) == {p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py")}
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nonsense"])


def test_ranker_quick(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result = _load("ranker").main(["--quick", "--docs", str(docs)])
    body = _section(docs, "ranker")
    assert result["full_lists"] == 1.0 and result["rows"] > 0
    assert "LightGBM `predict` alone" in body and "implicit" in body
