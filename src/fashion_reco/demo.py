"""The end-to-end demo behind ``fashion-reco demo``: every step a retailer would run, on the embedded defaults.

photos → train ResNet18 (weights=None, short CPU budget) → embed → synthetic customers and clickstream → time split →
fit the personalised ranker → evaluate against baselines → save → deploy into a Snowpark local testing session →
recommendations → HTML report. Uses only the public API.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict

from fashion_reco.columns import Columns
from fashion_reco.config import RecommenderConfig
from fashion_reco.data.sources import open_catalogue
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.facade import FashionRecommender
from fashion_reco.report.collect import collapse_warning

__all__ = ["DEMO_MODEL", "DemoResult", "demo_config", "run_demo"]

QUICK_ITEMS = 400  # photos a --quick demo keeps (smoke tests): the whole pipeline in well under a minute

# The demo's image model recipe (ModelConfig fields): see demo_config.
DEMO_MODEL: dict[str, object] = {"image_size": 64, "finetune_epochs": 8, "max_train_seconds": 150}


class DemoResult(BaseModel):
    """Where the demo wrote things and what it measured."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    out: Path
    report: Path
    model_dir: Path
    n_items: int
    n_customers: int
    n_events: int
    classifier: dict[str, float]
    classifier_split: str
    evaluation: pd.DataFrame
    deployment: str
    seconds: dict[str, float]
    collapse_warning: str | None = None

    def _retrieval_line(self) -> str:
        if "precision_at_10" not in self.classifier:
            return ""
        return (
            f"more like this on {self.classifier_split} photos: same-label precision@10 "
            f"{self.classifier['precision_at_10']:.3f} (chance {self.classifier['chance_precision_at_10']:.3f}), "
            f"Recall@1 {self.classifier['recall_at_1']:.3f}\n"
        )

    def summary(self) -> str:
        """A short human-readable summary: where the report is and the metrics table."""
        table = self.evaluation.round(4).to_string(index=False)
        timing = ", ".join(f"{step} {sec:.0f}s" for step, sec in self.seconds.items())
        return (
            f"catalogue: {self.n_items} photos; {self.n_customers} customers, {self.n_events} events\n"
            f"classifier on {self.classifier_split} photos: accuracy {self.classifier['accuracy']:.3f}, "
            f"macro-F1 {self.classifier['macro_f1']:.3f}\n"
            f"{self._retrieval_line()}"
            f"{self.collapse_warning + chr(10) if self.collapse_warning else ''}"
            f"deployment: {self.deployment}\n"
            f"evaluation (test window, k=12):\n{table}\n"
            f"time: {timing}\n"
            f"model: {self.model_dir}\nreport: {self.report}"
        )


def demo_config(quick: bool = False) -> RecommenderConfig:
    """Defaults sized for the demo: training within 3 minutes on 2 CPU cores (``quick``: well under a minute).

    From scratch (``weights=None``) at 64 px: small enough that a few epochs over the ~3,000 training photos fit the
    budget, and the photos shipped in the package (96 px) lose nothing to it. Measured figures: docs/evaluation.md.
    """
    if quick:
        return RecommenderConfig(
            model={
                "image_size": 64,
                "head_epochs": 1,
                "finetune_epochs": 1,
                "max_train_images": 300,
                "max_train_seconds": 60,
                "augment": False,
            },
        )
    return RecommenderConfig(model=DEMO_MODEL)


def run_demo(
    out: Path,
    *,
    catalogue: str = "auto",
    config: RecommenderConfig | None = None,
    quick: bool = False,
    n_customers: int | None = None,
    seed: int = 7,
) -> DemoResult:
    """Run the whole pipeline and write model, data, warehouse tables and report under ``out``."""
    cfg = config or demo_config(quick)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    items = open_catalogue(catalogue, data_root=cfg.data.root)
    if (
        quick and len(items) > QUICK_ITEMS
    ):  # smoke runs: a fixed, label-ordered share of the photos, every class kept
        frame = items.items.sort_values([Columns.LABEL, Columns.ITEM_ID], kind="stable")
        step = -(-len(frame) // QUICK_ITEMS)
        items = items.subset(frame[Columns.ITEM_ID].iloc[::step].tolist())
    reco = FashionRecommender(cfg)
    model = reco.train(items)
    lap("train")
    embeddings = reco.embed(items)
    lap("embed")
    customers = generate_customers(items, n=n_customers or (150 if quick else 600), seed=seed)
    clicks = generate_clickstream(items, customers, item_embeddings=embeddings, seed=seed)
    train, test = clicks.split_by_time(cfg.blend.test_days)
    clicks.frame.to_csv(out / "clickstream.csv", index=False)
    customers.frame.to_csv(out / "customers.csv", index=False)
    reco.fit(items, train, customers)
    lap("fit")
    evaluation = reco.evaluate(test, k=cfg.blend.k)
    lap("evaluate")
    model_dir = reco.save(out / "model")
    deployment = reco.deploy(work_dir=out / "warehouse")
    lap("deploy")
    report = reco.report(out / "report.html", evaluation=evaluation)
    lap("report")
    split = "test" if "test" in model.metrics else "validation"
    held_out = model.metrics[split]
    classifier = {"accuracy": held_out.accuracy, "macro_f1": held_out.macro_f1}
    if held_out.retrieval is not None:
        classifier |= {
            "precision_at_10": held_out.retrieval.precision_at_k,
            "chance_precision_at_10": held_out.retrieval.chance_precision,
            "recall_at_1": held_out.retrieval.recall_at_1,
        }
    return DemoResult(
        out=out,
        report=report,
        model_dir=model_dir,
        n_items=len(items),
        n_customers=len(customers),
        n_events=len(clicks),
        classifier=classifier,
        classifier_split=split,
        evaluation=evaluation,
        deployment=deployment.summary(),
        seconds=seconds,
        collapse_warning=collapse_warning(model),
    )
