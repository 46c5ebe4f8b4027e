"""Rows/s of the Snowflake embedding UDF handler on pandas batches vs local ``embed_bytes`` and ``embed`` on files.

Real photo bytes, 128 px (the library's default), one saved untrained model (random weights: same compute):

* **UDF handler** — ``embed_handler(model_dir)`` called on pandas Series of 1, 16 and 64 encoded photos (what a
  vectorised UDF receives per batch; the model is loaded once per process and cached, the load is timed apart);
* **embed_bytes** — ``ImageModel.embed_bytes(all bytes)`` in batches of 64 (decoding in this process);
* **embed (files)** — ``ImageModel.embed(paths)``, decoding in DataLoader workers;
* **network alone, batch 1 / 16 / 64** — the same network on photos decoded beforehand, in batches of the handler's
  sizes: what the batch size costs the network itself, so that the rest of a handler row's gap is the handler's;
* **ONNX handler, batch 16 / 64** — the warehouse's default, torch-free runtime (``onnx_embed_handler`` over the
  ``export_onnx`` file: onnxruntime + numpy + Pillow) on the same pandas batches.

A second table times the per-photo geometry (resize the shorter side, centre crop) three ways: torchvision's
``geometry_transform`` (the reference the model was trained with), ``pixels.geometry`` (numpy replica used by the
ONNX runtime, bit-identical) and Pillow's ``Image.resize`` + crop (the naive torch-free choice, off by a grey level).

    .venv/bin/python benchmarks/bench_udf.py [--quick] [--photos N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
import numpy as np
import pandas as pd
from bench_embedding import build_model, model_only, photos, predecode

from fashion_reco.data.images import load_image
from fashion_reco.model.image_model import ImageModel
from fashion_reco.model.onnx_export import export_onnx
from fashion_reco.snowflake.onnx_udf import onnx_embed_handler
from fashion_reco.snowflake.pixels import center_crop, geometry, resized_size
from fashion_reco.snowflake.udf import embed_handler

SECTION = "udf"
SIZE = 128
BATCHES = (1, 16, 64)


def handler_rows(handler: Any, blobs: list[bytes], batch: int) -> np.ndarray:
    out = []
    for start in range(0, len(blobs), batch):
        chunk = pd.Series(blobs[start : start + batch], dtype=object)
        out.extend(handler(chunk).tolist())
    return np.asarray(out, dtype=np.float32)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = bl.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--photos",
        type=int,
        default=None,
        help="photos per round (default 128, a quarter of them for batch 1; quick 4)",
    )
    args = p.parse_args(argv)
    if args.repeats is None and not args.quick:
        args.repeats = 3
    args = bl.finish_args(args)
    n = args.photos or (4 if args.quick else 128)
    size = 64 if args.quick else SIZE
    m = bl.machine()
    paths, classes, where = photos(n, sample=args.quick)
    blobs = [Path(p).read_bytes() for p in paths]
    with tempfile.TemporaryDirectory(prefix="bench-udf-") as tmp:
        model_dir = build_model(classes, size).save(Path(tmp) / "model")
        handler = embed_handler(model_dir)
        start = time.perf_counter()
        handler(pd.Series(blobs[:1], dtype=object))  # loads the model into the per-process cache
        cold_s = time.perf_counter() - start
        local = ImageModel.load(model_dir)
        results: dict[str, np.ndarray] = {}

        def keep(name: str, fn: Any) -> Any:
            def call() -> None:
                results[name] = fn()

            return call

        # Batch 1 runs on a quarter of the photos: one network call per row is slow, and rows/s is per row anyway.
        counts = {f"UDF handler, batch {b}": n if b > 1 else max(1, n // 4) for b in BATCHES}
        methods = {
            name: keep(f"h{b}", lambda b=b, k=counts[name]: handler_rows(handler, blobs[:k], b))
            for b, name in zip(BATCHES, counts, strict=True)
        }
        tensors = predecode(local, paths)
        for b in BATCHES:
            name = f"network alone, batch {b}"
            counts[name] = n if b > 1 else max(1, n // 4)
            methods[name] = keep(f"n{b}", lambda b=b, k=counts[name]: model_only(local, tensors[:k], b))
        onnx = onnx_embed_handler(export_onnx(local, Path(tmp) / "model.onnx"))
        onnx(pd.Series(blobs[:1], dtype=object))  # loads the ONNX session into the per-process cache
        for b in BATCHES[1:]:
            name = f"ONNX handler, batch {b}"
            counts[name] = n
            methods[name] = keep(f"o{b}", lambda b=b: handler_rows(onnx, blobs, b))
        methods["embed_bytes (batch 64)"] = keep("bytes", lambda: local.embed_bytes(blobs))
        methods["embed (files, workers)"] = keep("files", lambda: local.embed(paths))
        counts.update({name: n for name in methods if name not in counts})
        if not args.quick:  # warm-up: one small batch each
            handler_rows(handler, blobs[:16], 16)
            local.embed_bytes(blobs[:16])
            local.embed(paths[:16])
        bl.log(f"UDF: {args.repeats} rounds of {n} photos at {size} px, {len(methods)} methods")
        times = bl.interleaved(methods, args.repeats, warmup=0)
    reference = results["bytes"]
    agree = {name: float(np.abs(arr - reference[: len(arr)]).max()) for name, arr in results.items()}
    geometry_rows = geometry_table(paths, local, args.repeats)
    body = render(m, where, counts, size, str(local.device), times, agree, cold_s, args, geometry_rows)
    bl.write_section(args.docs, SECTION, body)
    print(body)
    return {"times": times, "agree": agree, "cold_s": cold_s, "docs": str(args.docs)}


def geometry_table(paths: list[Any], model: ImageModel, repeats: int) -> list[list[Any]]:
    """µs per photo and max pixel difference vs torchvision for the three geometry implementations."""
    from PIL import Image

    spec = model.preprocess
    side, crop = spec.resize_size, spec.image_size
    images = [load_image(p, target_side=side) for p in paths]
    arrays = [np.asarray(img) for img in images]
    transform = spec.geometry_transform()

    def pillow(img: Any) -> np.ndarray:
        h, w = resized_size(img.height, img.width, side)
        return center_crop(np.asarray(img.resize((w, h), Image.Resampling.BILINEAR)), crop).transpose(2, 0, 1)

    ways = {
        "torchvision geometry_transform (reference)": lambda: [transform(i).numpy() for i in images],
        "pixels.geometry (numpy, ONNX runtime)": lambda: [geometry(a, side, crop) for a in arrays],
        "Pillow resize + crop (naive)": lambda: [pillow(i) for i in images],
    }
    outputs = {name: fn() for name, fn in ways.items()}
    times = bl.interleaved(ways, repeats, warmup=1)
    reference = outputs["torchvision geometry_transform (reference)"]
    rows = []
    for name, ts in times.items():
        diff = max(
            int(np.abs(a.astype(int) - b.astype(int)).max())
            for a, b in zip(outputs[name], reference, strict=True)
        )
        same = sum(bool(np.array_equal(a, b)) for a, b in zip(outputs[name], reference, strict=True))
        med = float(np.median(ts)) / len(images) * 1e6
        ref = float(np.median(times["torchvision geometry_transform (reference)"])) / len(images) * 1e6
        rows.append([name, f"{med:.0f}", f"{med / ref:.2f}×", diff, f"{same}/{len(images)}"])
    return rows


def render(
    m: dict[str, Any],
    where: str,
    counts: dict[str, int],
    size: int,
    device: str,
    times: dict[str, list[float]],
    agree: dict[str, float],
    cold_s: float,
    args: Any,
    geometry_rows: list[list[Any]],
) -> str:
    keys = {
        **{f"UDF handler, batch {b}": f"h{b}" for b in BATCHES},
        **{f"network alone, batch {b}": f"n{b}" for b in BATCHES},
        **{f"ONNX handler, batch {b}": f"o{b}" for b in BATCHES[1:]},
        "embed_bytes (batch 64)": "bytes",
        "embed (files, workers)": "files",
    }
    per_row = {name: [t / counts[name] for t in ts] for name, ts in times.items()}
    rows = []
    for name, ts in times.items():
        med, best = bl.rate(counts[name], ts)
        rows.append(
            [
                name,
                counts[name],
                f"{bl.fmt(med)} ({bl.fmt(best)})",
                f"{bl.ratio(per_row[name], per_row['embed_bytes (batch 64)']):.2f}×",
                f"{bl.ratio(per_row[name], per_row['embed (files, workers)']):.2f}×",
                f"{agree[keys[name]]:.1e}",
            ]
        )
    lines = [
        "## Snowflake embedding UDF handler (`embed_handler`)",
        "",
        f"`.venv/bin/python benchmarks/bench_udf.py{' --quick' if args.quick else ''}` — {where} as encoded bytes, "
        f"{size} px, on {device}, median of {args.repeats} interleaved round(s)"
        f"{'' if args.quick else ' after a small warm-up'} "
        "(best in brackets). The handler's first call, which loads and verifies the model from its directory, took "
        f"{cold_s:.2f} s (not counted).",
        "",
        bl.table(
            [
                "method",
                "photos",
                "rows/s median (best)",
                "vs embed_bytes",
                "vs embed (files)",
                "max |Δ| vs embed_bytes",
            ],
            rows,
        ),
        "",
        "- The handler is `embed_bytes` plus a pandas round trip (bytes in, lists of 512 floats out) and a cache "
        "lookup per batch; batch 1 also runs the network on one image at a time.",
        "- `embed_bytes` decodes and transforms each photo in the calling process, on one torch thread "
        "(`single_threaded_torch`); `embed` on files decodes in DataLoader workers (single-threaded too) while the "
        "main process runs the network.",
        "- The ONNX handler is what the warehouse runs by default (no torch there): its max |Δ| column is its "
        "difference to the torch embeddings.",
        "",
        "Per-photo geometry (resize shorter side, centre crop) on the same photos:",
        "",
        bl.table(
            [
                "implementation",
                "µs / photo (median)",
                "vs torchvision",
                "max |Δ| grey levels",
                "identical photos",
            ],
            geometry_rows,
        ),
        "",
        bl.machine_lines(m),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
