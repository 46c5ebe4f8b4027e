"""Reproduce the rolling-origin tables of docs/evaluation.md: the default ranker vs every baseline, per fold and pooled,
with paired bootstrap intervals, on the fashion simulator and on the real Online Retail log.

    PYTHONPATH=src python tools/measure_rolling.py --data ../shared/data --which sim retail --out out/rolling.md
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from fashion_reco._version import __version__
from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.data.datasets import load_clothing
from fashion_reco.data.retail import load_online_retail
from fashion_reco.data.simulation import simulate_retail
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.evaluation import TimeSplitEvaluation, default_candidate, evaluate_time_split

K = 12


def table_md(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (floats to 4 decimals)."""

    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def markdown(result: TimeSplitEvaluation, title: str, seconds: float) -> str:
    """Pooled table, MAP@k per fold and the intervals as Markdown."""
    if result.fold_table is None or result.intervals is None:
        raise SystemExit("no fold table: nothing to write")
    pooled = result.table[["model", "map", "ndcg", "recall", "precision", "hit_rate", "n_customers"]]
    folds = result.fold_table.pivot_table(index="fold", columns="model", values="map", aggfunc="first")
    info = result.fold_table.drop_duplicates("fold").set_index("fold")[["cutoff", "until", "n_customers"]]
    folds = info.join(folds[list(dict.fromkeys(result.fold_table["model"]))])
    iv = result.intervals.copy()
    iv["interval"] = iv.apply(lambda r: f"[{r['low']:+.4f}, {r['high']:+.4f}]", axis=1)
    iv = iv[
        [
            "baseline",
            "metric",
            "candidate_value",
            "baseline_value",
            "diff",
            "interval",
            "ratio",
            "n",
            "verdict",
        ]
    ]
    return "\n\n".join(
        [
            f"### {title}",
            result.summary().replace("\n", "  \n"),
            f"(measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, fashion-reco {__version__}, Python "
            f"{platform.python_version()}, {seconds:.0f} s on a shared 2-core machine)",
            "Pooled over customer-windows:",
            table_md(pooled),
            f"MAP@{K} per fold:",
            table_md(folds.reset_index()),
            "Candidate minus baseline (paired bootstrap 95 % interval over customer-windows):",
            table_md(iv),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--which", nargs="+", default=["sim", "retail"], choices=["sim", "retail"])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=56)
    parser.add_argument("--out", type=Path, default=Path("out/rolling.md"))
    parser.add_argument(
        "--filter-purchased", action="store_true", help="Apply filter_already_purchased=True to every model."
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    blend = BlendConfig(k=K)  # library defaults otherwise
    candidate = default_candidate(blend, RankerConfig())
    parts = []
    if "sim" in args.which:
        catalogue = load_clothing(args.data)
        sim = simulate_retail(catalogue, n_customers=args.customers, days=args.days, seed=0)
        ctx = FitContext(item_ids=catalogue.item_ids, item_labels=catalogue.labels, customers=sim.customers)
        start = time.perf_counter()
        result = evaluate_time_split(
            sim.interactions,
            7,
            ctx,
            blend,
            K,
            folds=4,
            candidate=candidate,
            relevance="purchase",
            filter_already_purchased=args.filter_purchased,
        )
        rule = "; already-bought items filtered" if args.filter_purchased else ""
        title = (
            f"Fashion simulator: {args.customers:,} customers, {args.days} days, {len(sim.interactions):,} events "
            f"over the {len(catalogue):,} clothing items; 4 weekly folds, relevant = purchases{rule}"
        )
        parts.append(markdown(result, title, time.perf_counter() - start))
    if "retail" in args.which:
        log, _ = load_online_retail(args.data / "online_retail" / "online_retail_first10k.csv")
        start = time.perf_counter()
        result = evaluate_time_split(
            log,
            0.5,
            None,
            blend,
            K,
            folds=8,
            candidate=candidate,
            filter_already_purchased=args.filter_purchased,
        )
        title = "Online Retail (real, 7,580 purchases, 1-5 Dec 2010): 8 half-day windows"
        parts.append(markdown(result, title, time.perf_counter() - start))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
