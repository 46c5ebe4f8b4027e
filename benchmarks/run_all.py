"""Run every benchmark in turn (``make bench``), each in its own process, each rewriting its section of the docs.

    .venv/bin/python benchmarks/run_all.py [--quick] [--docs PATH] [--only embedding,similarity,...]

Benchmarks run one after the other, never together: they would slow each other down. A benchmark that fails is
reported and the others still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("embedding", "similarity", "recommend", "ranker", "udf")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (checks that every benchmark runs)")
    p.add_argument(
        "--docs", type=Path, default=None, help="markdown file to write (default docs/benchmarks.md)"
    )
    p.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {', '.join(BENCHMARKS)}"
    )
    args = p.parse_args(argv)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    failed = []
    for name in chosen:
        cmd = [sys.executable, str(HERE / f"bench_{name}.py")]
        if args.quick:
            cmd.append("--quick")
        if args.docs is not None:
            cmd += ["--docs", str(args.docs)]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(cmd, check=False).returncode
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
