"""Measure the ranker's validation gate on rolling folds: the served model (ranker or, when the gate says so, the
blend) against the blend, own-history-then-popular and the ungated ranker, pooled MAP@12 with paired bootstrap
intervals, plus each fold's gate decision.

    PYTHONPATH=src python tools/measure_gate.py --data ../shared/data --which sparse sim retail --out out/gate.md
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.data.datasets import load_clothing
from fashion_reco.data.retail import load_online_retail
from fashion_reco.data.simulation import simulate_retail
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.baselines import OwnHistoryPopularRecommender
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.evaluation import evaluate_time_split
from fashion_reco.recommend.ranker import RankerRecommender

K = 12


def run(
    name: str, log: Any, days: float, ctx: FitContext | None, folds: int, relevance: str, gate_windows: int
) -> str:
    """One rolling evaluation → Markdown lines (pooled MAP@12, intervals, gate decisions per fold)."""
    blend = BlendConfig(k=K)
    summaries: list[dict[str, Any]] = []

    def served() -> RankerRecommender:
        model = RankerRecommender(RankerConfig(validation_windows=gate_windows), blend=blend)
        original = model._fit

        def fit_and_record(data: Any, context: Any) -> None:
            original(data, context)
            summaries.append(model.fit_summary_)

        model._fit = fit_and_record  # type: ignore[method-assign]
        return model

    baselines = {
        "blend": lambda: BlendRecommender(blend),
        "own_history_popular": lambda: OwnHistoryPopularRecommender(blend),
        "ranker_ungated": lambda: RankerRecommender(RankerConfig(validate_against_blend=False), blend=blend),
    }
    start = time.perf_counter()
    result = evaluate_time_split(
        log, days, ctx, blend, K, folds=folds, candidate=served, baselines=baselines, relevance=relevance
    )
    seconds = time.perf_counter() - start
    iv = result.intervals
    if iv is None:
        raise SystemExit("no intervals: nothing to write")
    iv = iv[iv["metric"] == "map"]
    lines = [f"### {name} ({seconds:.0f} s)", "", "| model | MAP@12 | n |", "|---|---|---|"]
    for row in result.table.itertuples(index=False):
        lines.append(f"| {row.model} | {row.map:.4f} | {row.n_customers} |")
    lines += ["", "| served − baseline | diff | 95 % interval |", "|---|---|---|"]
    for row in iv.itertuples(index=False):
        lines.append(f"| {row.baseline} | {row.diff:+.4f} | [{row.low:+.4f}, {row.high:+.4f}] |")
    lines += ["", "gate per fold:"]
    for s in summaries:
        gate = s.get("validation_gate")
        lines.append(
            f"- model={s.get('model')} fit {s.get('fit_seconds')} s gate={json.dumps(gate, default=str)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--which", nargs="+", default=["sparse", "sim", "retail"])
    parser.add_argument("--out", type=Path, default=Path("out/gate.md"))
    parser.add_argument("--validation-windows", type=int, default=RankerConfig().validation_windows)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    parts = []
    if {"sparse", "sim"} & set(args.which):
        catalogue = load_clothing(args.data)
    if "sparse" in args.which:
        sim = simulate_retail(catalogue, n_customers=800, days=42, seed=1)
        ctx = FitContext(item_ids=catalogue.item_ids, item_labels=catalogue.labels, customers=sim.customers)
        parts.append(
            run(
                "sparse: 800 customers, 42 days, 3,781 items, 4 weekly folds",
                sim.interactions,
                7,
                ctx,
                4,
                "purchase",
                args.validation_windows,
            )
        )
    if "sim" in args.which:
        sim = simulate_retail(catalogue, n_customers=3000, days=56, seed=0)
        ctx = FitContext(item_ids=catalogue.item_ids, item_labels=catalogue.labels, customers=sim.customers)
        parts.append(
            run(
                "default simulator: 3,000 customers, 56 days, 3,781 items, 4 weekly folds",
                sim.interactions,
                7,
                ctx,
                4,
                "purchase",
                args.validation_windows,
            )
        )
    if "retail" in args.which:
        log, _ = load_online_retail(args.data / "online_retail" / "online_retail_first10k.csv")
        parts.append(
            run("Online Retail: 8 half-day folds", log, 0.5, None, 8, "any", args.validation_windows)
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
