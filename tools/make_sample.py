"""Build the low-resolution photo sample shipped in ``src/fashion_reco/data/sample/`` from the shared clothing photos.

    python tools/make_sample.py [--source ../shared/data/clothing] [--per-class N] [--max-side 96] [--quality 75]

By default every photo (3,781, all splits) is shipped, downscaled to fit 96 px: enough photos for a network trained
from scratch to learn something in the first-run demo (240 photos were not: it scored below chance), at about 7 MB.
With ``--per-class N`` a deterministic subset is taken instead: per class the photos are ordered by ``image_id`` and
taken split by split in proportion to the class's split sizes (at least 3 per split), so every class has train,
validation and test photos. Each photo is downscaled to fit ``--max-side`` pixels on its longest side and saved as
baseline JPEG (``--quality``, no metadata).
Writes ``labels.csv`` in the schema of the source ``labels.csv`` (file, label, original_split, image_id, width,
height), copies the CC0 licence and writes ``ATTRIBUTION.md``. Fails if the result exceeds ``--max-mb``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO / "src" / "fashion_reco" / "data" / "sample"
SPLITS = ("train", "validation", "test")
MIN_PER_SPLIT = 3

ATTRIBUTION = """# Sample photos: attribution

The {n} photos in `images/` are {which} of the
**"Clothing dataset (small)"** by Alexey Grigorev and contributors
(GitHub [`alexeygrigorev/clothing-dataset-small`](https://github.com/alexeygrigorev/clothing-dataset-small)),
released under **CC0 1.0** (public domain dedication; see `LICENSE-CC0-1.0.txt`).

Changes: EXIF-rotated, downscaled to fit {max_side} px on the longest side, re-encoded as JPEG quality {quality}.
`labels.csv` keeps the upstream label, split (`original_split`) and image id. Rebuild with `tools/make_sample.py`.
"""


def allocate(split_sizes: dict[str, int], per_class: int) -> dict[str, int]:
    """Photos to take from each split: proportional (largest remainder), at least MIN_PER_SPLIT where available."""
    total = sum(split_sizes.values())
    floor = {s: min(MIN_PER_SPLIT, split_sizes.get(s, 0)) for s in SPLITS}
    rest = per_class - sum(floor.values())
    shares = {s: rest * split_sizes.get(s, 0) / total for s in SPLITS}
    take = {s: floor[s] + int(shares[s]) for s in SPLITS}
    for s in sorted(SPLITS, key=lambda s: shares[s] - int(shares[s]), reverse=True):
        if sum(take.values()) >= per_class:
            break
        take[s] += 1
    return {s: min(take[s], split_sizes.get(s, 0)) for s in SPLITS}


def pick(labels: pd.DataFrame, per_class: int | None) -> pd.DataFrame:
    """Every photo ordered by label and ``image_id`` (``per_class`` None), else the deterministic per-class subset."""
    if per_class is None:
        return labels.sort_values(["label", "image_id"], kind="stable").reset_index(drop=True)
    picked = []
    for _, group in labels.sort_values("image_id").groupby("label", sort=True):
        sizes = group["original_split"].value_counts().to_dict()
        for split, n in allocate(sizes, per_class).items():
            picked.append(group[group["original_split"] == split].head(n))
    return pd.concat(picked, ignore_index=True)


def shrink(path: Path, max_side: int, quality: int) -> tuple[bytes, int, int]:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        return out.getvalue(), image.width, image.height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "clothing")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--per-class", type=int, default=None, help="photos per class (default: all)")
    parser.add_argument("--max-side", type=int, default=96)
    parser.add_argument("--quality", type=int, default=75)
    parser.add_argument("--max-mb", type=float, default=10.0)
    args = parser.parse_args(argv)

    labels = pd.read_csv(args.source / "labels.csv", dtype={"image_id": str, "file": str})
    chosen = pick(labels, args.per_class)
    images_dir = args.dest / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    rows = []
    for record in chosen.itertuples(index=False):
        data, width, height = shrink(args.source / record.file, args.max_side, args.quality)
        rel = Path("images") / record.label / f"{record.image_id}.jpg"
        (args.dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (args.dest / rel).write_bytes(data)
        rows.append(
            {
                "file": rel.as_posix(),
                "label": record.label,
                "original_split": record.original_split,
                "image_id": record.image_id,
                "width": width,
                "height": height,
            }
        )
    pd.DataFrame(rows).to_csv(args.dest / "labels.csv", index=False, lineterminator="\n")
    shutil.copyfile(args.source / "LICENSE-CC0-1.0.txt", args.dest / "LICENSE-CC0-1.0.txt")
    (args.dest / "ATTRIBUTION.md").write_text(
        ATTRIBUTION.format(
            n=f"{len(rows):,}",
            which="every photo"
            if args.per_class is None
            else f"a deterministic sample ({args.per_class} per class, 10 classes)",
            max_side=args.max_side,
            quality=args.quality,
        ),
        encoding="utf-8",
    )
    total = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    print(f"{len(rows)} photos, {total / 1e6:.2f} MB in {args.dest}")
    print(pd.crosstab(chosen["label"], chosen["original_split"]).to_string())
    if total > args.max_mb * 1e6:
        print(f"sample is larger than {args.max_mb} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
