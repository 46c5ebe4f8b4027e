"""All-items cosine top-10: the library's exact search vs faiss ``IndexFlatIP`` vs the naive full similarity matrix.

Synthetic L2-normalised 512-d float32 vectors (seeded Gaussian, normalised), N = 10,000 and 100,000:

* **ours** — ``ExactIndex(vectors).search(queries, 10)`` (chunked ``sgemm`` + row-wise top-k, :mod:`fashion_reco
  .recommend.similarity`); target ≥ 0.8× faiss;
* **faiss** — ``IndexFlatIP`` (``add`` then ``search``): the reference exact search;
* **naive** — ``sklearn.metrics.pairwise.cosine_similarity`` of all N × N pairs, then ``argsort`` per row; only
  where the N × N float32 matrix fits in memory.

Exact search over 100k items is 1e10 dot products (≈ 1e13 FLOP), minutes on two cores, so at that size a fixed
sample of queries (the first 5,000 vectors) is searched against all 100k, identically for every method. Peak extra
memory is the RSS high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) of a child process per method
minus the child's own mark after loading the vectors (tracemalloc cannot see BLAS or faiss buffers); it includes
building the index (both copy the vectors). Ours and faiss must agree: recall of ours against faiss, where a
neighbour counts as found when it or one tied with ours's 10th score (within 1e-5) is returned.

    .venv/bin/python benchmarks/bench_similarity.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
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


def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """(In a child process) build + search once; extra RSS high-water mark over the mark after loading the data."""
    corpus = np.load(spec["data"])
    queries = corpus[: spec["n_queries"]]
    build, search = method_fns(spec["method"], corpus, queries)  # imports the method's library: not counted
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    build()
    search()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"extra_mib": (peak - base) / 1024, "base_mib": base / 1024}  # ru_maxrss is in KiB on Linux


def measure_memory(data_file: str, method: str, n_queries: int) -> float | None:
    spec = json.dumps({"data": data_file, "method": method, "n_queries": n_queries})
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", spec], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        bl.log(f"memory child for {method} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["extra_mib"])


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
        "- Peak extra memory: RSS high-water mark (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, psutil is not "
        "installed) of one child process per method, minus the mark after loading the vectors; it includes the "
        "index's own copy of the vectors (both ours and faiss keep one) and every BLAS/faiss buffer.",
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
        "--sample-queries", type=int, default=None, help="queries when N is above 10,000 (default 5000)"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the per-method memory children")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        result = memory_child(json.loads(args.memory_child))
        print(json.dumps(result))
        return result
    args = bl.finish_args(args)
    sizes = [int(s) for s in (args.sizes or ("1000,3000" if args.quick else "10000,100000")).split(",")]
    sample = args.sample_queries or (500 if args.quick else 5000)
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
