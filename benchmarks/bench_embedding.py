"""Embedding throughput on the real photos: ``ImageModel.embed`` end to end vs the network alone vs a naive loop.

Rows, at 224 px (the torchvision reference size) and 128 px (the library's default):

* **end to end** — ``ImageModel.embed(paths)``: JPEG files → L2-normalised 512-d rows, decoding in DataLoader
  workers (the library's default worker count) while the main process runs the network;
* **model only** — the same network on tensors decoded beforehand (the ceiling ``embed`` can reach; target: end to
  end ≥ 0.9× of it);
* **naive loop** — what one writes without the library: per photo ``PIL.Image.open`` → transform → the network on
  a batch of one.

Also the fraction of the CPU's FP32 peak each row reaches (ResNet18: 1.82 GFLOP per image at 224 px, scaled by
``(size/224)²``), and, at 128 px, ``torch.compile`` (``ModelConfig.compile``) in a child process with a fresh
inductor cache, so that its first-compile time is a cold one. Weights are random (``weights=None``): the compute is
the same as for trained weights.

    .venv/bin/python benchmarks/bench_embedding.py [--quick] [--photos N] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
import numpy as np
import torch
from PIL import Image

from fashion_reco.config import ModelConfig
from fashion_reco.data.datasets import load_clothing, sample_catalogue
from fashion_reco.data.images import load_image
from fashion_reco.errors import CatalogueError
from fashion_reco.model.image_model import ImageModel
from fashion_reco.model.network import DEVICE_ENV, EmbeddingHead

SECTION = "embedding"
GFLOP_224 = 1.82  # ResNet18 forward, per image, at 224 × 224
BATCH = 64


def photos(n: int, *, sample: bool = False) -> tuple[list[str], list[str], str]:
    """``n`` real photos in a fixed order (sorted by item id), their catalogue's classes, and where they came from.

    The shared clothing photos, or the sample shipped in the package when ``sample`` (quick runs: no 3,781-file
    check) or when the shared data folder is absent.
    """
    try:
        if sample:
            raise CatalogueError("quick run: the shipped sample is enough")
        catalogue = load_clothing()
        where = "the real clothing photos (`load_clothing`)"
    except CatalogueError:
        catalogue = sample_catalogue()
        where = "the real photos of the sample shipped in the package (`sample_catalogue`)"
    pairs = sorted(zip(catalogue.item_ids, catalogue.image_paths, strict=True))
    paths = [str(p) for _, p in pairs[:n]]
    return paths, list(catalogue.classes), f"{len(paths)} of {where}"


def build_model(classes: list[str], size: int, *, compile: bool = False) -> ImageModel:
    torch.manual_seed(0)
    return ImageModel.untrained(classes, ModelConfig(image_size=size, weights=None, compile=compile))


def predecode(model: ImageModel, paths: list[str]) -> torch.Tensor:
    """Every photo decoded, resized and cropped exactly as ``embed`` does: uint8 pixels; the network's timed
    ``_forward`` normalises each batch as in ``embed`` (one torch thread here: tiny tensors)."""
    transform = model.preprocess.geometry_transform()
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.stack([transform(load_image(p)) for p in paths])
    finally:
        torch.set_num_threads(saved)


def model_only(model: ImageModel, tensors: torch.Tensor, batch: int = BATCH) -> np.ndarray:
    """The network alone over pre-decoded tensors, ``batch`` at a time, as ``ImageModel.embed`` runs it."""
    out = np.empty((tensors.shape[0], model.embedding_dim), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, tensors.shape[0], batch):
            emb, _ = model._forward(tensors[start : start + batch], batch)
            out[start : start + batch] = emb.numpy()
    return out


def naive_loop(model: ImageModel, paths: list[str]) -> np.ndarray:
    """Per photo: PIL open → transform → network on a batch of one (no workers, no batching)."""
    transform = model.preprocess.eval_transform()
    head = EmbeddingHead(model.net).eval()
    rows = []
    with torch.no_grad():
        for path in paths:
            image = Image.open(path).convert("RGB")
            emb, _ = head(transform(image).unsqueeze(0).to(model.device))
            rows.append(emb[0].cpu().numpy())
    return np.stack(rows)


def gflop(size: int) -> float:
    return GFLOP_224 * (size / 224) ** 2


def measure_size(
    size: int,
    classes: list[str],
    paths: list[str],
    naive_paths: list[str],
    repeats: int,
    *,
    warmup: bool = True,
) -> dict[str, Any]:
    model = build_model(classes, size)
    tensors = predecode(model, paths)
    results: dict[str, np.ndarray] = {}

    def run(name: str, fn: Any) -> Any:
        def call() -> None:
            results[name] = fn()

        return call

    methods = {
        "end to end": run("e2e", lambda: model.embed(paths, batch_size=BATCH)),
        "model only": run("model", lambda: model_only(model, tensors)),
        "naive loop": run("naive", lambda: naive_loop(model, naive_paths)),
    }
    # Warm-up on one batch each (allocator, oneDNN primitives, worker start-up code paths), then the timed rounds.
    if warmup:
        model.embed(paths[:BATCH], batch_size=BATCH)
        model_only(model, tensors[:BATCH])
        naive_loop(model, naive_paths[:4])
    bl.log(f"{size} px: {repeats} rounds of {len(paths)} photos (naive loop: {len(naive_paths)})")
    times = bl.interleaved(methods, repeats, warmup=0)
    n_photos = {"end to end": len(paths), "model only": len(paths), "naive loop": len(naive_paths)}
    agree = {
        "model only": float(np.abs(results["e2e"] - results["model"]).max()),
        "naive loop": float(np.abs(results["e2e"][: len(naive_paths)] - results["naive"]).max()),
    }
    return {"size": size, "times": times, "n": n_photos, "agree": agree}


def compile_child(tensor_file: str, classes: list[str], size: int, repeats: int) -> dict[str, Any]:
    """(In a child process) first-compile time, then eager vs compiled model-only rounds."""
    tensors = torch.load(tensor_file, weights_only=True)
    eager = build_model(classes, size)
    compiled = build_model(classes, size, compile=True)
    start = time.perf_counter()
    model_only(compiled, tensors[:BATCH])
    first = time.perf_counter() - start
    model_only(eager, tensors[:BATCH])
    times = bl.interleaved(
        {"eager": lambda: model_only(eager, tensors), "compiled": lambda: model_only(compiled, tensors)},
        repeats,
        warmup=0,
    )
    diff = float(np.abs(model_only(eager, tensors) - model_only(compiled, tensors)).max())
    return {"first_call_s": first, "times": times, "n": int(tensors.shape[0]), "max_abs_diff": diff}


def measure_compile(
    classes: list[str], paths: list[str], size: int, repeats: int, timeout: float
) -> dict[str, Any]:
    model = build_model(classes, size)
    tensors = predecode(model, paths)
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        tensor_file = os.path.join(tmp, "tensors.pt")
        torch.save(tensors, tensor_file)
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": os.path.join(tmp, "inductor"), "TQDM_DISABLE": "1"}
        args = json.dumps({"tensors": tensor_file, "classes": classes, "size": size, "repeats": repeats})
        bl.log(
            f"torch.compile at {size} px in a child process (cold inductor cache, timeout {timeout:.0f} s)"
        )
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--compile-child", args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within {timeout:.0f} s (compile plus {repeats} rounds)"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"child failed: {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def policy_child(spec: dict[str, Any]) -> dict[str, Any]:
    """(In a child process started with some ``OMP_WAIT_POLICY``) one warm-up batch, then end to end and model only."""
    paths = spec["paths"]
    model = build_model(spec["classes"], spec["size"])
    tensors = predecode(model, paths)
    model.embed(paths[:BATCH], batch_size=BATCH)
    model_only(model, tensors[:BATCH])
    times = {}
    for name, fn in (
        ("end to end", lambda: model.embed(paths, batch_size=BATCH)),
        ("model only", lambda: model_only(model, tensors)),
    ):
        start = time.perf_counter()
        fn()
        times[name] = time.perf_counter() - start
    return times


POLICIES = {"libgomp default (unset)": None, "OMP_WAIT_POLICY=PASSIVE": "PASSIVE"}


def measure_wait_policy(classes: list[str], paths: list[str], size: int, repeats: int) -> dict[str, Any]:
    """Rounds of one child process per OpenMP wait policy (alternating order); times per policy and method."""
    times: dict[str, dict[str, list[float]]] = {p: {"end to end": [], "model only": []} for p in POLICIES}
    spec = json.dumps({"paths": paths, "classes": classes, "size": size})
    names = list(POLICIES)
    for r in range(repeats):
        for policy in names if r % 2 == 0 else names[::-1]:
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if POLICIES[policy]:
                env["OMP_WAIT_POLICY"] = POLICIES[policy]
            bl.log(f"wait policy round {r + 1}: {policy}")
            proc = subprocess.run(
                [sys.executable, __file__, "--policy-child", spec], capture_output=True, text=True, env=env
            )
            if proc.returncode != 0:
                raise RuntimeError(f"policy child failed: {proc.stderr.strip().splitlines()[-1:]}")
            for method, seconds in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                times[policy][method].append(seconds)
    return times


def render_wait_policy(m: dict[str, Any], where: str, size: int, n: int, times: dict[str, Any]) -> str:
    default = next(iter(POLICIES))
    rows = []
    for policy in POLICIES:
        t = times[policy]
        rows.append(
            [
                policy,
                *(
                    f"{bl.fmt(bl.rate(n, t[k])[0])} ({bl.fmt(bl.rate(n, t[k])[1])})"
                    for k in ("end to end", "model only")
                ),
                f"{bl.ratio(t['end to end'], t['model only']):.2f}×",
                *(f"{bl.ratio(t[k], times[default][k]):.2f}×" for k in ("end to end", "model only")),
            ]
        )
    return "\n".join(
        [
            "### OpenMP wait policy (`bench_embedding.py --wait-policy`)",
            "",
            f"An opt-in diagnostic: {where} at {size} px, each round one fresh child process per policy (libgomp "
            "reads `OMP_WAIT_POLICY` when torch loads it, so it cannot change inside a process), alternating order, "
            f"a one-batch warm-up in each child, median of {len(times[default]['end to end'])} round(s) (best in "
            "brackets). Idle OpenMP threads spin before they sleep by default; on a shared or oversubscribed "
            "machine (and beside a decoding worker on two cores) the spinning takes CPU from the threads with work.",
            "",
            bl.table(
                [
                    "policy",
                    "end to end img/s",
                    "model only img/s",
                    "end to end vs model only",
                    "end to end vs default",
                    "model only vs default",
                ],
                rows,
            ),
            "",
            "Per round, img/s (rounds in the order run): "
            + "; ".join(
                f"{policy}, {k}: " + ", ".join(bl.fmt(n / t) for t in times[policy][k])
                for policy in POLICIES
                for k in ("end to end", "model only")
            )
            + ".",
            "",
            bl.machine_lines(m),
        ]
    )


def render(
    m: dict[str, Any],
    where: str,
    per_size: list[dict[str, Any]],
    compiled: dict[str, Any] | None,
    repeats: int,
    workers: int,
    quick: bool,
    device: str,
) -> str:
    peak, assumption = bl.fp32_peak(m)
    on_cpu = device == "cpu"
    if not on_cpu:
        peak, assumption = None, "the peak column is the CPU's and is left empty on a GPU"
    flag = "" if on_cpu else f" --device {device}"
    lines = [
        f"## Image embedding (`ImageModel.embed`) on {'the CPU' if on_cpu else device}",
        "",
        f"`.venv/bin/python benchmarks/bench_embedding.py{flag}{' --quick' if quick else ''}` — {where}; ResNet18 with "
        f"random weights (same compute as trained), batch {BATCH}, {workers} DataLoader decoding worker(s) (the "
        f"library's default here), median of {repeats} interleaved round(s){'' if quick else ' after a one-batch warm-up'} "
        "(best in brackets). img/s counts photos through to normalised 512-d rows.",
        "",
    ]
    headers = [
        "size",
        "method",
        "photos",
        "img/s median (best)",
        "vs model only",
        "vs naive loop",
        "GFLOP/s",
        "% of FP32 peak",
        "max |Δ| vs end to end",
    ]
    rows = []
    for res in per_size:
        t, n = res["times"], res["n"]
        for name in ("end to end", "model only", "naive loop"):
            med, best = bl.rate(n[name], t[name])
            per_image = [s / n[name] for s in t[name]]
            vs_model = bl.ratio(per_image, [s / n["model only"] for s in t["model only"]])
            vs_naive = bl.ratio(per_image, [s / n["naive loop"] for s in t["naive loop"]])
            gf = med * gflop(res["size"])
            rows.append(
                [
                    f"{res['size']} px",
                    name,
                    n[name],
                    f"{bl.fmt(med)} ({bl.fmt(best)})",
                    f"{vs_model:.2f}×",
                    f"{vs_naive:.2f}×",
                    bl.fmt(gf),
                    "–" if peak is None else f"{100 * gf / peak:.0f} %",
                    "–" if name == "end to end" else f"{res['agree'][name]:.1e}",
                ]
            )
    lines.append(bl.table(headers, rows))
    lines.append("")
    if compiled is not None:
        if "error" in compiled:
            lines.append(f"`torch.compile` at 128 px: not measured — {compiled['error']}.")
        else:
            t, n = compiled["times"], compiled["n"]
            e_med, e_best = bl.rate(n, t["eager"])
            c_med, c_best = bl.rate(n, t["compiled"])
            lines += [
                f"`torch.compile` (`ModelConfig(compile=True)`), model only at 128 px, {n} pre-decoded photos, in a "
                "child process with a fresh inductor cache:",
                "",
                bl.table(
                    ["variant", "img/s median (best)", "vs eager", "first call (compile + 1 batch)"],
                    [
                        ["eager", f"{bl.fmt(e_med)} ({bl.fmt(e_best)})", "1.00×", "–"],
                        [
                            "compiled",
                            f"{bl.fmt(c_med)} ({bl.fmt(c_best)})",
                            f"{bl.ratio(t['compiled'], t['eager']):.2f}×",
                            f"{compiled['first_call_s']:.1f} s (cold cache)",
                        ],
                    ],
                ),
                "",
                f"Compiled vs eager embeddings: max |Δ| {compiled['max_abs_diff']:.1e}.",
            ]
        lines.append("")
    lines += [
        f"FLOP model: {GFLOP_224} GFLOP per image at 224 px, × (size/224)² "
        f"({gflop(128):.2f} GFLOP at 128 px); {assumption}.",
        "",
        *(
            [
                "GPU: not measured in this task (no GPU was lent to it). `ImageModel` runs on CUDA when available "
                "(`$FASHION_RECO_DEVICE` overrides); on a GPU machine run "
                "`.venv/bin/python benchmarks/bench_embedding.py --device cuda`, which writes its own section "
                "(`bench:embedding-cuda`) beside this one.",
                "",
            ]
            if on_cpu
            else []
        ),
        bl.machine_lines(m),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = bl.parser(__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=None, help="photos per timed round (default 512; quick 4)")
    p.add_argument(
        "--naive-photos", type=int, default=None, help="photos for the naive loop (default 16; quick 2)"
    )
    p.add_argument(
        "--sizes", default=None, help="input sizes in px, comma separated (default 224,128; quick 64)"
    )
    p.add_argument(
        "--no-compile", action="store_true", help="skip the torch.compile row (always skipped in quick)"
    )
    p.add_argument(
        "--compile-timeout", type=float, default=240.0, help="seconds allowed for the compile child"
    )
    p.add_argument(
        "--wait-policy",
        action="store_true",
        help="instead: compare OMP_WAIT_POLICY unset vs PASSIVE at 128 px in child processes (own docs section)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="where ImageModel runs (sets $FASHION_RECO_DEVICE; default cpu); not cpu: section embedding-<device>",
    )
    p.add_argument("--compile-child", help=argparse.SUPPRESS)  # internal: the compile measurement's child
    p.add_argument("--policy-child", help=argparse.SUPPRESS)  # internal: the wait-policy measurement's child
    args = p.parse_args(argv)
    if args.policy_child:
        result = policy_child(json.loads(args.policy_child))
        print(json.dumps(result))
        return result
    if args.compile_child:
        spec = json.loads(args.compile_child)
        result = compile_child(spec["tensors"], spec["classes"], spec["size"], spec["repeats"])
        print(json.dumps(result))
        return result
    if args.repeats is None and not args.quick:
        args.repeats = 3  # each round embeds every photo three ways at two sizes: minutes on two shared cores
    args = bl.finish_args(args)
    saved = os.environ.get(DEVICE_ENV)
    os.environ[DEVICE_ENV] = args.device  # read by ImageModel; inherited by the child processes
    try:
        return run(args)
    finally:
        if saved is None:
            os.environ.pop(DEVICE_ENV, None)
        else:
            os.environ[DEVICE_ENV] = saved


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.photos or (4 if args.quick else 512)
    n_naive = min(n, args.naive_photos or (2 if args.quick else 16))
    sizes = [int(s) for s in (args.sizes or ("64" if args.quick else "224,128")).split(",") if s.strip()]
    m = bl.machine()
    paths, classes, where = photos(n, sample=args.quick)
    naive_paths = paths[:n_naive]
    if args.wait_policy:
        size = sizes[-1] if args.sizes else (64 if args.quick else 128)
        policy_times = measure_wait_policy(classes, paths, size, args.repeats)
        body = render_wait_policy(m, where, size, len(paths), policy_times)
        bl.write_section(args.docs, SECTION + "-omp", body)
        print(body)
        return {"wait_policy": policy_times, "docs": str(args.docs)}
    per_size = [
        measure_size(size, classes, paths, naive_paths, args.repeats, warmup=not args.quick) for size in sizes
    ]
    compiled = None
    if not args.quick and not args.no_compile and 128 in sizes:
        compiled = measure_compile(classes, paths, 128, args.repeats, args.compile_timeout)
    from fashion_reco.data.dataset import default_num_workers

    workers = min(default_num_workers(), -(-len(paths) // BATCH))
    device = torch.device(args.device).type
    body = render(m, where, per_size, compiled, args.repeats, workers, args.quick, device)
    bl.write_section(args.docs, SECTION if device == "cpu" else f"{SECTION}-{device}", body)
    print(body)
    return {"per_size": per_size, "compile": compiled, "docs": str(args.docs)}


if __name__ == "__main__":
    main()
