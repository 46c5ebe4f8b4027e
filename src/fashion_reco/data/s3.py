"""Fetch a catalogue (photos and CSVs) from S3 or an S3-compatible store into a local folder, resumably.

``fetch_s3("s3://bucket/prefix", dest)`` lists every object under the prefix with the ``list_objects_v2``
paginator (no 1,000-key cap), keeps the keys whose suffix is wanted, and downloads them with a thread pool, each
object through ``download_fileobj`` (boto3's managed transfer: ranged, parallel parts for large objects) into a
temporary file beside its target that is renamed into place only once complete and verified. Keys map to paths
below ``dest`` by :func:`key_to_path`, which keeps sub-folders and refuses keys that would escape ``dest``.

Resume: a file already present with the listed size — and, when the object's ETag is a plain MD5 (not multipart),
the same MD5 — is skipped. Temporary files left by an interrupted run are removed at the next run (so run one
fetch per destination at a time).

Credentials: ``unsigned=True`` sends anonymous requests (public buckets); ``unsigned=False`` uses boto3's default
credential chain (environment, shared files, SSO, instance roles) and fails without credentials; ``unsigned=None``
(the default) uses the credential chain when it finds credentials and falls back to anonymous requests when it
finds none, logging that it did. Credentials never appear in errors or logs. ``endpoint_url`` targets an
S3-compatible store (MinIO, Ceph, LocalStack, moto …) with path-style addressing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict, Unpack

from fashion_reco.atomic import atomic_open
from fashion_reco.config import DataConfig, config_error
from fashion_reco.errors import FetchError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef as S3Object
    from s3transfer.manager import TransferManager
    from s3transfer.subscribers import BaseSubscriber
else:  # boto3 is optional (the `s3` extra): at run time these names only document
    S3Client = S3Object = TransferManager = BaseSubscriber = Any

__all__ = [
    "DEFAULT_SUFFIXES",
    "FetchReport",
    "OnFile",
    "RetryMode",
    "S3Client",
    "S3OptionFields",
    "S3Options",
    "fetch_s3",
    "key_to_path",
    "make_s3_client",
    "parse_s3_uri",
]

logger = logging.getLogger(__name__)

DEFAULT_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".csv")
_PLAIN_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")  # atomic_open's temporary files
_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AccountProblem",
    "Forbidden",
    "403",
}
_MISSING_BUCKET = {"NoSuchBucket", "InvalidBucketName"}

RetryMode = Literal["standard", "adaptive", "legacy"]
#: Called from the main thread as each object ends: ``(key, "downloaded" | "skipped" | "failed")``.
OnFile = Callable[[str, str], None]


class S3Options(BaseModel):
    """How objects are fetched from S3: endpoint, credentials, key filter, concurrency, retries and timeouts.

    One typed, immutable object, like boto3's ``TransferConfig``: build it once (or from the configuration with
    :meth:`from_data_config`) and pass it to :func:`fetch_s3`, ``Catalogue.from_s3`` or ``open_catalogue``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, moto …); None: AWS."
    )
    unsigned: bool | None = Field(
        None,
        description="True: anonymous requests; False: credentials required; None: anonymous when none found.",
    )
    suffixes: tuple[str, ...] | None = Field(
        DEFAULT_SUFFIXES, description="Keys to fetch, by suffix (case-insensitive); None: every key."
    )
    max_concurrency: int = Field(
        8, ge=1, description="Objects fetched at once (and parts of one large object)."
    )
    retry_mode: RetryMode = Field("standard", description="botocore retry mode of every request.")
    max_attempts: int = Field(5, ge=1, description="botocore attempts per request.")
    read_timeout: float = Field(60.0, gt=0, description="Seconds to wait for data on a connection.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a connection.")
    verify: bool = Field(
        True, description="Check sizes and plain-MD5 ETags when skipping and after downloading."
    )

    @classmethod
    def from_data_config(cls, config: DataConfig, **fields: Unpack[S3OptionFields]) -> S3Options:
        """The configured transfer settings (``data.s3_*``), with ``fields`` on top."""
        base = {
            "max_concurrency": config.s3_max_concurrency,
            "retry_mode": config.s3_retry_mode,
            "max_attempts": config.s3_max_attempts,
        }
        return _validated({**base, **fields})

    def replace(self, **fields: Unpack[S3OptionFields]) -> S3Options:
        """A copy with ``fields`` changed (validated)."""
        return self if not fields else _validated({**self.model_dump(), **fields})


class S3OptionFields(TypedDict, total=False):
    """The fields of :class:`S3Options` as keyword arguments (each optional), for typed ``**fields``."""

    endpoint_url: str | None
    unsigned: bool | None
    suffixes: Sequence[str] | None
    max_concurrency: int
    retry_mode: RetryMode
    max_attempts: int
    read_timeout: float
    connect_timeout: float
    verify: bool


def _validated(values: dict[str, object]) -> S3Options:
    try:
        return S3Options.model_validate(values)
    except ValidationError as exc:
        error = config_error(exc)
        raise FetchError(f"S3 option {error.reason}", **error.context) from None


def _options(options: S3Options | None, fields: S3OptionFields) -> S3Options:
    """``options`` (default: :class:`S3Options` ()) with keyword ``fields`` on top."""
    base = options if options is not None else S3Options()
    return base.replace(**fields) if fields else base


class _CorruptDownload(FetchError):
    """A download that arrived short or with the wrong MD5: transient, retried in the second pass."""


class FetchReport(BaseModel):
    """Outcome of :func:`fetch_s3`: how many objects were downloaded and skipped (already complete locally), which
    failed (key → reason), the bytes downloaded, and the keys behind each count."""

    uri: str
    dest: str
    downloaded: int = 0
    skipped: int = 0
    failed: dict[str, str] = Field(default_factory=dict)
    bytes: int = 0
    downloaded_keys: list[str] = Field(default_factory=list)
    skipped_keys: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no object failed."""
        return not self.failed

    @property
    def total(self) -> int:
        return self.downloaded + self.skipped + len(self.failed)

    def summary(self) -> str:
        return (
            f"{self.uri} → {self.dest}: {self.downloaded} downloaded ({self.bytes / 1e6:.1f} MB), "
            f"{self.skipped} already complete, {len(self.failed)} failed"
        )


# ---------------------------------------------------------------------- URIs and paths


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix/")``: the prefix is a folder (a trailing ``/`` is
    added), so ``s3://b/photos`` never picks up ``photos2/…``. ``s3://bucket`` → ``("bucket", "")``."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise FetchError("not an S3 URI: expected s3://bucket/prefix", key=str(uri))
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.\-_]{0,254}", bucket):
        raise FetchError("not an S3 URI: missing or invalid bucket name", key=uri)
    return bucket, _folder(prefix)


def _folder(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _unsafe(relative: str) -> str | None:
    """Why a key (relative to the prefix) cannot be a local path, or None when it is safe."""
    if not relative:
        return "the key is the prefix itself (no file name)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in relative):
        return "control character in the key"
    if "\\" in relative:
        return "backslash in the key (a Windows path separator)"
    if relative.startswith("/"):
        return "absolute path"
    parts = relative.split("/")
    if any(part == "" for part in parts):
        return "empty path segment ('//' or a trailing '/')"
    if any(part in (".", "..") for part in parts):
        return "'.' or '..' path segment"
    if any(_DRIVE.match(part) for part in parts):
        return "drive letter in the key"
    return None


def key_to_path(dest: str | os.PathLike[str], prefix: str, key: str) -> Path:
    """Local path for ``key`` below ``dest``: the part of the key after ``prefix`` (a folder prefix, ``/`` added
    when missing), sub-folders kept. Raises :class:`FetchError` naming the key when it is not under the prefix or
    would not stay inside ``dest`` (``..``/``.`` or empty segments, absolute paths, backslashes, drive letters,
    control characters)."""
    folder = _folder(prefix)
    if not key.startswith(folder):
        raise FetchError(f"key is not under the prefix {folder!r}", key=key)
    relative = key[len(folder) :]
    reason = _unsafe(relative)
    if reason is not None:
        raise FetchError(f"unsafe key refused: {reason}", key=key)
    target = Path(dest).joinpath(*relative.split("/"))
    base, full = os.path.abspath(dest), os.path.abspath(target)
    if (
        full == base or os.path.commonpath([base, full]) != base
    ):  # defence in depth; _unsafe already covers it
        raise FetchError("unsafe key refused: it would leave the destination folder", key=key)
    return target


# ---------------------------------------------------------------------- client


def _require_boto3() -> None:
    """Raise a :class:`FetchError` saying how to install S3 support when boto3 is missing (the ``s3`` extra)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise FetchError("S3 support needs boto3: pip install 'fashion-reco[s3]'") from None


def make_s3_client(options: S3Options | None = None, /, **fields: Unpack[S3OptionFields]) -> S3Client:
    """A boto3 S3 client configured as :func:`fetch_s3` uses it (see the module docstring for ``unsigned``)."""
    opts = _options(options, fields)
    unsigned, endpoint_url = opts.unsigned, opts.endpoint_url
    _require_boto3()
    import boto3
    import botocore
    import botocore.exceptions
    from botocore.config import Config

    try:
        session = boto3.session.Session()
        if unsigned is None:
            unsigned = session.get_credentials() is None
            if unsigned:
                logger.info("no AWS credentials found: sending unsigned (anonymous) S3 requests")
        config = Config(
            retries={"mode": opts.retry_mode, "max_attempts": opts.max_attempts},
            max_pool_connections=max(10, 2 * opts.max_concurrency),
            read_timeout=opts.read_timeout,
            connect_timeout=opts.connect_timeout,
            signature_version=botocore.UNSIGNED if unsigned else None,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        return session.client("s3", endpoint_url=endpoint_url, config=config)
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise FetchError(f"cannot create the S3 client: {type(exc).__name__}: {exc}") from None


def _secrets(client: S3Client) -> list[str]:
    """The client's credential strings, to scrub from any message (best effort; never logged)."""
    try:
        creds = getattr(client, "_request_signer")._credentials  # noqa: B009 - botocore internals, read only
        frozen = creds.get_frozen_credentials() if creds is not None else None
    except Exception:  # redaction must never break a fetch
        return []
    if frozen is None:
        return []
    return [s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s and len(s) >= 4]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _describe(exc: BaseException) -> tuple[str, bool]:
    """A one-line reason and whether the failure is permanent (4xx) rather than transient."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(error.get("Code") or status or "error")
        message = error.get("Message") or ""
        return f"{code} (HTTP {status}){': ' + message if message else ''}", bool(
            status and 400 <= status < 500
        )
    if isinstance(exc, FetchError):
        return exc.reason, not isinstance(exc, _CorruptDownload)
    if isinstance(exc, OSError) and not type(exc).__module__.startswith(("botocore", "urllib3")):
        return f"cannot write the file: {exc.strerror or exc}", True
    return f"{type(exc).__name__}: {exc}", False


def _listing_error(exc: BaseException, bucket: str, prefix: str, secrets: Sequence[str]) -> FetchError:
    from botocore.exceptions import ClientError, NoCredentialsError

    where = f"s3://{bucket}/{prefix}"
    if isinstance(exc, NoCredentialsError):
        return FetchError(
            "no AWS credentials found; configure them, or pass unsigned=True for a public bucket", key=where
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _DENIED or status == 403:
            return FetchError(
                f"access denied listing bucket {bucket!r} ({code or 'HTTP 403'}): check the credentials and the "
                "bucket policy (s3:ListBucket), or pass unsigned=True for a public bucket",
                key=where,
            )
        if code in _MISSING_BUCKET or (status == 404 and not code):
            return FetchError(f"no such bucket {bucket!r} ({code or 'HTTP 404'})", key=where)
    reason, _ = _describe(exc)
    return FetchError(f"cannot list objects: {_scrub(reason, secrets)}", key=where)


# ---------------------------------------------------------------------- fetching


def _md5(handle: Any) -> str:
    """Hex MD5 of a binary file object, read from where it stands in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _md5_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return _md5(handle)


def _server_side_encrypted(client: S3Client, bucket: str, key: str) -> bool:
    """SSE-KMS / SSE-C objects have ETags that are not the MD5 of their content."""
    head = client.head_object(Bucket=bucket, Key=key)
    return str(head.get("ServerSideEncryption", "")).startswith("aws:kms") or bool(
        head.get("SSECustomerAlgorithm")
    )


def _is_complete(client: S3Client, bucket: str, obj: S3Object, target: Path, verify: bool) -> bool:
    try:
        if not target.is_file() or target.stat().st_size != obj["Size"]:
            return False
    except OSError:
        return False
    etag = str(obj.get("ETag", "")).strip('"')
    if not verify or not _PLAIN_MD5.match(etag) or _md5_file(target) == etag.lower():
        return True
    return _server_side_encrypted(client, bucket, obj["Key"])


class _FromListing:
    """s3transfer subscriber handing over the size and ETag from the listing, which saves the HEAD request
    s3transfer would otherwise make per object (the ETag still guards multipart downloads with If-Match)."""

    def __init__(self, size: int, etag: str | None) -> None:
        self.size, self.etag = size, etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)
        if self.etag:
            future.meta.provide_object_etag(self.etag)

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        pass

    def on_done(self, future: Any, **kwargs: Any) -> None:
        pass


def _fetch_one(
    client: S3Client, manager: TransferManager, bucket: str, obj: S3Object, target: Path, verify: bool
) -> int | None:
    """Download one object unless it is already complete; returns the bytes downloaded, or None when skipped."""
    if _is_complete(client, bucket, obj, target, verify):
        return None
    key, size = obj["Key"], int(obj["Size"])
    etag = str(obj.get("ETag", "")).strip('"').lower()
    if target.is_dir():
        raise FetchError("a folder of the same name is in the way", key=key)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(target, "w+b") as handle:
        # what client.download_fileobj does, on one shared TransferManager and without its HEAD request
        manager.download(
            bucket, key, handle, subscribers=[cast("BaseSubscriber", _FromListing(size, obj.get("ETag")))]
        ).result()
        handle.flush()
        written = os.fstat(handle.fileno()).st_size
        if written != size:
            raise _CorruptDownload(f"incomplete download: {written} of {size} bytes", key=key)
        if verify and _PLAIN_MD5.match(etag):
            handle.seek(0)
            if _md5(handle) != etag and not _server_side_encrypted(client, bucket, key):
                raise _CorruptDownload("checksum mismatch: content MD5 differs from the ETag", key=key)
    return size


def _iter_objects(
    client: S3Client, bucket: str, prefix: str, suffixes: tuple[str, ...] | None
) -> Iterator[S3Object]:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()) or ():
            key = obj["Key"]
            if key.endswith("/") and int(obj.get("Size", 0)) == 0:
                continue  # a "folder" placeholder object
            if suffixes is None or key.lower().endswith(suffixes):
                yield obj


def _sweep_partials(dest: Path, suffixes: tuple[str, ...] | None) -> int:
    """Remove temporary files that an interrupted fetch left below ``dest``."""
    removed = 0
    for dirpath, _dirnames, filenames in os.walk(dest):
        for name in filenames:
            match = _PARTIAL.match(name)
            if match and (suffixes is None or match.group("name").lower().endswith(suffixes)):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def fetch_s3(
    uri: str,
    dest: str | os.PathLike[str],
    options: S3Options | None = None,
    *,
    client: S3Client | None = None,
    progress: bool = False,
    on_file: OnFile | None = None,
    **fields: Unpack[S3OptionFields],
) -> FetchReport:
    """Download every object under ``uri`` (``s3://bucket/prefix``) whose key ends with one of the wanted suffixes
    into ``dest``, keeping sub-folders; resumable (see the module docstring).

    ``options`` (an :class:`S3Options`; any of its fields may also be given as keywords, which win) sets the
    endpoint, credentials, suffixes, concurrency, retries, timeouts and verification: ``max_concurrency`` objects
    are fetched at once (also boto3's ``TransferConfig.max_concurrency`` for the parts of a large object);
    botocore retries each request, and objects that still fail with a transient error get one more pass.
    ``client`` replaces the client built from the options. ``on_file(key, outcome)`` is called from the main
    thread as each object ends (``"downloaded"``, ``"skipped"`` or ``"failed"``). ``progress`` shows a tqdm bar.

    Listing problems (access denied, no such bucket, unreachable endpoint) raise :class:`FetchError` naming the
    bucket and prefix; a per-object failure (including an unsafe key) is recorded in ``report.failed``.
    """
    opts = _options(options, fields)
    max_concurrency, verify = opts.max_concurrency, opts.verify
    _require_boto3()
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm.auto import tqdm

    bucket, prefix = parse_s3_uri(uri)
    wanted = None if opts.suffixes is None else tuple(s.lower() for s in opts.suffixes)
    root = Path(dest)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(
            f"cannot create the destination folder: {exc.strerror or exc}", key=str(root)
        ) from None
    if client is None:
        client = make_s3_client(opts)
    secrets = _secrets(client)
    swept = _sweep_partials(root, wanted)
    if swept:
        logger.info("removed %d partial file(s) left by an interrupted fetch in %s", swept, root)
    transfer = TransferConfig(
        max_concurrency=max_concurrency,
        use_threads=max_concurrency > 1,
        preferred_transfer_client="classic",  # the CRT client (when installed) takes no subscribers with sizes
    )
    report = FetchReport(uri=f"s3://{bucket}/{prefix}", dest=str(root))
    retry: list[tuple[S3Object, Path]] = []
    bar = tqdm(desc=f"s3://{bucket}/{prefix}", unit="file", disable=not progress, leave=False)

    def settle(future: Future[int | None], obj: S3Object, target: Path, last_pass: bool) -> None:
        key = obj["Key"]
        exc = future.exception()
        if exc is None:
            size = future.result()
            if size is None:
                outcome = "skipped"
                report.skipped_keys.append(key)
            else:
                outcome = "downloaded"
                report.downloaded_keys.append(key)
                report.bytes += size
        else:
            reason, permanent = _describe(exc)
            reason = _scrub(reason, secrets)
            if not permanent and not last_pass:
                retry.append((obj, target))
                return
            report.failed[key] = reason
            outcome = "failed"
            logger.warning("could not fetch %r: %s", f"s3://{bucket}/{key}", reason)
        bar.update(1)
        if on_file is not None:
            on_file(key, outcome)

    def run(jobs: Iterator[tuple[S3Object, Path]], last_pass: bool) -> None:
        pending: dict[Future[int | None], tuple[S3Object, Path]] = {}
        with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="fetch-s3") as pool:
            try:
                for obj, target in jobs:
                    if len(pending) >= 4 * max_concurrency:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            settle(future, *pending.pop(future), last_pass)
                    future = pool.submit(_fetch_one, client, manager, bucket, obj, target, verify)
                    pending[future] = (obj, target)
                for future in wait(pending).done:
                    settle(future, *pending.pop(future), last_pass)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def listed() -> Iterator[tuple[S3Object, Path]]:
        try:
            for obj in _iter_objects(client, bucket, prefix, wanted):
                bar.total = (bar.total or 0) + 1
                try:
                    target = key_to_path(root, prefix, obj["Key"])
                except FetchError as exc:
                    report.failed[obj["Key"]] = exc.reason
                    logger.warning("skipping %r: %s", f"s3://{bucket}/{obj['Key']}", exc.reason)
                    bar.update(1)
                    if on_file is not None:
                        on_file(obj["Key"], "failed")
                    continue
                yield obj, target
        except (ClientError, BotoCoreError) as exc:
            raise _listing_error(exc, bucket, prefix, secrets) from None

    manager = create_transfer_manager(client, transfer)
    interrupted = True
    try:
        run(listed(), last_pass=False)
        if retry:
            logger.info("retrying %d object(s) after transient errors", len(retry))
            again, retry[:] = list(retry), []
            run(iter(again), last_pass=True)
        interrupted = False
    finally:
        manager.shutdown(cancel=interrupted)  # an error or Ctrl-C cancels transfers still in flight
        bar.close()
    report.downloaded_keys.sort()
    report.skipped_keys.sort()
    report.downloaded, report.skipped = len(report.downloaded_keys), len(report.skipped_keys)
    report.failed = dict(sorted(report.failed.items()))
    logger.info("%s", report.summary())
    return report
