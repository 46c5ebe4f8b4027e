"""Crash safety of the ImageModel artefact: SIGKILL a writer at random moments, and every time the directory still
loads and verifies. Plus the two classic corruptions: a truncated weights file and tampered metadata."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fashion_reco.errors import ArtefactError

# A long-lived launcher imports torch once, saves a first model, then forks one writer per request. Each writer
# saves a slightly different model (new fc bias, so new content-addressed weights) to the same directory in a loop
# until it is killed. Forking from a single-threaded launcher keeps each kill round at milliseconds, not an import.
LAUNCHER = textwrap.dedent(
    """
    import os, sys
    import torch
    torch.set_num_threads(1)
    from fashion_reco.config import ModelConfig
    from fashion_reco.model.image_model import ImageModel

    target = sys.argv[1]
    torch.manual_seed(0)
    model = ImageModel.untrained(["a", "b", "c"], ModelConfig(image_size=32))
    import time
    started = time.perf_counter()
    model.save(target)
    print("ready", time.perf_counter() - started, flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "fork":
            pid = os.fork()
            if pid == 0:
                step = int(arg) * 1000
                while True:
                    step += 1
                    model.net.fc.weight.data.fill_(float(step))
                    model.save(target)
                    os.write(1, b"")  # keep the child free of buffered stdout state
            print(pid, flush=True)
        elif command == "reap":
            os.waitpid(int(arg), 0)
            print("reaped", flush=True)
        elif command == "quit":
            break
    """
)


def _leftovers(directory: Path) -> tuple[int, int]:
    meta = json.loads((directory / "metadata.json").read_text())
    unreferenced = [p for p in directory.glob("weights-*.safetensors") if p.name != meta["weights_file"]]
    temps = list(directory.glob(".*.tmp"))
    return len(unreferenced), len(temps)


def test_sigkill_during_saves_never_breaks_the_artefact(tmp_path: Path, kill_during_saves_fn) -> None:
    from fashion_reco.model.image_model import ImageModel

    target = tmp_path / "model"
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    launcher = subprocess.Popen(
        [sys.executable, str(script), str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    interrupted = 0
    biases: set[float] = set()
    model: ImageModel | None = None

    def check() -> None:
        nonlocal interrupted, model
        unreferenced, temps = _leftovers(target)
        interrupted += bool(unreferenced or temps)
        model = ImageModel.load(target)  # verifies structure, sha256 and shapes
        assert model.classes == ["a", "b", "c"]
        biases.add(model.net.fc.weight[0, 0].item())

    kill_during_saves_fn(launcher, 15, 20240611, check)
    assert interrupted >= 3, "kills should land in the middle of saves, not only between them"
    assert len(biases) >= 4, "the writers made progress between kills"
    # the next clean save removes what the killed writers left behind
    assert model is not None
    model.save(target)
    assert _leftovers(target) == (0, 0)
    assert len(list(target.glob("weights-*.safetensors"))) == 1


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    from fashion_reco.config import ModelConfig
    from fashion_reco.model.image_model import ImageModel

    ImageModel.untrained(["a", "b"], ModelConfig(image_size=32)).save(tmp_path / "model")
    return tmp_path / "model"


def test_truncated_weights_file(saved: Path) -> None:
    from fashion_reco.model.image_model import ImageModel

    weights = next(saved.glob("weights-*.safetensors"))
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    with pytest.raises(ArtefactError) as info:
        ImageModel.load(saved)
    assert info.value.file == weights and str(weights) in str(info.value)
    assert "checksum mismatch" in info.value.reason


def test_tampered_metadata(saved: Path) -> None:
    from fashion_reco.model.image_model import ImageModel

    meta_path = saved / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "weights_sha256": "0" * 64}))
    with pytest.raises(ArtefactError) as info:
        ImageModel.load(saved)
    assert "weights-<sha12>" in info.value.reason and info.value.file == meta_path
    meta_path.write_text(json.dumps(meta)[:-40])
    with pytest.raises(ArtefactError) as info:
        ImageModel.load(saved)
    assert info.value.file == meta_path and str(meta_path) in str(info.value) and "JSON" in info.value.reason
