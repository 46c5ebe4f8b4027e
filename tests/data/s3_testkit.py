"""Test helpers for the S3 tests: a real S3 API server (moto's server mode) on 127.0.0.1, bucket population, an
S3-style 403 server and a fault-injecting proxy.

Not a test module: ``tests/data/conftest.py`` and ``tests/reliability/test_s3_faults.py`` load it by path under one
``sys.modules`` name (see ``load`` there), so the moto server and the big buckets are shared by the whole session.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import http.client
import http.server
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config

ACCESS_KEY = "AKIATESTFASHIONRECO1"
SECRET_KEY = "fashionRecoTestSecret/DoNotLog+0123456789ab"  # noqa: S105 - dummy, for moto
CREDENTIAL_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


_MOTO: Any = None
_BUCKETS: set[str] = set()
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request at INFO


def moto_endpoint() -> str:
    """Endpoint URL of one threaded moto S3 server (moto's server mode) on a free port of 127.0.0.1, started on
    first use and shared by every test of the session (stopped at exit)."""
    global _MOTO
    if _MOTO is None:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        atexit.register(server.stop)
        _MOTO = server
    host, port = _MOTO.get_host_and_port()
    return f"http://{host}:{port}"


def ensure_bucket(endpoint: str, bucket: str, keys: dict[str, bytes], *, acl: str | None = None) -> None:
    """Create and fill ``bucket`` once per session (several test modules share the big buckets).

    The bucket is created through the S3 API; its objects are seeded straight into the in-process moto backend that
    serves the endpoint (~0.1 s instead of ~10 s of PUTs for 1,500 objects on 2 cores), falling back to PUTs
    through the API when moto's internals differ. Either way the listing is then checked through the API. With an
    ``acl`` (e.g. ``public-read``) every object is PUT through the API with that ACL, as an uploader would."""
    if bucket in _BUCKETS:
        return
    client = admin_client(endpoint)
    if acl:
        populate(client, bucket, keys, acl=acl)
        _BUCKETS.add(bucket)
        return
    client.create_bucket(Bucket=bucket)
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, body in keys.items():
            backend.put_object(bucket, key, body)
    except (ImportError, AttributeError, KeyError, TypeError):
        populate(client, bucket, keys, create=False)
    listed = sum(
        page.get("KeyCount", 0) for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    )
    if listed != len(keys):
        populate(client, bucket, keys, create=False)
    _BUCKETS.add(bucket)


@contextlib.contextmanager
def credentials_env() -> Iterator[None]:
    """Dummy credentials in the environment (boto3's default chain finds them), no instance-metadata lookups, no
    profile or endpoint from the developer's own setup; restored on exit."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for name, value in CREDENTIAL_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        yield


def big_bucket(endpoint: str) -> dict[str, bytes]:
    """Make sure the shared big bucket exists; returns the 1,500 objects a default fetch of ``photos/`` yields."""
    wanted, everything = big_bucket_objects()
    ensure_bucket(endpoint, BIG_BUCKET, everything)
    return wanted


def admin_client(endpoint: str) -> Any:
    """A signed client with the test credentials, for creating buckets and uploading."""
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=32, s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def object_body(key: str, size: int | None = None) -> bytes:
    """Deterministic content for a key (a few hundred bytes unless ``size`` is given)."""
    seed = hashlib.sha256(key.encode()).digest()
    n = size if size is not None else 64 + seed[0] * 2
    return (seed * (n // len(seed) + 1))[:n]


def populate(
    client: Any,
    bucket: str,
    keys: dict[str, bytes],
    *,
    acl: str | None = None,
    workers: int = 16,
    create: bool = True,
) -> None:
    """Create ``bucket`` (unless ``create`` is false) and upload ``keys`` (key → body) with a thread pool."""
    extra = {"ACL": acl} if acl else {}
    if create:
        client.create_bucket(Bucket=bucket, **extra)
    with ThreadPoolExecutor(workers) as pool:
        list(
            pool.map(
                lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1], **extra), keys.items()
            )
        )


BIG_BUCKET = "catalogue-big"
BIG_PREFIX = "photos/"
BIG_COUNT = 1500


def big_bucket_objects() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The shared big bucket: (wanted, all). 1,500 photo/CSV objects in nested folders below ``photos/`` (more than
    one listing page), plus objects a fetch must leave alone: other suffixes, a folder marker, another prefix."""
    wanted = nested_keys(BIG_PREFIX, BIG_COUNT)
    extra = {f"{BIG_PREFIX}class-{i}/notes-{i}.txt": object_body(f"n{i}") for i in range(7)}
    extra[f"{BIG_PREFIX}empty-folder/"] = b""
    extra["photos2/not-under-the-prefix.jpg"] = object_body("p2")
    return wanted, {**wanted, **extra}


def nested_keys(
    prefix: str, n: int, suffixes: tuple[str, ...] = (".jpg", ".png", ".csv")
) -> dict[str, bytes]:
    """``n`` keys in nested sub-folders below ``prefix`` with deterministic bodies."""
    keys = {}
    for i in range(n):
        key = f"{prefix}class-{i % 7}/batch-{i % 3}/item-{i:05d}{suffixes[i % len(suffixes)]}"
        keys[key] = object_body(key)
    return keys


def tree_digest(root: Path) -> dict[str, tuple[int, str]]:
    """relative path → (size, md5) of every regular file below ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            out[path.relative_to(root).as_posix()] = (
                len(data),
                hashlib.md5(data, usedforsecurity=False).hexdigest(),
            )
    return out


# ---------------------------------------------------------------------- tiny S3-speaking servers


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _error_xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        "<RequestId>0000</RequestId></Error>"
    ).encode()


def etag_of(key: str, body: bytes, kms: frozenset[str] = frozenset()) -> str:
    """The object's ETag: the MD5 of its content, except for SSE-KMS objects (then an opaque 32-hex value)."""
    data = (b"kms:" + key.encode()) if key in kms else body
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def listing_xml(
    bucket: str,
    prefix: str,
    objects: dict[str, bytes],
    *,
    url_encoded: bool = True,
    kms: frozenset[str] = frozenset(),
) -> bytes:
    """A one-page ListObjectsV2 answer; keys URL-encoded as S3 does for ``encoding-type=url`` (what botocore asks
    for, so that keys with control characters survive XML)."""
    encode = (lambda k: quote_plus(k, safe="/")) if url_encoded else escape
    contents = "".join(
        f"<Contents><Key>{encode(k)}</Key><Size>{len(v)}</Size>"
        f'<ETag>"{etag_of(k, v, kms)}"</ETag>'
        "<LastModified>2024-01-01T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass></Contents>"
        for k, v in objects.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(objects)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys>{'<EncodingType>url</EncodingType>' if url_encoded else ''}"
        f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


def scripted_s3_handler(
    objects: dict[str, bytes],
    *,
    deny_list: bool,
    deny_get: bool,
    seen: list[dict[str, str]],
    corrupt: frozenset[str] = frozenset(),
    kms: frozenset[str] = frozenset(),
):
    """A minimal S3 endpoint: ListObjectsV2 answers ``objects`` (or 403 AccessDenied when ``deny_list``), GetObject
    serves them (or 403 when ``deny_get``). Keys in ``corrupt`` are served with their first byte flipped (same size,
    wrong MD5); keys in ``kms`` behave like SSE-KMS objects (opaque ETag, ``x-amz-server-side-encryption:
    aws:kms``). Records every request's headers in ``seen``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(
            self, status: int, body: bytes, content_type: str = "application/xml", key: str = ""
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 200 and key:
                self.send_header("ETag", f'"{etag_of(key, objects[key], kms)}"')
                if key in kms:
                    self.send_header("x-amz-server-side-encryption", "aws:kms")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            seen.append(
                {"method": self.command, "path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
            )
            path, _, query = self.path.partition("?")
            parts = path.lstrip("/").split("/", 1)
            bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
            from urllib.parse import parse_qs, unquote

            if not key:
                if deny_list:
                    self._send(403, _error_xml("AccessDenied", "Access Denied"))
                else:
                    params = parse_qs(query)
                    prefix = params.get("prefix", [""])[0]
                    url_encoded = params.get("encoding-type", [""])[0] == "url"
                    self._send(200, listing_xml(bucket, prefix, objects, url_encoded=url_encoded, kms=kms))
                return
            key = unquote(key)
            if deny_get:
                self._send(403, _error_xml("AccessDenied", "Access Denied"))
            elif key in objects:
                body = objects[key]
                if key in corrupt:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self._send(200, body, "application/octet-stream", key)
            else:
                self._send(404, _error_xml("NoSuchKey", "The specified key does not exist."))

        do_HEAD = do_GET

    return Handler


# ---------------------------------------------------------------------- fault-injecting proxy

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class FaultPlan:
    """Deterministic faults: the n-th time a request line is seen, a seeded hash decides its fate, so the outcome
    does not depend on thread scheduling. A request line is never faulted more than ``max_in_a_row`` times in a
    row, so botocore's retries always get through eventually."""

    KINDS = ("500", "503", "reset", "truncate", "slow")

    def __init__(
        self,
        seed: int,
        rate: float,
        *,
        slow_seconds: float = 0.05,
        max_in_a_row: int = 2,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.seed, self.rate, self.slow_seconds, self.max_in_a_row = seed, rate, slow_seconds, max_in_a_row
        self.kinds = kinds
        self._seen: dict[str, int] = {}
        self._streak: dict[str, int] = {}
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(self.KINDS, 0)
        self.requests = 0

    def decide(self, request_line: str) -> str | None:
        with self._lock:
            self.requests += 1
            n = self._seen.get(request_line, 0)
            self._seen[request_line] = n + 1
            digest = hashlib.sha256(f"{self.seed}|{request_line}|{n}".encode()).digest()
            draw = int.from_bytes(digest[:8], "big") / 2**64
            if draw >= self.rate or self._streak.get(request_line, 0) >= self.max_in_a_row:
                self._streak[request_line] = 0
                return None
            self._streak[request_line] = self._streak.get(request_line, 0) + 1
            kind = self.kinds[digest[8] % len(self.kinds)]
            self.counts[kind] += 1
            return kind


def fault_proxy_handler(upstream: str, plan: FaultPlan):
    """Forwards every request to ``upstream`` (moto) and, per ``plan``, answers 500/503 itself, resets the
    connection before answering, truncates the body mid-way then resets, or sleeps before forwarding."""
    host, port = upstream.removeprefix("http://").split(":")
    local = threading.local()

    def connection() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        return conn

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _reset(self) -> None:
            # SO_LINGER 0: close with a TCP RST, as a crashed middlebox would
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

        def _forward(self) -> tuple[int, str, list[tuple[str, str]], bytes]:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            for attempt in range(2):
                conn = connection()
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    return response.status, response.reason, response.getheaders(), response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    local.conn = None
                    if attempt:
                        raise
            raise AssertionError("unreachable")

        def _handle(self) -> None:
            fault = plan.decide(f"{self.command} {self.path} {self.headers.get('Range', '')}")
            if fault in ("500", "503"):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                code = "InternalError" if fault == "500" else "SlowDown"
                body = _error_xml(code, "injected fault")
                self.send_response(int(fault))
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            if fault == "reset":
                self._reset()
                return
            if fault == "slow":
                time.sleep(plan.slow_seconds)
            status, reason, headers, body = self._forward()
            self.send_response(status, reason)
            for name, value in headers:
                if name.lower() not in _HOP and (name.lower() != "content-length" or self.command == "HEAD"):
                    self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if fault == "truncate" and len(body) > 1:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self._reset()
                return
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    return Handler


def relative_digest(objects: dict[str, bytes], prefix: str) -> dict[str, tuple[int, str]]:
    """What ``tree_digest`` of a complete fetch of ``prefix`` must equal."""
    return {
        k[len(prefix) :]: (len(v), hashlib.md5(v, usedforsecurity=False).hexdigest())
        for k, v in sorted(objects.items())
        if k.startswith(prefix)
    }
