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

from fashion_reco.config import RecommenderConfig
from fashion_reco.data.sources import open_catalogue
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.facade import FashionRecommender

__all__ = ["DemoResult", "demo_config", "run_demo"]


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

    def summary(self) -> str:
        """A short human-readable summary: where the report is and the metrics table."""
        table = self.evaluation.round(4).to_string(index=False)
        timing = ", ".join(f"{step} {sec:.0f}s" for step, sec in self.seconds.items())
        return (
            f"catalogue: {self.n_items} photos; {self.n_customers} customers, {self.n_events} events\n"
            f"classifier on {self.classifier_split} photos: accuracy {self.classifier['accuracy']:.3f}, "
            f"macro-F1 {self.classifier['macro_f1']:.3f}\n"
            f"deployment: {self.deployment}\n"
            f"evaluation (test window, k=12):\n{table}\n"
            f"time: {timing}\n"
            f"model: {self.model_dir}\nreport: {self.report}"
        )


def demo_config(quick: bool = False) -> RecommenderConfig:
    """Defaults sized for the demo: a few minutes on 2 CPU cores (``quick``: well under a minute, for smoke tests)."""
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
    return RecommenderConfig(
        model={"image_size": 96, "head_epochs": 1, "finetune_epochs": 3, "max_train_seconds": 240}
    )


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
    return DemoResult(
        out=out,
        report=report,
        model_dir=model_dir,
        n_items=len(items),
        n_customers=len(customers),
        n_events=len(clicks),
        classifier={"accuracy": held_out.accuracy, "macro_f1": held_out.macro_f1},
        classifier_split=split,
        evaluation=evaluation,
        deployment=deployment.summary(),
        seconds=seconds,
    )
