"""Crash safety of the whole-bundle commit: SIGKILL a process saving a FashionRecommender at random moments, again
and again; every time the folder still loads and verifies, and holds one complete version."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fashion_reco import FashionRecommender
from fashion_reco.bundle import verify_bundle

# The launcher fits a tiny recommender once, saves it, then forks one writer per request. Each writer saves
# versions whose embeddings are tagged with a new number in a loop until it is killed, so every kill lands
# somewhere inside a save: payloads, components, the manifest switch or the clean-up after it.
LAUNCHER = textwrap.dedent(
    """
    import os, sys, time
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np, torch
    torch.set_num_threads(1)
    from fashion_reco import FashionRecommender, RecommenderConfig
    from fashion_reco.config import ModelConfig
    from fashion_reco.data.datasets import sample_catalogue
    from fashion_reco.data.synthetic import generate_clickstream, generate_customers
    from fashion_reco.model.image_model import ImageModel

    target = sys.argv[1]
    full = sample_catalogue()
    catalogue = full.subset(full.to_frame().groupby("label").head(2)["item_id"])
    torch.manual_seed(0)
    model = ImageModel.untrained(catalogue.classes, ModelConfig(image_size=32))
    embeddings = np.random.default_rng(0).normal(size=(len(catalogue), 8)).astype(np.float32)
    customers = generate_customers(catalogue, n=10, seed=1)
    clicks = generate_clickstream(catalogue, customers, item_embeddings=embeddings, seed=1)
    reco = FashionRecommender(RecommenderConfig(data={"num_workers": 0}), image_model=model)
    reco.fit(catalogue, clicks, customers, item_embeddings=embeddings, progress=False)
    started = time.perf_counter()
    reco.item_embeddings[:, 0] = 0.0
    assert reco is not None
    reco.save(target)
    print("ready", time.perf_counter() - started, flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "fork":
            pid = os.fork()
            if pid == 0:
                step = int(arg) * 1000
                while True:
                    step += 1
                    reco.item_embeddings[:, 0] = float(step)
                    model.net.fc.weight.data.fill_(float(step))
                    reco.save(target)
            print(pid, flush=True)
        elif command == "reap":
            os.waitpid(int(arg), 0)
            print("reaped", flush=True)
        elif command == "quit":
            break
    """
)


@pytest.mark.slow  # a subprocess imports torch and fits once (~15 s), then 8 kill rounds of a 0.8 s save
def test_sigkill_during_bundle_saves_never_breaks_the_bundle(tmp_path: Path, kill_during_saves_fn) -> None:
    target = tmp_path / "bundle"
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    launcher = subprocess.Popen(
        [sys.executable, str(script), str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    versions: set[float] = set()
    mid_save = 0
    reco: FashionRecommender | None = None

    def check() -> None:
        nonlocal mid_save, reco
        manifest = verify_bundle(target)  # every checksum, components included
        referenced = {e["file"] for e in manifest["files"].values()} | {"fashion_reco.json"}
        mid_save += any(p.name not in referenced for p in target.iterdir())
        reco = FashionRecommender.load(target)
        tag = float(reco.item_embeddings[0, 0])  # type: ignore[index]
        assert np.all(reco.item_embeddings[:, 0] == tag)  # type: ignore[index]
        assert float(reco.image_model.net.fc.weight[0, 0].detach()) == tag or tag == 0.0  # type: ignore[union-attr]
        versions.add(tag)

    kill_during_saves_fn(launcher, 8, 20261130, check)
    assert mid_save >= 2, "kills should land in the middle of saves, not only between them"
    assert len(versions) >= 3, "the writers made progress between kills"
    # the next clean save removes what the killed writers left behind
    reco.save(target)
    manifest = verify_bundle(target)
    assert {p.name for p in target.iterdir()} == {e["file"] for e in manifest["files"].values()} | {
        "fashion_reco.json"
    }
