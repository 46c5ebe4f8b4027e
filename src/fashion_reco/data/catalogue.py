"""The product catalogue: one row per item, with its photo, label, split and any attributes the retailer has.

A :class:`Catalogue` is an immutable, validated wrapper over a DataFrame with columns

* ``item_id`` (str, unique, non-empty),
* ``image_path`` (str, absolute local path) and/or ``image_uri`` (``s3://``, ``https://`` …; every row needs one),
* ``label`` (str, or missing for unlabelled items),
* ``split`` (optional: ``train`` / ``validation`` / ``test``; ``val``/``valid`` are read as ``validation``),
* any extra attribute columns (kept as they are; numeric text columns from a CSV become numbers; a column mixing
  numbers and text becomes text, with a warning; one holding lists or objects pyarrow cannot store is refused).

Build it from a folder of photos (:meth:`Catalogue.from_folder`), a CSV manifest (:meth:`Catalogue.from_manifest`),
a DataFrame (:meth:`Catalogue.from_frame`) or an S3 prefix (:meth:`Catalogue.from_s3`). Every problem is a
:class:`~fashion_reco.errors.CatalogueError` naming the file, the 1-based data row and the column.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.data._attributes import storable_attributes
from fashion_reco.data._tabular import (
    clean_ids,
    first_row,
    prepare_frame,
    read_csv_table,
    require_columns,
    text_column,
)
from fashion_reco.errors import CatalogueError, FashionRecoWarning, FetchError
from fashion_reco.ids import Ids, as_id_array

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fashion_reco.data.s3 import OnFile, S3OptionFields, S3Options

__all__ = ["IMAGE_SUFFIXES", "MANIFEST_NAME", "SPLITS", "Catalogue"]

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
MANIFEST_NAME = "manifest.csv"
_SPLIT_ALIASES = {"val": "validation", "valid": "validation"}
_URI_RE = r"^[A-Za-z][A-Za-z0-9+.\-]*://\S"
_RESERVED = (Columns.ITEM_ID, Columns.IMAGE_PATH, Columns.IMAGE_URI, Columns.LABEL, Columns.SPLIT)


class Catalogue:
    """Immutable, validated product catalogue (see the module docstring for the columns).

    ``Catalogue(df)`` is the same as :meth:`from_frame`. Methods never modify a catalogue; they return new ones.
    """

    __slots__ = ("_items", "_source")

    def __init__(self, items: pd.DataFrame, *, base_dir: str | os.PathLike[str] | None = None) -> None:
        validated = _validate(items, rows=None, file=None, base_dir=base_dir, check_files=True)
        self._items = validated
        self._source: Path | None = None

    @classmethod
    def _wrap(cls, items: pd.DataFrame, source: Path | None = None) -> Catalogue:
        obj = cls.__new__(cls)
        obj._items = items
        obj._source = source
        return obj

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        check_files: bool = True,
    ) -> Catalogue:
        """Validate an in-memory table. Relative ``image_path`` values are resolved against ``base_dir`` (default:
        the working directory); with ``check_files`` every ``image_path`` must be an existing file."""
        if not isinstance(df, pd.DataFrame):
            raise CatalogueError(f"expected a pandas DataFrame, got {type(df).__name__}")
        items = _validate(df, rows=None, file=None, base_dir=base_dir, check_files=check_files)
        return cls._wrap(items)

    @classmethod
    def from_manifest(
        cls,
        csv: str | os.PathLike[str],
        base_dir: str | os.PathLike[str] | None = None,
        *,
        encoding: str = "utf-8",
        check_files: bool = True,
    ) -> Catalogue:
        """Read a CSV manifest with columns ``item_id``, ``image_path`` or ``image_uri``, optional ``label`` and
        ``split``, and any extra attribute columns.

        Relative image paths are resolved against ``base_dir`` (default: the manifest's folder). Raises
        :class:`CatalogueError` naming file, row and column for a missing column, an empty or duplicate id, a
        missing image file, an unknown split, malformed CSV or text that is not in ``encoding``.
        """
        table = read_csv_table(csv, error_cls=CatalogueError, encoding=encoding)
        base = Path(base_dir) if base_dir is not None else table.file.parent
        items = _validate(
            table.frame, rows=table.rows, file=table.file, base_dir=base, check_files=check_files
        )
        return cls._wrap(items, source=table.file)

    @classmethod
    def from_folder(
        cls,
        path: str | os.PathLike[str],
        *,
        suffixes: Sequence[str] = IMAGE_SUFFIXES,
    ) -> Catalogue:
        """Scan a folder of photos (``torchvision.datasets.ImageFolder`` convention).

        ``label`` is the first-level sub-folder (``<path>/<label>/.../<name>.jpg``; photos directly in ``path`` are
        unlabelled), ``item_id`` the path relative to ``path`` without its suffix, with ``/`` separators
        (``dress/0a1b``). Only files whose suffix is in ``suffixes`` (case-insensitive) are taken; hidden files and
        folders are skipped; symlinked files are followed, symlinked folders are not. When ``<path>/manifest.csv``
        exists it says otherwise: the catalogue is read from it (:meth:`from_manifest`) instead.
        """
        root = Path(path)
        if not root.is_dir():
            raise CatalogueError("not a folder" if root.exists() else "folder not found", file=root)
        if (root / MANIFEST_NAME).is_file():
            return cls.from_manifest(root / MANIFEST_NAME, base_dir=root)
        wanted = tuple(s.lower() for s in suffixes)
        files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):  # file-system walk: the one loop allowed
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(
                os.path.join(dirpath, name)
                for name in sorted(filenames)
                if not name.startswith(".") and name.lower().endswith(wanted)
            )
        if not files:
            raise CatalogueError(f"no images found (looked for {', '.join(wanted)})", file=root)
        top = os.fspath(root)
        top_prefix = top if top.endswith(os.sep) else top + os.sep  # how os.walk joins its top with the rest
        relative = pd.Series(files, dtype=object).str.slice(len(top_prefix))
        absolute = os.path.abspath(root).rstrip(os.sep) + os.sep + relative
        if os.sep != "/":
            relative = relative.str.replace(os.sep, "/", regex=False)
        frame = pd.DataFrame(
            {
                Columns.ITEM_ID: relative.str.replace(r"\.[^./]*$", "", regex=True),
                Columns.IMAGE_PATH: absolute,
                Columns.LABEL: relative.str.extract(r"^([^/]+)/", expand=False),
            }
        )
        dup = frame[Columns.ITEM_ID].duplicated(keep=False).to_numpy()
        if dup.any():
            clash = frame.loc[dup, Columns.ITEM_ID].iloc[0]
            names = frame.loc[frame[Columns.ITEM_ID] == clash, Columns.IMAGE_PATH].tolist()
            raise CatalogueError(
                f"two photos map to the same item id {clash!r}: {', '.join(names)}; rename one, or describe the "
                f"folder with a {MANIFEST_NAME}",
                file=root,
            )
        items = _validate(frame, rows=None, file=root, base_dir=root, check_files=False)
        return cls._wrap(items, source=root)

    @classmethod
    def from_s3(
        cls,
        uri: str,
        dest: str | os.PathLike[str],
        options: S3Options | None = None,
        *,
        progress: bool = False,
        on_file: OnFile | None = None,
        **fields: Unpack[S3OptionFields],
    ) -> Catalogue:
        """Fetch ``s3://bucket/prefix`` into ``dest`` with :func:`fashion_reco.data.s3.fetch_s3` (resumable: files
        already there are skipped), then build the catalogue from ``dest/manifest.csv`` when the prefix has one at
        its root, else from the folder (:meth:`from_folder`). ``options`` (:class:`~fashion_reco.data.s3.S3Options`,
        or any of its fields as keywords) set how objects are fetched.

        A key that can never be fetched as it is (refused as unsafe, e.g. a ``..`` segment, or refused by S3 with a
        4xx) is skipped with a :class:`~fashion_reco.errors.FashionRecoWarning` naming it. Only failures a rerun can
        fix (network, throttling, corrupt downloads) raise :class:`FetchError`, which then says to run again."""
        from fashion_reco.data.s3 import fetch_s3

        report = fetch_s3(uri, dest, options, progress=progress, on_file=on_file, **fields)
        retryable = report.retryable
        if retryable:
            key, reason = next(iter(retryable.items()))
            also = (
                f"; {len(report.permanent)} more can never be fetched as they are" if report.permanent else ""
            )
            raise FetchError(
                f"{len(retryable)} object(s) could not be fetched (first: {reason}){also}; run again to resume — "
                "objects already complete are not downloaded again",
                key=key,
            )
        if report.permanent:
            key = report.permanent[0]
            warnings.warn(
                f"{len(report.permanent)} object(s) under {uri} were skipped: they can never be fetched as they "
                f"are (first: {key!r}: {report.failed[key]}); rename them in the bucket or fix access to them",
                FashionRecoWarning,
                stacklevel=2,
            )
        return cls.from_folder(dest)

    # ------------------------------------------------------------------ views
    @property
    def items(self) -> pd.DataFrame:
        """A copy of the validated table."""
        return self._items.copy()

    def to_frame(self) -> pd.DataFrame:
        """A copy of the validated table (same as :attr:`items`)."""
        return self._items.copy()

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        splits = ""
        if Columns.SPLIT in self._items:
            counts = self._items[Columns.SPLIT].value_counts()
            splits = ", " + ", ".join(f"{s}={int(counts.get(s, 0))}" for s in SPLITS)
        return f"Catalogue({len(self)} items, {len(self.classes)} classes{splits})"

    @property
    def item_ids(self) -> np.ndarray:
        """Item ids in catalogue order (object array of ``str``)."""
        return self._items[Columns.ITEM_ID].to_numpy(dtype=object, copy=True)

    @property
    def labels(self) -> np.ndarray:
        """Labels in catalogue order (object array; ``None`` for unlabelled items)."""
        return self._items[Columns.LABEL].to_numpy(dtype=object, copy=True)

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted(self._items[Columns.LABEL].dropna().unique().tolist())

    @property
    def image_paths(self) -> list[str]:
        """Where each item's photo is: ``image_path`` when set, else ``image_uri``."""
        items = self._items
        if Columns.IMAGE_PATH not in items:
            return items[Columns.IMAGE_URI].tolist()
        if Columns.IMAGE_URI not in items:
            return items[Columns.IMAGE_PATH].tolist()
        return items[Columns.IMAGE_PATH].fillna(items[Columns.IMAGE_URI]).tolist()

    @property
    def has_splits(self) -> bool:
        return Columns.SPLIT in self._items

    def subset(self, item_ids: Ids) -> Catalogue:
        """The items with these ids, in the order given. Unknown ids raise :class:`CatalogueError`."""
        wanted = pd.Index(as_id_array(item_ids))
        positions = pd.Index(self._items[Columns.ITEM_ID]).get_indexer(wanted)
        if (positions < 0).any():
            missing = wanted[positions < 0]
            raise CatalogueError(
                f"{len(missing)} id(s) not in the catalogue", item_id=str(missing[0]), file=self._source
            )
        return self._wrap(self._items.iloc[positions].reset_index(drop=True), self._source)

    def where_split(self, name: str) -> Catalogue:
        """The items whose ``split`` is ``name`` (``train``, ``validation``/``val`` or ``test``)."""
        split = _SPLIT_ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
        if split not in SPLITS:
            raise CatalogueError(
                f"unknown split {name!r}; expected one of {', '.join(SPLITS)}", column="split"
            )
        if Columns.SPLIT not in self._items:
            raise CatalogueError("this catalogue has no 'split' column", column="split", file=self._source)
        mask = (self._items[Columns.SPLIT] == split).to_numpy()
        return self._wrap(self._items.loc[mask].reset_index(drop=True), self._source)


# ---------------------------------------------------------------------- validation


def _validate(
    df: pd.DataFrame,
    *,
    rows: np.ndarray | None,
    file: Path | None,
    base_dir: str | os.PathLike[str] | None,
    check_files: bool,
) -> pd.DataFrame:
    """Check and normalise a catalogue table (vectorised; the file-existence check is the one per-row call)."""
    frame, rows = prepare_frame(
        df,
        rows,
        [Columns.ITEM_ID],
        error_cls=CatalogueError,
        file=file,
        known=(Columns.LABEL, Columns.IMAGE_PATH, Columns.IMAGE_URI),
    )
    n = len(frame)
    if Columns.IMAGE_PATH not in frame and Columns.IMAGE_URI not in frame:
        require_columns(
            frame,
            [Columns.IMAGE_PATH],
            error_cls=CatalogueError,
            file=file,
            hint="each item needs an 'image_path' (local file) or 'image_uri' column",
        )
    if n == 0:
        raise CatalogueError("no items (the table has a header but no rows)", file=file)
    ids = clean_ids(
        frame[Columns.ITEM_ID], rows, error_cls=CatalogueError, file=file, column=Columns.ITEM_ID, unique=True
    )
    frame[Columns.ITEM_ID] = ids

    has_path = np.zeros(n, dtype=bool)
    if Columns.IMAGE_PATH in frame:
        paths = text_column(frame[Columns.IMAGE_PATH])
        has_path = (paths != "").to_numpy()
        url = paths.str.match(_URI_RE).to_numpy()
        row = first_row(url, rows)
        if row is not None:
            raise CatalogueError(
                f"image_path holds a URL ({paths.iloc[int(np.argmax(url))]!r}); image_path is for local files — "
                f"put URLs in an image_uri column ({int(url.sum())} such row(s))",
                file=file,
                row=row,
                column=Columns.IMAGE_PATH,
            )
        frame[Columns.IMAGE_PATH] = _absolute(paths, base_dir).where(has_path, None)
    has_uri = np.zeros(n, dtype=bool)
    if Columns.IMAGE_URI in frame:
        uris = text_column(frame[Columns.IMAGE_URI])
        has_uri = (uris != "").to_numpy()
        row = first_row(has_uri & ~uris.str.match(_URI_RE).to_numpy(), rows)
        if row is not None:
            raise CatalogueError(
                "image_uri is not a URI (expected e.g. s3://bucket/key.jpg or https://…; use image_path for files)",
                file=file,
                row=row,
                column=Columns.IMAGE_URI,
            )
        frame[Columns.IMAGE_URI] = uris.where(has_uri, None)
    row = first_row(~has_path & ~has_uri, rows)
    if row is not None:
        column = Columns.IMAGE_PATH if Columns.IMAGE_PATH in frame else Columns.IMAGE_URI
        raise CatalogueError("empty image path", file=file, row=row, column=column)
    if check_files and has_path.any():
        candidates = frame[Columns.IMAGE_PATH].to_numpy(dtype=object)
        exists = np.array([bool(p) and os.path.isfile(p) for p in candidates], dtype=bool)
        row = first_row(has_path & ~exists, rows)
        if row is not None:
            pos = int(np.argmax(has_path & ~exists))
            count = int((has_path & ~exists).sum())
            what = "is a folder, not a file" if os.path.isdir(candidates[pos]) else "image file not found"
            raise CatalogueError(
                f"{what}: {candidates[pos]}" + (f" ({count} missing in all)" if count > 1 else ""),
                file=file,
                row=row,
                column=Columns.IMAGE_PATH,
            )

    if Columns.LABEL in frame:
        labels = text_column(frame[Columns.LABEL])
        frame[Columns.LABEL] = labels.where(labels != "", None)
    else:
        frame[Columns.LABEL] = pd.Series([None] * n, dtype=object)

    if Columns.SPLIT in frame:
        split = text_column(frame[Columns.SPLIT]).str.lower().replace(_SPLIT_ALIASES)
        unknown = (split != "") & ~split.isin(SPLITS)
        row = first_row(unknown, rows)
        if row is not None:
            value = frame[Columns.SPLIT].iloc[int(np.argmax(unknown.to_numpy()))]
            raise CatalogueError(
                f"unknown split {value!r}; expected one of {', '.join(SPLITS)} (or empty)",
                file=file,
                row=row,
                column=Columns.SPLIT,
            )
        frame[Columns.SPLIT] = split.where(split != "", None)

    for name in frame.columns:
        if name not in _RESERVED and frame[name].dtype == object:
            frame[name] = _infer_attribute(frame[name])
    attributes = [c for c in frame.columns if c not in _RESERVED]
    frame = storable_attributes(frame, attributes, rows=rows, file=file, error_cls=CatalogueError)

    ordered = [c for c in _RESERVED if c in frame] + [c for c in frame.columns if c not in _RESERVED]
    return frame[ordered]


def _absolute(paths: pd.Series, base_dir: str | os.PathLike[str] | None) -> pd.Series:
    """Resolve relative paths against ``base_dir`` and normalise ``.``/``..`` segments (vectorised string work, one
    pass per nesting level; no file-system calls)."""
    base = os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    is_absolute = paths.str.startswith("/") | paths.str.match(r"^[A-Za-z]:[\\/]")
    joined = paths.where(is_absolute, base.rstrip(os.sep) + os.sep + paths)
    if os.sep != "/":
        return joined
    joined = (joined + "/").str.replace(
        r"/(?:\.?/)+", "/", regex=True
    )  # "//" and "/./"; "/" sentinel at the end
    for _ in range(256):
        collapsed = joined.str.replace(r"/(?!\.\./)[^/]+/\.\./", "/", regex=True, n=1)
        if collapsed.equals(joined):
            break
        joined = collapsed
    return joined.str.replace(r"^/(?:\.\./)+", "/", regex=True).str.replace(r"(?<=.)/$", "", regex=True)


def _infer_attribute(series: pd.Series) -> pd.Series:
    """Text attribute columns that are entirely numeric become numbers (``width`` → int); others keep text."""
    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return series  # lists, mixed objects …: the caller's own column, left alone
    stripped = text_column(series)
    present = stripped != ""
    if not present.any():
        return stripped.where(present, None)
    numbers = pd.to_numeric(stripped.where(present, None), errors="coerce")
    if numbers[present].notna().all():
        if present.all() and (numbers == np.floor(numbers)).all() and numbers.abs().max() < 2**53:
            return numbers.astype(np.int64)
        return numbers
    return series.astype(object).where(present, None)
