"""Train the image model on a labelled photo catalogue and print the held-out figures docs/evaluation.md records.

    python tools/train_eval.py [--catalogue clothing|sample|DIR] [--set image_size=96 --set finetune_epochs=8 ...]
        [--save DIR] [--json out.json]

Trains with the default ``ModelConfig`` (``weights=None``) plus the ``--set`` overrides (values parsed as JSON when
they parse), then prints wall time, the machine load before and after, test accuracy / macro-F1 and same-label
precision@10 / Recall@1 of the test photos against every photo of the run, the validation figures, and the collapse
guard's mean pairwise cosine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from fashion_reco.config import DataConfig, ModelConfig
from fashion_reco.data.sources import open_catalogue
from fashion_reco.model.image_model import ImageModel


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalogue", default="clothing", help="'clothing', 'sample', 'auto' or a folder")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="ModelConfig override"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers (default: DataConfig's)"
    )
    parser.add_argument("--save", type=Path, default=None, help="save the trained model here")
    parser.add_argument("--json", type=Path, default=None, help="append the figures as one JSON line here")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    config = ModelConfig(**{k: _value(v) for k, v in overrides.items()})
    data_config = DataConfig() if args.workers is None else DataConfig(num_workers=args.workers)
    items = open_catalogue(args.catalogue)
    load_before = os.getloadavg()
    started = time.perf_counter()
    model = ImageModel.train(items, config, data_config=data_config, progress=False)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    row: dict[str, Any] = {
        "catalogue": args.catalogue,
        "overrides": overrides,
        "wall_s": round(wall, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "epochs": len(model.history),
        "stopped": model.training["stopped_reason"],
        "mean_cosine": model.training.get("embedding_mean_cosine"),
        "collapsed": model.training.get("collapsed"),
    }
    for split, metrics in model.metrics.items():
        row[f"{split}_accuracy"] = round(metrics.accuracy, 4)
        row[f"{split}_macro_f1"] = round(metrics.macro_f1, 4)
        if metrics.retrieval is not None:
            row[f"{split}_precision_at_10"] = round(metrics.retrieval.precision_at_k, 4)
            row[f"{split}_recall_at_1"] = round(metrics.retrieval.recall_at_1, 4)
            row[f"{split}_chance_p10"] = round(metrics.retrieval.chance_precision, 4)
    row["history"] = [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in h.items() if k != "lr"}
        for h in model.history
    ]
    print(json.dumps(row, indent=1))
    if args.json is not None:
        with args.json.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
    if args.save is not None:
        model.save(args.save)


if __name__ == "__main__":
    main()
