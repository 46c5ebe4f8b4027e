"""Where a training epoch's time goes: CPU and wall milliseconds per photo of each part, on real photos.

    python tools/profile_epoch.py [--catalogue clothing] [--photos 320] [--image-size 64] [--repeats 2]

Times, per photo, streaming decode + augmentation (one process, as a DataLoader worker does it), the streaming eval
geometry, building the pixel cache, batched augmentation and eval crops from the cache, forward + backward + AdamW
step, and a forward-only pass, each ``--repeats`` times in turn; prints a Markdown table and the load average
(docs/evaluation.md records it). CPU time (``time.process_time``) counts all threads of this process.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import TypeVar

import torch

from fashion_reco.columns import Columns
from fashion_reco.config import ModelConfig
from fashion_reco.data.dataset import PixelCache, make_loader
from fashion_reco.data.sources import open_catalogue
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.model.network import build_resnet18, embedding_trunk, logits_for_training
from fashion_reco.model.pixel_batches import CachedBatches

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalogue", default="clothing")
    parser.add_argument("--photos", type=int, default=320)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    items = open_catalogue(args.catalogue).items
    train = items[items[Columns.SPLIT] == "train"] if Columns.SPLIT in items.columns else items
    train = train[train[Columns.LABEL].notna()].sample(min(args.photos, len(train)), random_state=0)
    count = len(train)
    classes = sorted(items[Columns.LABEL].dropna().astype(str).unique())
    labels = train[Columns.LABEL].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    paths = train[Columns.IMAGE_PATH].tolist()
    spec = PreprocessSpec.from_model_config(ModelConfig(image_size=args.image_size))
    load_before = os.getloadavg()
    rows: dict[str, list[tuple[float, float]]] = {}

    def clock(name: str, work: Callable[[], T]) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        out = work()
        per = (1000 * (time.process_time() - cpu) / count, 1000 * (time.perf_counter() - wall) / count)
        rows.setdefault(name, []).append(per)
        return out

    def one_round() -> None:
        generator = torch.Generator().manual_seed(0)
        clock(
            "streaming: decode + resize + random resized crop + flip + jitter",
            lambda: list(
                make_loader(
                    paths,
                    spec,
                    labels=labels.tolist(),
                    train=True,
                    num_workers=0,
                    shuffle=True,
                    generator=generator,
                )
            ),
        )
        clock(
            "streaming: decode + resize + centre crop", lambda: list(make_loader(paths, spec, num_workers=0))
        )
        cache = clock(
            "pixel cache: build (once per run)", lambda: PixelCache.build(paths, spec, num_workers=0)
        )
        batches = clock(
            "pixel cache: batched random resized crop + flip + jitter",
            lambda: list(CachedBatches(cache, range(count), spec, labels=labels, train=True, shuffle=True)),
        )
        clock(
            "pixel cache: eval crops", lambda: list(CachedBatches(cache, range(count), spec, labels=labels))
        )
        net = build_resnet18(len(classes), head="cosine").to(memory_format=torch.channels_last)
        trunk = embedding_trunk(net)
        optimizer = torch.optim.AdamW(net.parameters(), 1e-3)

        def train_pass() -> None:
            net.train()
            for batch in batches:
                x = batch.images.contiguous(memory_format=torch.channels_last)
                targets = (
                    batch.labels if batch.labels is not None else torch.zeros(len(batch), dtype=torch.int64)
                )
                loss = torch.nn.functional.cross_entropy(logits_for_training(net, trunk(x), targets), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        def eval_pass() -> None:
            net.eval()
            with torch.inference_mode():
                for batch in batches:
                    net.fc(trunk(batch.images.contiguous(memory_format=torch.channels_last)))

        clock("forward + backward + AdamW step (channels-last)", train_pass)
        clock("forward only", eval_pass)

    for _ in range(args.repeats):
        one_round()
    load_after = os.getloadavg()
    print(
        f"{count} photos at {args.image_size} px, {torch.get_num_threads()} torch threads, load 1/5/15-min "
        f"{[round(v, 2) for v in load_before]} -> {[round(v, 2) for v in load_after]}"
    )
    print("| part (per photo) | CPU ms | wall ms |\n| --- | --- | --- |")
    for name, values in rows.items():
        cpu = " / ".join(f"{c:.2f}" for c, _ in values)
        wall = " / ".join(f"{w:.2f}" for _, w in values)
        print(f"| {name} | {cpu} | {wall} |")


if __name__ == "__main__":
    main()
