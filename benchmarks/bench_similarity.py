"""All-items cosine top-10: the library's exact search vs faiss ``IndexFlatIP`` vs the naive full similarity matrix.

Synthetic L2-normalised 512-d float32 vectors (seeded Gaussian, normalised), N = 10,000 and 100,000:

* **ours** — ``ExactIndex(vectors).search(queries, 10)`` (chunked ``sgemm`` + row-wise top-k, :mod:`fashion_reco
  .recommend.similarity`); target ≥ 0.8× faiss;
* **faiss** — ``IndexFlatIP`` (``add`` then ``search``): the reference exact search;
* **naive** — ``sklearn.metrics.pairwise.cosine_similarity`` of all N × N pairs, then ``argsort`` per row; only
  where the N × N float32 matrix fits in memory.

Exact search over 100k items is 1e10 dot products (≈ 1e13 FLOP), minutes on two cores, so at that size a fixed
sample of queries (the first 2,000 vectors) is searched against all 100k, identically for every method. Peak extra
memory is measured in a child process per method (tracemalloc cannot see BLAS or faiss buffers): its RSS high-water
mark (``VmHWM``, reset after loading the vectors) minus its RSS after loading; it includes building the index (both
copy the vectors). ``ru_maxrss`` is not used because Linux carries the parent's mark into the child. Ours and faiss must agree: recall of ours against faiss, where a
neighbour counts as found when it or one tied with ours's 10th score (within 1e-5) is returned.

    .venv/bin/python benchmarks/bench_similarity.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
import numpy as np

from fashion_reco.recommend.similarity import ExactIndex

SECTION = "similarity"
K = 10
DIM = 512
TIE_TOLERANCE = 1e-5


def vectors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` seeded Gaussian vectors, L2-normalised in place (no temporary copies)."""
    x = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def naive_bytes(n: int) -> int:
    """Memory of the naive method: the N × N float32 matrix (the argsort needs 2× more in int64 on top)."""
    return n * n * 4


def available_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def method_fns(name: str, corpus: np.ndarray, queries: np.ndarray) -> tuple[Any, Any]:
    """(build, search) callables of a method; ``search()`` returns ``(indices, scores)`` or indices."""
    if name == "ours":
        state: dict[str, Any] = {}

        def build() -> None:
            state["index"] = ExactIndex(corpus)

        def search() -> tuple[np.ndarray, np.ndarray]:
            return state["index"].search(queries, K)

        return build, search
    if name == "faiss":
        import faiss

        fstate: dict[str, Any] = {}

        def fbuild() -> None:
            index = faiss.IndexFlatIP(corpus.shape[1])
            index.add(corpus)
            fstate["index"] = index

        def fsearch() -> tuple[np.ndarray, np.ndarray]:
            scores, idx = fstate["index"].search(queries, K)
            return idx, scores

        return fbuild, fsearch
    if name == "naive":
        from sklearn.metrics.pairwise import cosine_similarity

        def nsearch() -> tuple[np.ndarray, np.ndarray]:
            sim = cosine_similarity(queries, corpus)
            idx = np.argsort(-sim, axis=1)[:, :K]
            return idx, np.take_along_axis(sim, idx, axis=1)

        return (lambda: None), nsearch
    raise ValueError(name)


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None where there is no such file."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """(In a child process) build + search once; the RSS high-water mark above the RSS after loading the data.

    ``ru_maxrss`` is not usable as is: Linux carries the parent's high-water mark through fork and exec, so a child
    of a parent holding 1 GB starts at 1 GB. ``VmHWM`` in ``/proc/self/status`` belongs to this process image only,
    and writing ``5`` to ``/proc/self/clear_refs`` resets it to the current RSS after loading.
    """
    corpus = np.load(spec["data"])
    queries = corpus[: spec["n_queries"]]
    build, search = method_fns(spec["method"], corpus, queries)  # imports the method's library: not counted
    try:
        Path("/proc/self/clear_refs").write_text("5")
        base, how = _status_kib("VmRSS"), "VmHWM"
    except OSError:
        base, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    build()
    search()
    peak = _status_kib("VmHWM") if how == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if base is None or peak is None:
        return {"extra_mib": None, "how": how}
    return {"extra_mib": (peak - base) / 1024, "base_mib": base / 1024, "how": how}


def measure_memory(data_file: str, method: str, n_queries: int) -> float | None:
    spec = json.dumps({"data": data_file, "method": method, "n_queries": n_queries})
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", spec], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        bl.log(f"memory child for {method} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    extra = json.loads(proc.stdout.strip().splitlines()[-1])["extra_mib"]
    return None if extra is None else float(extra)


def recall_vs(
    reference: np.ndarray,
    ours_idx: np.ndarray,
    ours_scores: np.ndarray,
    queries: np.ndarray,
    corpus: np.ndarray,
) -> tuple[float, float]:
    """(strict recall, recall modulo ties) of ours against the reference's top-k."""
    hits = (reference[:, :, None] == ours_idx[:, None, :]).any(axis=2)
    strict = float(hits.mean())
    missing_rows, missing_pos = np.nonzero(~hits)
    if missing_rows.size == 0:
        return strict, strict
    ref_items = reference[missing_rows, missing_pos]
    ref_scores = np.einsum("ij,ij->i", queries[missing_rows], corpus[ref_items])
    tied = ref_scores >= ours_scores[missing_rows, -1] - TIE_TOLERANCE
    return strict, float((hits.sum() + tied.sum()) / hits.size)


def measure(n: int, n_queries: int, repeats: int, memory_of: tuple[str, ...]) -> dict[str, Any]:
    corpus = vectors(n)
    queries = corpus[:n_queries]
    methods = ["ours", "faiss"]
    naive_need = naive_bytes(n)  # the naive method is all N × N pairs by definition
    naive_fits = n_queries == n and 3 * naive_need < available_bytes() // 2
    if naive_fits:
        methods.append("naive")
    fns = {name: method_fns(name, corpus, queries) for name in methods}
    build_times = bl.interleaved({name: fns[name][0] for name in methods}, repeats, warmup=0)
    results: dict[str, Any] = {}

    def searcher(name: str) -> Any:
        def call() -> None:
            results[name] = fns[name][1]()

        return call

    bl.log(f"N={n:,}: {repeats} rounds of {n_queries:,} queries × {n:,} items ({', '.join(methods)})")
    times = bl.interleaved({name: searcher(name) for name in methods}, repeats, warmup=1)
    ours_idx, ours_scores = results["ours"]
    strict, tied = recall_vs(np.asarray(results["faiss"][0]), ours_idx, ours_scores, queries, corpus)
    naive_recall = None
    if "naive" in results:
        naive_recall = recall_vs(np.asarray(results["naive"][0]), ours_idx, ours_scores, queries, corpus)
    memory: dict[str, float | None] = {}
    if memory_of:
        with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
            data_file = os.path.join(tmp, "vectors.npy")
            np.save(data_file, corpus, allow_pickle=False)
            del corpus, queries, results
            for name in (m for m in methods if m in memory_of):
                bl.log(f"N={n:,}: peak memory of {name} (child process)")
                memory[name] = measure_memory(data_file, name, n_queries)
    return {
        "n": n,
        "n_queries": n_queries,
        "methods": methods,
        "times": times,
        "build": build_times,
        "recall": strict,
        "recall_ties": tied,
        "naive_recall": naive_recall,
        "naive_need": naive_need,
        "memory": memory,
    }


def render(
    m: dict[str, Any], runs: list[dict[str, Any]], repeats: int, quick: bool, faiss_threads: int
) -> str:
    lines = [
        "## Cosine top-10 over all items (`ExactIndex` / `cosine_topk`)",
        "",
        f"`.venv/bin/python benchmarks/bench_similarity.py{' --quick' if quick else ''}` — synthetic L2-normalised "
        f"{DIM}-d float32 vectors, top-{K} per query including the query itself, median of {repeats} interleaved "
        "round(s) after a warm-up (best in brackets). Search time only; building the index (ours: normalising a "
        "copy; faiss: `add`) is listed apart. faiss uses "
        f"{faiss_threads} OpenMP thread(s), numpy's BLAS as listed below.",
        "",
    ]
    headers = [
        "N items",
        "queries",
        "method",
        "search s median (best)",
        "queries/s",
        "vs faiss",
        "vs naive",
        "build s",
        "peak extra memory",
    ]
    rows = []
    for run in runs:
        t = run["times"]
        for name in ("ours", "faiss", "naive"):
            label = {
                "ours": "ours (`ExactIndex.search`)",
                "faiss": "faiss `IndexFlatIP`",
                "naive": "naive sklearn N×N + argsort",
            }[name]
            if name not in t:
                why = f"skipped: needs {run['naive_need'] / 1e9:,.1f} GB for the N×N float32 matrix"
                rows.append([f"{run['n']:,}", f"{run['n']:,}", label, why, "–", "–", "–", "–", "–"])
                continue
            med = bl.median(t[name])
            mem = run["memory"].get(name)
            rows.append(
                [
                    f"{run['n']:,}",
                    f"{run['n_queries']:,}",
                    label,
                    f"{med:.2f} ({min(t[name]):.2f})",
                    bl.fmt(run["n_queries"] / med),
                    f"{bl.ratio(t[name], t['faiss']):.2f}×",
                    f"{bl.ratio(t[name], t['naive']):.1f}×" if "naive" in t else "–",
                    f"{bl.median(run['build'][name]):.2f}" if name != "naive" else "–",
                    "–" if mem is None else f"{mem:,.0f} MiB",
                ]
            )
    lines.append(bl.table(headers, rows))
    lines.append("")
    for run in runs:
        text = (
            f"- N={run['n']:,}: recall of ours against faiss {run['recall']:.4f} strict, "
            f"{run['recall_ties']:.4f} modulo ties (|Δscore| ≤ {TIE_TOLERANCE:g})"
        )
        if run["naive_recall"] is not None:
            text += f"; against the naive full sort {run['naive_recall'][0]:.4f} strict, {run['naive_recall'][1]:.4f} modulo ties"
        if run["n_queries"] < run["n"]:
            text += (
                f". All-items search at this size is {run['n']:,}² = {run['n'] ** 2:.0e} dot products "
                f"(≈ {2 * DIM * run['n'] ** 2:.0e} FLOP): the rows time a fixed sample of the first "
                f"{run['n_queries']:,} vectors as queries against all {run['n']:,}, for every method alike"
            )
        lines.append(text + ".")
    lines += [
        "- Peak extra memory: one child process per method loads the vectors, resets its RSS high-water mark "
        "(`/proc/self/clear_refs`), builds and searches once; reported is `VmHWM` minus the RSS after loading "
        "(psutil is not installed; `resource.getrusage(RUSAGE_SELF).ru_maxrss` would include the parent's "
        "footprint, which Linux carries through fork and exec). It counts the index's own copy of the vectors "
        f"({DIM * 4 * 1000 / 2**20:.2f} MiB per 1,000 vectors; both ours and faiss keep one) and every BLAS/faiss buffer.",
        "",
        bl.machine_lines(m),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = bl.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--sizes", default=None, help="N items, comma separated (default 10000,100000; quick 1000,3000)"
    )
    p.add_argument(
        "--sample-queries", type=int, default=None, help="queries when N is above 10,000 (default 2000)"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the per-method memory children")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        result = memory_child(json.loads(args.memory_child))
        print(json.dumps(result))
        return result
    if args.repeats is None and not args.quick:
        args.repeats = 3  # 10k all-items naive is ~10 s a round on two shared cores
    args = bl.finish_args(args)
    sizes = [int(s) for s in (args.sizes or ("1000,3000" if args.quick else "10000,100000")).split(",")]
    sample = args.sample_queries or (500 if args.quick else 2000)
    threshold = 2000 if args.quick else 10_000
    import faiss

    m = bl.machine(torch_threads=False)
    memory_of: tuple[str, ...] = () if args.no_memory else ("ours", "faiss", "naive")
    runs = []
    for i, n in enumerate(sizes):
        if args.quick:  # one child process is enough to check the memory path; each costs seconds of imports
            memory_of = ("ours",) if i == 0 and not args.no_memory else ()
        runs.append(measure(n, n if n <= threshold else min(n, sample), args.repeats, memory_of))
    body = render(m, runs, args.repeats, args.quick, faiss.omp_get_max_threads())
    bl.write_section(args.docs, SECTION, body)
    print(body)
    return {"runs": runs, "docs": str(args.docs)}


if __name__ == "__main__":
    main()
