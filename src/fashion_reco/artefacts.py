"""One way to write and read a saved artefact folder: content-addressed payloads, nested parts, a manifest last.

Every saved thing in this library (the image model, the personalised recommender, the whole bundle, the ranker)
is an *artefact folder*::

    <manifest>.json        {"format", "format_version", **meta, "files": {key: entry}} — written last, atomically
    <stem>-<sha12>.<ext>   payloads: bytes, text, JSON, ``.npy`` arrays, ``.parquet`` frames; never rewritten
    <stem>-<sha12>/        nested artefact folders ("components"), addressed by the sha256 of their manifest

**Commit protocol.** :class:`ArtefactWriter` writes every payload and component beside whatever the folder already
holds, under names derived from their content, so nothing the current manifest points at is ever touched. Only
then is the manifest replaced — one ``rename(2)`` — and that rename is the commit: before it a reader sees the
old artefact complete, after it the new one complete. A process killed at any moment therefore leaves the previous
artefact loading exactly as before (the extra files it may leave are removed by the next save). This is the
"write beside, switch with one rename" commit, done inside the folder rather than by swapping two folders: the
folder keeps its identity (no moment where the path is missing, no second rename, works on Windows), and a
component is only reachable through the top manifest, so a half-written bundle can never be half-visible.

**Ownership.** ``save`` refuses a non-empty folder that holds no artefact of the expected format (the user's own
files), and after the switch it deletes only what it wrote: entries of the previous manifest and its own
temporary/staging leftovers — never anything else in the folder.

**Reading.** :class:`ArtefactReader` checks the manifest, refuses entries that are not plain names in the folder,
verifies every payload's sha256 (plus shape/dtype for arrays) on the bytes it then decodes, and turns every
decoding error (JSON, numpy, pyarrow, safetensors, ...) into an :class:`~fashion_reco.errors.ArtefactError` naming
the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fashion_reco.atomic import fsync_dir
from fashion_reco.errors import ArtefactError

__all__ = ["ArtefactReader", "ArtefactWriter", "PayloadKind", "verify_artefact"]

PayloadKind = Literal["bytes", "text", "json", "array", "frame", "component"]
_KINDS: tuple[str, ...] = ("bytes", "text", "json", "array", "frame", "component")
_SUFFIX = {"text": ".txt", "json": ".json", "array": ".npy", "frame": ".parquet", "bytes": ".bin"}
_TMP_PREFIX = ".fr-tmp-"
_STAGING_PREFIX = ".fr-staging-"
_NAME_RE = re.compile(r"^(?P<stem>[A-Za-z0-9_]{1,48})-(?P<sha>[0-9a-f]{12})(?P<ext>\.[a-z0-9]{1,12})?$")
_RESERVED_META = ("format", "format_version", "files")


def _stem(key: str) -> str:
    """A file-name-safe stem for ``key`` (the manifest keeps the key itself; the sha suffix keeps names unique)."""
    return (re.sub(r"[^A-Za-z0-9_]", "_", key) or "payload")[:48]


def _a(what: str) -> str:
    """``what`` with its indefinite article ("an image model", "a saved recommender")."""
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def _is_own_leftover(name: str) -> bool:
    return name.startswith((_TMP_PREFIX, _STAGING_PREFIX))


def _read_manifest_file(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArtefactError(f"manifest is not valid JSON: {exc}", file=path) from None
    if not isinstance(raw, dict):
        raise ArtefactError("manifest must be a JSON object", file=path)
    return raw


def _finite_json(value: Any) -> Any:
    """NaN/inf → None and numpy scalars → Python, recursively: a manifest is strict JSON."""
    if isinstance(value, Mapping):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _write_file(directory: Path, name: str, data: bytes) -> None:
    """Write ``data`` to ``directory/name`` through a fsynced temporary sibling and one rename."""
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _entry_names(files: Any) -> set[str]:
    """File names a (possibly older) manifest's file table refers to."""
    names: set[str] = set()
    if isinstance(files, dict):
        for value in files.values():
            name = value.get("file") if isinstance(value, dict) else value
            if isinstance(name, str) and _NAME_RE.match(name):
                names.add(name)
    return names


class ArtefactWriter:
    """Collect named payloads for one artefact folder, then :meth:`commit` them with the manifest written last.

    ``format`` / ``version`` identify the artefact; ``what`` names it in messages ("saved recommender").
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        manifest: str,
        format: str,
        version: int,
        what: str,
    ) -> None:
        self.directory = Path(directory)
        self.manifest_name = manifest
        self.format = format
        self.version = int(version)
        self.what = what
        self._entries: dict[str, dict[str, Any]] = {}
        self._previous = self._check_target()
        self.directory.mkdir(parents=True, exist_ok=True)

    # -- target checks ----------------------------------------------------------------------------------------------
    def _check_target(self) -> set[str]:
        """Refuse a folder that is not ours; return the names the current manifest (if any) refers to."""
        folder = self.directory
        if folder.exists() and not folder.is_dir():
            raise ArtefactError(
                f"cannot save the {self.what} here: a file, not a folder, is in the way", file=folder
            )
        if not folder.exists():
            return set()
        manifest = folder / self.manifest_name
        if not manifest.is_file():
            foreign = sorted(
                p.name
                for p in folder.iterdir()
                if not _is_own_leftover(p.name) and not _NAME_RE.match(p.name)
            )
            if foreign:
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                raise ArtefactError(
                    f"cannot save the {self.what} here: the folder is not empty and holds no {self.what} "
                    f"(found {shown}); nothing was changed — save into a new or empty folder",
                    file=folder,
                )
            return set()
        raw = _read_manifest_file(manifest)
        if raw.get("format") != self.format:
            raise ArtefactError(
                f"cannot save the {self.what} here: the folder holds a different artefact "
                f"(format {raw.get('format')!r}); nothing was changed — save into a new or empty folder",
                file=manifest,
            )
        return _entry_names(raw.get("files"))

    # -- payloads ---------------------------------------------------------------------------------------------------
    def _add(self, key: str, kind: str, data: bytes, suffix: str, **extra: Any) -> dict[str, Any]:
        if not isinstance(key, str) or not key:
            raise ValueError(f"payload key must be a non-empty string, got {key!r}")
        if key in self._entries:
            raise ValueError(f"payload key {key!r} added twice")
        digest = hashlib.sha256(data).hexdigest()
        name = f"{_stem(key)}-{digest[:12]}{suffix}"
        target = self.directory / name
        if not (target.is_file() and _sha256_path(target) == digest):
            _write_file(self.directory, name, data)
        entry = {"file": name, "sha256": digest, "kind": kind, "size": len(data), **extra}
        self._entries[key] = entry
        return entry

    def add_bytes(self, key: str, data: bytes, *, suffix: str = ".bin") -> dict[str, Any]:
        """Store raw bytes (e.g. safetensors weights, a LightGBM text model as UTF-8) under ``key``."""
        if not re.fullmatch(r"\.[a-z0-9]{1,12}", suffix):
            raise ValueError(f"suffix must look like '.bin', got {suffix!r}")
        return self._add(key, "bytes", bytes(data), suffix)

    def add_text(self, key: str, text: str, *, suffix: str = ".txt") -> dict[str, Any]:
        """Store UTF-8 text under ``key``."""
        return self._add(key, "text", text.encode("utf-8"), suffix)

    def add_json(self, key: str, value: Any) -> dict[str, Any]:
        """Store a JSON document (strict: NaN/inf become null) under ``key``."""
        data = json.dumps(_finite_json(value), indent=1, sort_keys=True, allow_nan=False).encode("utf-8")
        return self._add(key, "json", data, ".json")

    def add_array(self, key: str, array: np.ndarray) -> dict[str, Any]:
        """Store a numpy array as ``.npy`` (no pickle: object arrays are refused) with its shape and dtype."""
        arr = np.ascontiguousarray(array)
        if arr.dtype.hasobject:
            raise ArtefactError(
                f"cannot save an object array without pickle; convert it first (dtype {arr.dtype})", key=key
            )
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=False)
        return self._add(key, "array", buffer.getvalue(), ".npy", shape=list(arr.shape), dtype=arr.dtype.str)

    def add_frame(self, key: str, frame: pd.DataFrame) -> dict[str, Any]:
        """Store a DataFrame as parquet; a column pyarrow cannot encode is named in an ArtefactError (nothing committed)."""
        buffer = io.BytesIO()
        try:
            frame.reset_index(drop=True).to_parquet(buffer, index=False)
        except Exception as exc:  # pyarrow raises ArrowInvalid / ArrowTypeError / ValueError, by column
            column = _failing_column(frame)
            raise ArtefactError(
                f"cannot save this table: {type(exc).__name__}: {exc}; nothing was changed",
                key=key,
                column=column,
            ) from None
        return self._add(key, "frame", buffer.getvalue(), ".parquet", rows=len(frame))

    def add_component(self, key: str, save: Callable[[Path], object], *, manifest: str) -> dict[str, Any]:
        """Save a nested artefact with ``save(folder)`` into a fresh staging folder, then move it to its address.

        ``manifest`` is the file name of the component's own manifest; its sha256 addresses the folder.
        """
        if key in self._entries:
            raise ValueError(f"payload key {key!r} added twice")
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.directory))
        try:
            save(staging)
            inner = staging / manifest
            if not inner.is_file():
                raise ArtefactError(f"component {key!r} wrote no {manifest}", file=staging)
            digest = _sha256_path(inner)
            name = f"{_stem(key)}-{digest[:12]}"
            target = self.directory / name
            if (
                target.is_dir()
                and (target / manifest).is_file()
                and _sha256_path(target / manifest) == digest
            ):
                shutil.rmtree(staging)
            else:
                if target.exists() and name not in self._previous:
                    shutil.rmtree(
                        target
                    ) if target.is_dir() else target.unlink()  # a leftover of a killed save
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        entry = {"file": name, "sha256": digest, "kind": "component", "manifest": manifest}
        self._entries[key] = entry
        return entry

    # -- commit -----------------------------------------------------------------------------------------------------
    def commit(self, meta: Mapping[str, Any] | None = None) -> Path:
        """Write the manifest (the one atomic switch), then remove what only the previous version used."""
        meta = dict(meta or {})
        clash = [k for k in _RESERVED_META if k in meta]
        if clash:
            raise ValueError(f"meta may not set {clash}")
        document = {"format": self.format, "format_version": self.version, **meta, "files": self._entries}
        try:
            text = json.dumps(_finite_json(document), indent=2, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ArtefactError(
                f"cannot write the manifest: {exc}", file=self.directory / self.manifest_name
            ) from None
        fsync_dir(self.directory)  # payload renames are durable before the manifest names them
        _write_file(self.directory, self.manifest_name, (text + "\n").encode("utf-8"))
        fsync_dir(self.directory)
        self._collect_garbage()
        return self.directory

    def _collect_garbage(self) -> None:
        """Delete what this writer's earlier versions wrote and the new manifest no longer needs — nothing else."""
        keep = {e["file"] for e in self._entries.values()}
        stems = {_stem(k) for k in self._entries} | {
            m.group("stem") for m in map(_NAME_RE.match, self._previous) if m
        }
        for path in self.directory.iterdir():
            name = path.name
            match = _NAME_RE.match(name)
            ours = (
                _is_own_leftover(name) or name in self._previous or (match and match.group("stem") in stems)
            )
            if not ours or name in keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _failing_column(frame: pd.DataFrame) -> str | None:
    """The first column pyarrow refuses on its own (for the error message), if any."""
    import pyarrow as pa

    for column in frame.columns:
        try:
            pa.array(frame[column], from_pandas=True)
        except Exception:
            return str(column)
    return None


def _sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtefactReader:
    """A verified view of one artefact folder: the manifest's metadata and checksum-verified payloads."""

    def __init__(self, directory: Path, manifest_path: Path, document: dict[str, Any], what: str) -> None:
        self.directory = directory
        self.manifest_path = manifest_path
        self.document = document
        self.what = what

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        manifest: str,
        format: str,
        version: int,
        what: str,
        upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> ArtefactReader:
        """Open ``directory``, check its manifest's format and version (``upgrade`` may rewrite older documents)."""
        root = Path(directory)
        path = root / manifest
        if not root.is_dir():
            raise ArtefactError(f"no {what} here: folder not found", file=root)
        if not path.is_file():
            raise ArtefactError(
                f"not {_a(what)}: missing {manifest} (or its first save never finished)", file=path
            )
        document = _read_manifest_file(path)
        if document.get("format") != format:
            raise ArtefactError(f"not {_a(what)} (format {document.get('format')!r})", file=path)
        found = document.get("format_version")
        if not isinstance(found, int) or isinstance(found, bool) or found < 1:
            raise ArtefactError(f"invalid format_version {found!r}", file=path, key="format_version")
        if found > version:
            raise ArtefactError(
                f"format version {found} is newer than this library supports ({version}); upgrade fashion-reco",
                file=path,
            )
        if upgrade is not None:
            document = upgrade(document)
        files = document.get("files")
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise ArtefactError("manifest has no valid file table", file=path, key="files")
        return cls(root, path, document, what)

    # -- metadata ---------------------------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """The manifest without its file table."""
        return {k: v for k, v in self.document.items() if k != "files"}

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """The manifest's file table: key → entry (file, sha256, kind, ...)."""
        files: dict[str, dict[str, Any]] = self.document["files"]
        return files

    def has(self, key: str) -> bool:
        """Whether the manifest lists ``key``."""
        return key in self.files

    def file_of(self, key: str) -> Path:
        """The path of ``key``'s payload (or the manifest, when the key is unknown) — for error messages."""
        entry = self.files.get(key)
        name = entry.get("file") if isinstance(entry, dict) else None
        return self.directory / name if isinstance(name, str) and _NAME_RE.match(name) else self.manifest_path

    def _entry(self, key: str, kind: str) -> tuple[dict[str, Any], Path]:
        entry = self.files.get(key)
        if entry is None:
            raise ArtefactError(f"the {self.what} has no {key!r} part", file=self.manifest_path, key=key)
        name = entry.get("file")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ArtefactError(
                f"file name {name!r} is not a plain <name>-<sha12> entry of this folder",
                file=self.manifest_path,
                key=key,
            )
        if entry.get("kind") != kind:
            raise ArtefactError(
                f"part {key!r} is a {entry.get('kind')!r}, expected {kind!r}",
                file=self.directory / name,
                key=key,
            )
        sha = entry.get("sha256")
        if (
            not isinstance(sha, str)
            or not re.fullmatch(r"[0-9a-f]{64}", sha)
            or not name.startswith(f"{_stem(key)}-{sha[:12]}")
        ):
            raise ArtefactError(
                "manifest entry has no valid sha256 for this file", file=self.directory / name, key=key
            )
        return entry, self.directory / name

    def read_bytes(self, key: str, kind: str = "bytes") -> bytes:
        """The verified bytes of ``key``."""
        entry, path = self._entry(key, kind)
        if not path.is_file():
            raise ArtefactError("file listed in the manifest is missing", file=path, key=key)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtefactError(f"cannot read: {exc.strerror or exc}", file=path, key=key) from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ArtefactError(
                "checksum mismatch: the file was modified, truncated or replaced", file=path, key=key
            )
        return data

    def decode(self, key: str, kind: str, decoder: Callable[[bytes], Any]) -> Any:
        """Verify ``key`` and decode it with ``decoder``; any decoding error becomes an ArtefactError naming the file."""
        data = self.read_bytes(key, kind)
        try:
            return decoder(data)
        except ArtefactError:
            raise
        except Exception as exc:  # numpy / pyarrow / json / safetensors each raise their own types
            raise ArtefactError(
                f"cannot decode {kind}: {type(exc).__name__}: {exc}", file=self.file_of(key), key=key
            ) from None

    def text(self, key: str) -> str:
        """The verified UTF-8 text of ``key``."""
        return str(self.decode(key, "text", lambda b: b.decode("utf-8")))

    def json(self, key: str) -> Any:
        """The verified JSON document of ``key``."""
        return self.decode(key, "json", lambda b: json.loads(b.decode("utf-8")))

    def optional_array(self, key: str) -> np.ndarray | None:
        """:meth:`array`, or None when the manifest does not list ``key``."""
        return self.array(key) if key in self.files else None

    def array(self, key: str) -> np.ndarray:
        """The verified array of ``key`` (shape and dtype must match the manifest)."""
        entry, path = self._entry(key, "array")
        arr = self.decode(key, "array", lambda b: np.load(io.BytesIO(b), allow_pickle=False))
        if not isinstance(arr, np.ndarray):
            raise ArtefactError("not a single .npy array", file=path, key=key)
        if list(arr.shape) != list(entry.get("shape", [])) or arr.dtype.str != entry.get("dtype"):
            raise ArtefactError(
                f"array of shape {list(arr.shape)}, dtype {arr.dtype.str} does not match the manifest's "
                f"shape {entry.get('shape')}, dtype {entry.get('dtype')}",
                file=path,
                key=key,
            )
        return arr

    def frame(self, key: str) -> pd.DataFrame:
        """The verified parquet table of ``key``."""
        frame: pd.DataFrame = self.decode(key, "frame", lambda b: pd.read_parquet(io.BytesIO(b)))
        return frame

    def component(self, key: str) -> Path:
        """The folder of nested artefact ``key``, its manifest verified against the checksum recorded here."""
        entry, path = self._entry(key, "component")
        inner = path / str(entry.get("manifest", ""))
        if not path.is_dir() or not inner.is_file() or not _NAME_RE.match(path.name):
            raise ArtefactError("component folder listed in the manifest is missing", file=path, key=key)
        if _sha256_path(inner) != entry["sha256"]:
            raise ArtefactError(
                "checksum mismatch: the component's manifest was modified or replaced", file=inner, key=key
            )
        return path

    def verify(self) -> None:
        """Verify every payload (recursively through components) without decoding more than needed."""
        for key, entry in self.files.items():
            kind = str(entry.get("kind"))
            if kind not in _KINDS:
                raise ArtefactError(f"unknown part kind {kind!r}", file=self.manifest_path, key=key)
            if kind == "component":
                folder = self.component(key)
                verify_artefact(folder, manifest=str(entry["manifest"]))
            elif kind == "array":
                self.array(key)
            else:
                self.read_bytes(key, kind)


def verify_artefact(directory: str | os.PathLike[str], *, manifest: str) -> dict[str, Any]:
    """Verify every file of the artefact folder ``directory`` (any format); returns its manifest."""
    path = Path(directory) / manifest
    if not path.is_file():
        raise ArtefactError(f"{manifest} missing", file=path)
    document = _read_manifest_file(path)
    reader = ArtefactReader.open(
        directory,
        manifest=manifest,
        format=str(document.get("format")),
        version=int(document.get("format_version") or 1)
        if isinstance(document.get("format_version"), int)
        else 1,
        what="saved artefact",
    )
    reader.verify()
    return reader.document
