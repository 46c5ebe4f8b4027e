"""A catalogue kept in S3 (or any S3-compatible store): fetch it, build the catalogue, embed it, "more like this".

    python examples/s3_catalogue.py --uri s3://my-bucket/catalogue/                 # AWS, default credential chain
    python examples/s3_catalogue.py --uri s3://public-bucket/shop/ --unsigned      # a public bucket, no credentials
    python examples/s3_catalogue.py --uri s3://shop/photos/ --endpoint-url http://localhost:9000   # MinIO, R2, ...
    python examples/s3_catalogue.py --smoke     # offline: starts moto's S3 server on 127.0.0.1, uploads real photos

The prefix is laid out like a folder catalogue — ``<prefix>/<label>/<photo>.jpg`` — or has a ``manifest.csv`` at its
root (see docs/data-formats.md). ``Catalogue.from_s3`` downloads every photo and CSV under the prefix into
``--dest`` (concurrently, retried, each file written atomically) and builds the catalogue from the local copy.
Running it again downloads nothing that is already complete: fetches resume.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fashion_reco import FashionRecommender, RecommenderConfig
from fashion_reco.data import Catalogue, S3Options, fetch_s3, load_clothing, sample_catalogue

SMOKE_BUCKET = "fashion-reco-example"
SMOKE_PREFIX = "shop/"
PHOTOS_PER_CLASS = 3


def make_config(smoke: bool) -> RecommenderConfig:
    """One 64 px epoch for ``smoke``; a few minutes at 96 px otherwise."""
    if smoke:
        return RecommenderConfig(
            data={"num_workers": 0},
            model={
                "image_size": 64,
                "head_epochs": 0,
                "finetune_epochs": 1,
                "augment": False,
                "batch_size": 16,
            },
        )
    return RecommenderConfig(
        model={"image_size": 96, "head_epochs": 1, "finetune_epochs": 3, "max_train_seconds": 240}
    )


@contextmanager
def local_s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1 (no network, no AWS account); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def upload_real_photos(endpoint_url: str, config: RecommenderConfig) -> list[str]:
    """Put a few real photos per class into a public-read bucket as ``shop/<label>/<file>``; returns the keys."""
    import boto3

    labels_csv = config.data.root / "clothing" / "labels.csv"
    source = load_clothing(config.data.root) if labels_csv.is_file() else sample_catalogue()
    items = source.to_frame().sort_values("item_id").groupby("label").head(PHOTOS_PER_CLASS)
    client = boto3.client(  # dummy credentials: moto accepts any
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="example-access-key",
        aws_secret_access_key="example-secret-key",  # noqa: S106
    )
    client.create_bucket(Bucket=SMOKE_BUCKET)
    keys = []
    for path, label in zip(items["image_path"], items["label"], strict=True):
        key = f"{SMOKE_PREFIX}{label}/{Path(path).name}"
        client.put_object(Bucket=SMOKE_BUCKET, Key=key, Body=Path(path).read_bytes(), ACL="public-read")
        keys.append(key)
    return keys


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="s3://bucket/prefix of the catalogue (not needed with --smoke)")
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO, R2, Ceph, moto, ...)")
    parser.add_argument(
        "--unsigned",
        action="store_true",
        default=None,
        help="anonymous requests (public bucket); default: credentials when found, else anonymous",
    )
    parser.add_argument("--dest", type=Path, help="local copy of the catalogue (default: <out>/catalogue)")
    parser.add_argument("--out", type=Path, default=Path("out/s3_catalogue"), help="output folder")
    parser.add_argument("--smoke", action="store_true", help="offline: local moto server, a few real photos")
    args = parser.parse_args(argv)
    if not args.smoke and not args.uri:
        parser.error("--uri is required (or pass --smoke)")
    return args


def run(args: argparse.Namespace, uri: str, endpoint_url: str | None, unsigned: bool | None) -> dict:
    """Fetch, build, embed, similar items; returns a JSON-ready summary."""
    config = make_config(args.smoke)
    dest = args.dest or args.out / "catalogue"
    outcomes: Counter[str] = Counter()

    # 1. fetch + build in one call; one typed S3Options object (like boto3's TransferConfig) says how
    options = S3Options.from_data_config(config.data, endpoint_url=endpoint_url, unsigned=unsigned)
    catalogue = Catalogue.from_s3(uri, dest, options, on_file=lambda key, outcome: outcomes.update([outcome]))
    print(f"fetched {uri} → {dest}: {dict(outcomes)}")
    print(f"catalogue: {catalogue!r}")

    # 2. a second fetch finds every file complete and downloads nothing (this is how an interrupted fetch resumes)
    again = fetch_s3(uri, dest, options)
    print(f"fetched again: {again.summary()}")

    # 3. train the image model on the folder labels, embed, and ask for "more like this"
    reco = FashionRecommender(config).fit(catalogue, progress=not args.smoke)
    query = str(catalogue.item_ids[0])
    similar = reco.similar_items([query], k=5)
    print(f"\nmore like this: {query}\n{similar.to_string(index=False)}")
    similar.to_csv(args.out / "similar.csv", index=False)
    return {
        "uri": uri,
        "dest": str(dest),
        "first_fetch": dict(outcomes),
        "second_fetch": {
            "downloaded": again.downloaded,
            "skipped": again.skipped,
            "failed": len(again.failed),
        },
        "item_ids": [str(i) for i in catalogue.item_ids],
        "classes": catalogue.classes,
        "embedding_shape": list(reco.item_embeddings.shape),
        "query_item": query,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns 0 when every object was fetched and the catalogue was embedded."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        with local_s3_server() as endpoint_url:
            keys = upload_real_photos(endpoint_url, make_config(True))
            print(f"uploaded {len(keys)} real photos to s3://{SMOKE_BUCKET}/{SMOKE_PREFIX} on {endpoint_url}")
            summary = run(args, f"s3://{SMOKE_BUCKET}/{SMOKE_PREFIX}", endpoint_url, True)
            summary["uploaded_keys"] = keys
    else:
        summary = run(args, args.uri, args.endpoint_url, args.unsigned)
    (args.out / "s3_catalogue.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\nsummary written to {args.out / 's3_catalogue.json'}")
    return 0 if summary["second_fetch"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
