"""Ready-made catalogues: the shared real clothing photos, and the small sample shipped inside the package.

Both read a ``labels.csv`` in the schema of the "Clothing dataset (small)" (Alexey Grigorev and contributors, CC0
1.0): ``file`` (path relative to the CSV's folder), ``label``, ``original_split`` (``train``/``validation``/``test``),
``image_id`` (stable item id), ``width``, ``height``; further columns are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.config import DATA_ENV, default_data_root
from fashion_reco.data._tabular import read_csv_table, require_columns
from fashion_reco.data.catalogue import Catalogue, _validate
from fashion_reco.errors import CatalogueError

__all__ = ["SAMPLE_DIR", "load_clothing", "load_labels_csv", "sample_catalogue"]

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
_LABELS_COLUMNS = ("file", "label", "original_split", "image_id")
_KEPT = ("width", "height")


def load_labels_csv(labels_csv: str | os.PathLike[str], *, check_files: bool = True) -> Catalogue:
    """Read a clothing-style ``labels.csv`` (see the module docstring) into a :class:`Catalogue`.

    ``image_id`` → ``item_id``, ``file`` → ``image_path`` (absolute, resolved against the CSV's folder),
    ``original_split`` → ``split``; ``label``, ``width`` and ``height`` are kept.
    """
    table = read_csv_table(labels_csv, error_cls=CatalogueError)
    require_columns(table.frame, _LABELS_COLUMNS, error_cls=CatalogueError, file=table.file)
    source = table.frame
    frame = pd.DataFrame(
        {
            Columns.ITEM_ID: source["image_id"],
            Columns.IMAGE_PATH: source["file"],
            Columns.LABEL: source["label"],
            Columns.SPLIT: source["original_split"],
        }
    )
    for name in _KEPT:
        if name in source:
            frame[name] = source[name]
    renamed = {Columns.ITEM_ID: "image_id", Columns.IMAGE_PATH: "file", Columns.SPLIT: "original_split"}
    try:
        items = _validate(
            frame, rows=table.rows, file=table.file, base_dir=table.file.parent, check_files=check_files
        )
    except CatalogueError as exc:  # report the column under the name it has in labels.csv
        context = dict(exc.context)
        if context.get("column") in renamed:
            context["column"] = renamed[context["column"]]
        raise CatalogueError(exc.reason, **context) from None
    for name in _KEPT:
        if name in items and not pd.api.types.is_numeric_dtype(items[name]):
            bad = pd.to_numeric(items[name], errors="coerce").isna() & items[name].notna()
            position = int(np.argmax(bad.to_numpy()))
            raise CatalogueError(
                f"not a whole number: {items[name].iloc[position]!r}",
                file=table.file,
                row=int(table.rows[position]),
                column=name,
            )
    return Catalogue._wrap(items, source=table.file)


def load_clothing(root: str | os.PathLike[str] | None = None) -> Catalogue:
    """The real clothing photos: ``<root>/clothing/labels.csv`` (3,781 photos, 10 classes, with splits).

    ``root`` defaults to ``$FASHION_RECO_DATA`` or ``../shared/data``.
    """
    base = Path(root) if root is not None else default_data_root()
    labels = base / "clothing" / "labels.csv"
    if not labels.is_file():
        raise CatalogueError(
            f"clothing labels not found; pass root= or set {DATA_ENV} to the folder holding clothing/",
            file=labels,
        )
    return load_labels_csv(labels)


def sample_catalogue() -> Catalogue:
    """The small CC0 sample shipped with the package (24 photos per class, 10 classes, with splits).

    Built by ``tools/make_sample.py`` from the clothing photos; see ``data/sample/ATTRIBUTION.md``.
    """
    return load_labels_csv(SAMPLE_DIR / "labels.csv")
