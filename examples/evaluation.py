"""Offline evaluation: the personalised blend against its baselines on a later time window.

    python examples/evaluation.py            # full size: the whole purchase log + 1,000 synthetic customers over the
                                             # 3,781 real clothing photos (about 10 minutes on 2 quiet CPU cores)
    python examples/evaluation.py --smoke    # the same purchase log + 60 customers over the shipped sample photos
    python examples/evaluation.py --part retail      # only the purchase log (seconds, no photos)

Two data sets, two ways in:

1. **Online Retail** (UCI, real purchases, first 10,000 rows: 5 days, no photos) with the recommend layer directly:
   ``load_online_retail`` → ``time_split`` (last day = test) → ``BlendRecommender`` and ``standard_baselines``
   → ``evaluate_models``, for customers with history ("warm") and new customers ("cold"). Only behaviour,
   popularity and trend signals exist here.
2. **Synthetic fashion clickstream** over real photos, through the facade: train → embed → ``generate_customers`` /
   ``generate_clickstream`` → ``split_by_time`` (last 7 of 60 days = test) → ``fit`` → ``evaluate``.

Tables (CSV) and a markdown summary (``results.md``, with the date and configuration) go to ``--out``
(default ``out/evaluation``). docs/evaluation.md explains the protocol and the metrics.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from fashion_reco import FashionRecommender, RecommenderConfig, __version__
from fashion_reco.config import BlendConfig
from fashion_reco.data import Catalogue, load_clothing, load_online_retail, sample_catalogue
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.recommend import BlendRecommender, evaluate_models, standard_baselines, time_split

RETAIL_CSV = Path("online_retail") / "online_retail_first10k.csv"
#: the purchase log spans 5 days: the last day is the test window, the blend tunes on half-day windows before it
RETAIL_BLEND = {"k": 10, "test_days": 1.0, "validation_days": 0.5}
SYNTHETIC_SEED = 11


def make_config(smoke: bool) -> RecommenderConfig:
    """Image-model budget for the synthetic part (``smoke``: one 64 px epoch on 60 photos; full: three 64 px
    epochs on every training photo). Both fine-tune the whole network: without pretrained weights the library skips
    the frozen-backbone head phase anyway. The blend keeps its defaults."""
    if smoke:
        return RecommenderConfig(
            data={"num_workers": 0},
            model={
                "image_size": 64,
                "head_epochs": 0,
                "finetune_epochs": 1,
                "max_train_images": 60,
                "augment": False,
                "batch_size": 32,
            },
        )
    # a fixed number of epochs (no wall-clock cut), so the measured tables do not depend on the machine's load
    return RecommenderConfig(
        model={"image_size": 64, "head_epochs": 0, "finetune_epochs": 3, "max_train_seconds": 7200}
    )


# ------------------------------------------------------------------------------------------------ 1. Online Retail
def evaluate_retail(csv: Path) -> dict[str, Any]:
    """Blend vs popularity, recent popularity, behaviour-only (and implicit's item-kNN / ALS when installed)."""
    log, cleaning = load_online_retail(csv)
    print(f"purchase log: {log!r}\ncleaning: {cleaning.model_dump(exclude={'file'})}")
    train, test = time_split(log, RETAIL_BLEND["test_days"])
    config = BlendConfig(**RETAIL_BLEND)
    tables = {}
    blend = None
    for segment in ("warm", "cold"):
        models = [BlendRecommender(config), *standard_baselines(config, with_visual=False)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit's advisory notes
            tables[segment] = evaluate_models(models, train, test, None, k=config.k, segment=segment)
        blend = blend or models[0]
        print(
            f"\nOnline Retail, {segment} test customers, k={config.k}:\n{tables[segment].round(4).to_string(index=False)}"
        )
    assert blend is not None
    learned = {
        "weights": blend.weights_,
        "cold_weights": blend.cold_weights_,
        "half_life_days": blend.half_life_days_,
        "trend_half_life_days": blend.trend_half_life_days_,
    }
    print(f"\nlearned on the validation window: {learned}")
    return {
        "cleaning": cleaning.model_dump(),
        "warm": tables["warm"],
        "cold": tables["cold"],
        "learned": learned,
        "train_events": len(train),
        "test_events": len(test),
        "config": config.model_dump(mode="json"),
    }


# ------------------------------------------------------------------------------------- 2. synthetic, via the facade
def open_catalogue(config: RecommenderConfig, smoke: bool) -> Catalogue:
    if not smoke and (config.data.root / "clothing" / "labels.csv").is_file():
        return load_clothing(config.data.root)
    return sample_catalogue()


def evaluate_synthetic(config: RecommenderConfig, smoke: bool, n_customers: int) -> dict[str, Any]:
    """Photos → image model → embeddings → synthetic customers and clickstream → fit → evaluate."""
    catalogue = open_catalogue(config, smoke)
    reco = FashionRecommender(config)
    started = time.perf_counter()
    model = reco.train(catalogue, progress=not smoke)
    embeddings = reco.embed(catalogue, progress=not smoke)
    customers = generate_customers(catalogue, n=n_customers, seed=SYNTHETIC_SEED)
    clicks = generate_clickstream(catalogue, customers, item_embeddings=embeddings, seed=SYNTHETIC_SEED)
    train, test = clicks.split_by_time(config.blend.test_days)
    reco.fit(catalogue, train, customers, item_embeddings=embeddings, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = reco.evaluate(test, k=config.blend.k)
    seconds = time.perf_counter() - started
    split = "test" if "test" in model.metrics else "validation"
    classifier = {
        "split": split,
        "accuracy": model.metrics[split].accuracy,
        "macro_f1": model.metrics[split].macro_f1,
        "n": model.metrics[split].n,
        "training": {k: v for k, v in model.training.items() if k != "failed_images"},
    }
    print(f"\ncatalogue {catalogue!r}; clickstream {clicks!r}")
    print(
        f"image model on {split} photos: accuracy {classifier['accuracy']:.3f}, macro-F1 {classifier['macro_f1']:.3f}"
    )
    print(
        f"\nsynthetic clickstream, warm test customers, k={config.blend.k}:\n{table.round(4).to_string(index=False)}"
    )
    model = reco.recommender
    summary = getattr(model, "fit_summary_", {})  # the ranker's fit summary (the blend has none)
    blend = getattr(model, "fallback_", None) or model
    learned = (
        {
            "model": "ranker",
            "best_iteration": summary.get("best_iteration"),
            "validation_gate": summary.get("validation_gate"),
        }
        if summary.get("model") == "ranker"
        else {
            "model": "blend",
            "why": summary.get("fallback"),
            "weights": blend.weights_,
            "cold_weights": blend.cold_weights_,
            "half_life_days": blend.half_life_days_,
            "trend_half_life_days": blend.trend_half_life_days_,
        }
    )
    return {
        "table": table,
        "classifier": classifier,
        "learned": learned,
        "n_items": len(catalogue),
        "n_customers": len(customers),
        "n_events": len(clicks),
        "train_events": len(train),
        "test_events": len(test),
        "seconds": round(seconds, 1),
        "config": config.to_toml_dict(),
    }


# ---------------------------------------------------------------------------------------------------- reporting
def markdown(table: pd.DataFrame) -> str:
    """A metrics table as GitHub markdown (4 decimals)."""
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_budget(model: dict[str, Any]) -> dict[str, Any]:
    """The image-model keys that decide its training budget (the rest are defaults)."""
    keys = (
        "weights",
        "image_size",
        "head_epochs",
        "finetune_epochs",
        "max_train_seconds",
        "max_train_images",
        "augment",
        "batch_size",
    )
    return {k: model[k] for k in keys if k in model}


def rounded(learned: dict[str, Any]) -> str:
    """What was learned (the ranker's fit or the blend's weights and half-lives), numbers to 3 decimals, as JSON."""

    def r(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: r(v) for k, v in value.items()}
        return (
            round(float(value), 3)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else value
        )

    return json.dumps(r(learned))


def results_markdown(retail: dict[str, Any] | None, synthetic: dict[str, Any] | None, smoke: bool) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"Measured {stamp} with fashion-reco {__version__} (`python examples/evaluation.py"
        f"{' --smoke' if smoke else ''}`, Python {platform.python_version()}, {platform.machine()})."
    ]
    if retail is not None:
        c = retail["cleaning"]
        parts += [
            f"\n### Online Retail (first 10k rows), blend config {RETAIL_BLEND}",
            f"{c['rows']} rows → {c['kept']} purchases after cleaning ({c['cancellations']} cancellations, "
            f"{c['missing_customer']} without customer, {c['non_positive_quantity']} non-positive quantities, "
            f"{c['unknown_stock_code']} non-product codes); {retail['train_events']} train / "
            f"{retail['test_events']} test events.",
            "\nWarm test customers (history before the test day):\n",
            markdown(retail["warm"]),
            "\nCold test customers (first seen on the test day):\n",
            markdown(retail["cold"]),
            f"\nLearned on the validation windows: `{rounded(retail['learned'])}`",
        ]
    if synthetic is not None:
        cl = synthetic["classifier"]
        parts += [
            f"\n### Synthetic fashion clickstream over {synthetic['n_items']} real photos",
            f"{synthetic['n_customers']} customers, {synthetic['n_events']} events over 60 days (seed "
            f"{SYNTHETIC_SEED}); {synthetic['train_events']} train / {synthetic['test_events']} test events. "
            f"Image model `{json.dumps(model_budget(synthetic['config']['model']))}`: best epoch "
            f"{cl['training'].get('best_epoch')} ({cl['training'].get('stopped_reason')}, "
            f"{cl['training'].get('seconds')} s of training); on the {cl['split']} photos accuracy "
            f"{cl['accuracy']:.3f}, macro-F1 {cl['macro_f1']:.3f} (n={cl['n']}). Whole run {synthetic['seconds']} s.",
            "\nWarm test customers:\n",
            markdown(synthetic["table"]),
            f"\nLearned on the validation windows: `{rounded(synthetic['learned'])}`",
        ]
    return "\n".join(parts) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="shipped sample photos, 64 px, one epoch, 60 customers"
    )
    parser.add_argument("--part", choices=("all", "retail", "synthetic"), default="all")
    parser.add_argument(
        "--retail-csv", type=Path, help=f"Online Retail CSV (default: <data root>/{RETAIL_CSV})"
    )
    parser.add_argument("--customers", type=int, help="synthetic customers (default 60 / 1000)")
    parser.add_argument("--out", type=Path, default=Path("out/evaluation"), help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation(s) and write the tables; returns 0."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = make_config(args.smoke)
    retail = synthetic = None
    if args.part in ("all", "retail"):
        retail = evaluate_retail(args.retail_csv or config.data.root / RETAIL_CSV)
        retail["warm"].to_csv(args.out / "retail_warm.csv", index=False)
        retail["cold"].to_csv(args.out / "retail_cold.csv", index=False)
    if args.part in ("all", "synthetic"):
        synthetic = evaluate_synthetic(config, args.smoke, args.customers or (60 if args.smoke else 1000))
        synthetic["table"].to_csv(args.out / "synthetic.csv", index=False)
    (args.out / "results.md").write_text(results_markdown(retail, synthetic, args.smoke), encoding="utf-8")
    print(f"\ntables and results.md written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
