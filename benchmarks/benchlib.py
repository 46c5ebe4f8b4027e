"""Shared plumbing of the benchmarks: arguments, machine description, interleaved timing, the docs section writer.

Rules every benchmark follows (issue 9): the machines are shared and noisy, so

* methods are timed in *interleaved rounds* (A, B, C, then C, B, A, ...) after a warm-up, so that a slow phase of
  the machine hits every method alike;
* every figure reported is the median over the rounds (the minimum beside it), and every comparison is a ratio of
  two methods measured in the same run: the median over rounds of the per-round ratio;
* the benchmark writes its own section of ``docs/benchmarks.md`` (between ``<!-- bench:NAME -->`` and
  ``<!-- /bench:NAME -->``), atomically through :mod:`fashion_reco.atomic`, with a description of the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fashion_reco.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
LIBRARIES = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pillow",
    "pandas",
    "faiss-cpu",
    "implicit",
    "scikit-learn",
    "snowflake-snowpark-python",
)
HEADER = """# Benchmarks

Written by the benchmarks themselves (`make bench`, or one of `.venv/bin/python benchmarks/bench_*.py`); each one
rewrites only its own section below. The machines are shared and noisy: absolute numbers move from run to run,
the ratios measured within one run are what matter.
"""


# -- arguments ---------------------------------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark has: ``--quick``, ``--docs``, ``--repeats``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, one repeat: checks that the benchmark runs (used by the smoke test); numbers meaningless",
    )
    p.add_argument(
        "--docs", type=Path, default=DOCS, help=f"markdown file whose section is rewritten (default {DOCS})"
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed rounds per method (default 5; 1 with --quick)"
    )
    return p


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    return args


# -- machine -----------------------------------------------------------------------------------------------------------


def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() or "unknown"


def thread_pools() -> str:
    """The native thread pools loaded in this process (BLAS, OpenMP) and their sizes, via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    seen = []
    for pool in threadpool_info():
        text = (
            f"{pool.get('internal_api')} {pool.get('version') or ''}".strip() + f" ×{pool.get('num_threads')}"
        )
        if text not in seen:
            seen.append(text)
    return ", ".join(seen) or "none loaded"


def machine(*, torch_threads: bool = True) -> dict[str, Any]:
    """CPU model, clock, SIMD flags, visible cores, thread pools, library versions, date, load, commit.

    ``torch_threads=False`` leaves torch unimported (benchmarks that do not use it).
    """
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    started = (os.times(), time.perf_counter())
    mhz = info.get("cpu MHz")
    return {
        "cpu": info.get("model name") or platform.processor() or "unknown",
        "mhz": float(mhz) if mhz else None,
        "flags": flags,
        "simd": "+".join(f for f in ("avx512f", "avx2", "fma", "avx") if f in flags) or "none reported",
        "cores": cores(),
        "torch_threads": _torch_threads() if torch_threads else None,
        "pools": thread_pools(),
        "versions": library_versions(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "commit": _git_commit(),
        "started": started,
    }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def fp32_peak(m: dict[str, Any]) -> tuple[float | None, str]:
    """Estimated FP32 peak (GFLOP/s) of the visible cores and the assumption it rests on.

    ``cores × GHz × FLOP/cycle`` with FLOP/cycle = 2 FMA units × (vector width / 32) lanes × 2 (an FMA is two
    FLOPs): 64 with AVX-512, 32 with AVX2+FMA, 16 with AVX without FMA, 8 with SSE.
    """
    flags = m["flags"]
    if "avx512f" in flags:
        width = 512
    elif "avx" in flags or "avx2" in flags:
        width = 256
    else:
        width = 128
    fma = 2 if ("fma" in flags or "avx512f" in flags) else 1
    per_cycle = 2 * (width // 32) * fma
    if not m["mhz"]:
        return None, "no clock in /proc/cpuinfo: peak unknown"
    ghz = m["mhz"] / 1000
    peak = m["cores"] * ghz * per_cycle
    text = (
        f"peak FP32 = {m['cores']} cores × {ghz:.2f} GHz (the clock /proc/cpuinfo reports; turbo may be higher) × "
        f"{per_cycle} FLOP/cycle (assumed 2 FMA units × {width // 32} lanes of {width}-bit vectors × "
        f"{'2 for the fused multiply-add' if fma == 2 else '1, no FMA'}) = {peak:.0f} GFLOP/s"
    )
    return peak, text


def cpu_share(m: dict[str, Any]) -> float | None:
    """Fraction of the visible cores' time this process and its reaped children used since :func:`machine`."""
    (t0, w0), t1 = m["started"], os.times()
    wall = time.perf_counter() - w0
    if wall <= 0:
        return None
    used = (t1.user - t0.user) + (t1.system - t0.system)
    used += (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    return used / (wall * m["cores"])


def machine_lines(m: dict[str, Any], *, extra: Sequence[str] = ()) -> str:
    """Markdown bullet list describing the machine and the run."""
    share = cpu_share(m)
    v = m["versions"]
    load = "unknown" if m["load"] is None else " / ".join(f"{x:.1f}" for x in m["load"])
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    clock = f"{m['mhz'] / 1000:.2f} GHz reported" if m["mhz"] else "clock not reported"
    lines = [
        f"- measured {m['date']}, commit `{m['commit']}`",
        f"- CPU: {m['cpu']}, {m['cores']} cores visible, {clock}, SIMD {m['simd']}"
        + ("" if m["torch_threads"] is None else f"; torch threads {m['torch_threads']}")
        + f"; native thread pools: {m['pools']}",
        f"- load average at start (1/5/15 min): {load}; this run got "
        + ("an unknown share" if share is None else f"{100 * share:.0f} %")
        + " of the visible cores' time (CPU time of the benchmark and its finished child processes / wall time × "
        "cores) — the machine is shared with other work, absolute numbers are noisy; the ratios (same run, "
        "interleaved rounds) are what matter",
        f"- {libs}",
        *extra,
    ]
    return "\n".join(f"{line}" for line in lines)


# -- timing ------------------------------------------------------------------------------------------------------------


def interleaved(
    methods: dict[str, Callable[[], Any]], repeats: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of every method, over ``repeats`` interleaved rounds (order reversed every other round)."""
    for fn in methods.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def ratio(faster_if_above_one: Sequence[float], reference: Sequence[float]) -> float:
    """Median over rounds of ``reference_time / time``: the speed of a method relative to ``reference`` (>1 faster)."""
    return median([r / t for t, r in zip(faster_if_above_one, reference, strict=True)])


def rate(n: float, seconds: Sequence[float]) -> tuple[float, float]:
    """(items/s at the median time, items/s at the fastest round)."""
    return n / median(seconds), n / min(seconds)


# -- docs --------------------------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on the docs folder, so that two benchmarks finishing together do not lose a section."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_section(docs: Path, name: str, body: str) -> Path:
    """Replace the text between ``<!-- bench:name -->`` and ``<!-- /bench:name -->`` (append the block if absent)."""
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(f"bad section name {name!r}")
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    docs = Path(docs)
    docs.parent.mkdir(parents=True, exist_ok=True)
    with _locked(docs.parent):
        text = docs.read_text(encoding="utf-8") if docs.is_file() else HEADER
        i, j = text.find(start), text.find(end)
        if 0 <= i < j:
            text = text[:i] + block + text[j + len(end) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        atomic_write_text(docs, text)
    return docs


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
