"""A hostile corpus across every public entry point: each case either gives a result or a FashionRecoError whose
message points the right way — never another exception. Cases are data (name, call, expected error and text), so
the table reads as the list of what a new user may throw at the library."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashion_reco import FashionRecommender
from fashion_reco.cli import app
from fashion_reco.config import RecommenderConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.datasets import sample_catalogue
from fashion_reco.data.images import load_image
from fashion_reco.data.interactions import Interactions
from fashion_reco.errors import (
    ArtefactError,
    CatalogueError,
    ConfigError,
    FashionRecoError,
    FashionRecoWarning,
    IdentifierError,
    ImageError,
    InteractionsError,
    NotFittedError,
    RecommendError,
)
from fashion_reco.snowflake.identifiers import validate_identifier

PHOTO = Path(sample_catalogue().image_paths[0])
EVENTS = "customer_id,item_id,event_type,timestamp\n"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png() -> bytes:
    """A valid PNG header claiming 100k x 100k pixels (10 GP): refused before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[Path], object]  # gets a fresh tmp folder
    error: type[FashionRecoError] | None  # None: must succeed
    text: str = ""  # a regex the message must contain


def _write(tmp: Path, name: str, content: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _manifest(tmp: Path, body: str, encoding: str = "utf-8") -> Catalogue:
    return Catalogue.from_manifest(_write(tmp, "manifest.csv", body.encode(encoding)))


def _events(tmp: Path, rows: str, **kwargs: object) -> Interactions:
    return Interactions.from_csv(_write(tmp, "events.csv", EVENTS + rows), **kwargs)  # type: ignore[arg-type]


def _customers(tmp: Path, body: str) -> Customers:
    return Customers.from_csv(_write(tmp, "customers.csv", body))


def _toml(tmp: Path, text: str) -> RecommenderConfig:
    return RecommenderConfig.from_toml(_write(tmp, "config.toml", text))


def _photo_frame(**extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ["a", "b"], "image_path": [str(PHOTO)] * 2, **extra})


CATALOGUE = [
    Case(
        "url in image_path",
        lambda t: _manifest(t, "item_id,image_path\na,https://cdn.shop/a.jpg\n"),
        CatalogueError,
        "holds a URL.*image_uri",
    ),
    Case(
        "s3 url in image_path",
        lambda t: _manifest(t, "item_id,image_path\na,s3://b/a.jpg\n"),
        CatalogueError,
        "image_uri column",
    ),
    Case(
        "folder as image_path",
        lambda t: _manifest(t, f"item_id,image_path\na,{t}\n"),
        CatalogueError,
        "a folder, not a file",
    ),
    Case(
        "cp1252 manifest",
        lambda t: _manifest(t, "item_id,image_path,name\na,x.jpg,Café Crème\n", "cp1252"),
        CatalogueError,
        "cp1252",
    ),
    Case(
        "cp1252 read as cp1252",
        lambda t: Catalogue.from_manifest(
            _write(t, "m.csv", f"item_id,image_path,name\na,{PHOTO},Café\n".encode("cp1252")),
            encoding="cp1252",
        ),
        None,
    ),
    Case("header only", lambda t: _manifest(t, "item_id,image_path\n"), CatalogueError, "no items"),
    Case("empty file", lambda t: _manifest(t, ""), CatalogueError, ""),
    Case("NUL bytes", lambda t: _manifest(t, "item_id,image_path\na\0,x.jpg\n"), CatalogueError, ""),
    Case(
        "duplicate ids",
        lambda t: _manifest(t, f"item_id,image_path\na,{PHOTO}\na,{PHOTO}\n"),
        CatalogueError,
        "duplicate",
    ),
    Case(
        "image_uri not a uri",
        lambda t: _manifest(t, "item_id,image_uri\na,photo.jpg\n"),
        CatalogueError,
        "not a URI",
    ),
    Case(
        "unknown split",
        lambda t: _manifest(t, f"item_id,image_path,split\na,{PHOTO},holdout\n"),
        CatalogueError,
        "unknown split",
    ),
    Case(
        "utf-16 manifest",
        lambda t: _manifest(t, "item_id,image_path\na,x.jpg\n", "utf-16"),
        CatalogueError,
        "UTF-16",
    ),
    Case(
        "path traversal",
        lambda t: _manifest(t, "item_id,image_path\na,../../../../etc/shadow.jpg\n"),
        CatalogueError,
        "not found",
    ),
    Case(
        "folder scan of a file",
        lambda t: Catalogue.from_folder(_write(t, "x.jpg", b"x")),
        CatalogueError,
        "not a folder",
    ),
    Case(
        "subset with unknown id",
        lambda t: Catalogue.from_frame(_photo_frame()).subset(["zzz"]),
        CatalogueError,
        "not in the catalogue",
    ),
    Case("mixed attribute coerced", lambda t: Catalogue.from_frame(_photo_frame(size=[38, "M"])), None),
    Case(
        "list attribute refused",
        lambda t: Catalogue.from_frame(_photo_frame(tags=[["x"], 2])),
        CatalogueError,
        "column 'tags'.*holds a list",
    ),
    Case(
        "dict attribute refused",
        lambda t: Catalogue.from_frame(_photo_frame(meta=[{"a": 1}, "x"])),
        CatalogueError,
        "column 'meta'",
    ),
    Case(
        "not a frame", lambda t: Catalogue.from_frame([1, 2]), CatalogueError, "expected a pandas DataFrame"
    ),
    Case(
        "NaN text id is missing",
        lambda t: _manifest(t, f"item_id,image_path\nNaN,{PHOTO}\n"),
        CatalogueError,
        "item_id",
    ),
]

IMAGES = [
    Case(
        "url as image",
        lambda t: load_image("https://cdn.shop/a.jpg"),
        ImageError,
        "a URL, not a local file.*image_uri",
    ),
    Case("folder as image", lambda t: load_image(t), ImageError, "a folder, not a file"),
    Case("zero bytes", lambda t: load_image(_write(t, "a.jpg", b"")), ImageError, "empty"),
    Case("text named jpg", lambda t: load_image(_write(t, "a.jpg", "hello")), ImageError, "not an image"),
    Case(
        "truncated jpeg", lambda t: load_image(_write(t, "a.jpg", PHOTO.read_bytes()[:300])), ImageError, ""
    ),
    Case("1x1 png", lambda t: load_image(_png(1, 1)), ImageError, "small|side"),
    Case("decompression bomb", lambda t: load_image(_bomb_png()), ImageError, "bomb|pixels"),
    Case("extreme aspect ratio", lambda t: load_image(_png(2000, 20)), ImageError, "aspect"),
    Case("unsupported source", lambda t: load_image(42), ImageError, "unsupported image source"),  # type: ignore[arg-type]
    Case("good photo", lambda t: load_image(PHOTO), None),
]

INTERACTIONS = [
    Case(
        "infinite quantity",
        lambda t: Interactions.from_csv(
            _write(t, "e.csv", EVENTS.strip() + ",quantity\nc,i,view,2024-01-01,inf\n")
        ),
        InteractionsError,
        "finite",
    ),
    Case(
        "text quantity",
        lambda t: Interactions.from_csv(
            _write(t, "e.csv", EVENTS.strip() + ",quantity\nc,i,view,2024-01-01,lots\n")
        ),
        InteractionsError,
        "not a number",
    ),
    Case(
        "garbage timestamp",
        lambda t: _events(t, "c,i,view,yesterday-ish\n"),
        InteractionsError,
        "unparseable timestamp",
    ),
    Case(
        "unknown event",
        lambda t: _events(t, "c,i,wishlist,2024-01-01\n"),
        InteractionsError,
        "unknown event type",
    ),
    Case(
        "all events in the future",
        lambda t: _events(t, "c,i,view,2200-01-01\n").exclude_future(),
        InteractionsError,
        "all 1 events are dated after now",
    ),
    Case(
        "now that is no date",
        lambda t: _events(t, "c,i,view,2024-01-01\n").exclude_future("soon"),
        InteractionsError,
        "not a timestamp",
    ),
    Case(
        "mixed extra column",
        lambda t: Interactions.from_frame(
            pd.DataFrame(
                {
                    "customer_id": ["c", "d"],
                    "item_id": ["i", "i"],
                    "event_type": ["view"] * 2,
                    "timestamp": ["2024-01-01"] * 2,
                    "page": [3, "home"],
                }
            )
        ),
        None,
    ),
    Case(
        "mixed time zones",
        lambda t: _events(t, "c,i,view,2024-01-01T10:00:00+02:00\nc,i,view,2024-01-01 09:00:00\n"),
        None,
    ),
    Case(
        "None text customer is missing",
        lambda t: _events(t, "None,i,view,2024-01-01\n"),
        InteractionsError,
        "customer_id",
    ),
    Case(
        "whitespace item is missing",
        lambda t: _events(t, "c,   ,view,2024-01-01\n"),
        InteractionsError,
        "item_id",
    ),
]

CUSTOMERS = [
    Case(
        "mixed profile column",
        lambda t: Customers.from_frame(pd.DataFrame({"customer_id": ["a", "b"], "shoe": [42, "L"]})),
        None,
    ),
    Case(
        "duplicate customer", lambda t: _customers(t, "customer_id\na\na\n"), InteractionsError, "duplicate"
    ),
    Case(
        "bad signup date",
        lambda t: _customers(t, "customer_id,signup_date\na,last spring\n"),
        InteractionsError,
        "unparseable date",
    ),
    Case(
        "set attribute refused",
        lambda t: Customers.from_frame(pd.DataFrame({"customer_id": ["a", "b"], "s": [{1}, "x"]})),
        InteractionsError,
        "column 's'",
    ),
    Case("NaN customer id", lambda t: _customers(t, "customer_id\nNaN\n"), InteractionsError, "customer_id"),
]

CONFIG = [
    Case(
        "nan event weight",
        lambda t: _toml(t, "[blend.event_weights]\npurchase = nan\n"),
        ConfigError,
        "purchase|event_weights",
    ),
    Case(
        "inf half-life", lambda t: _toml(t, "[blend]\nhalf_life_days = inf\n"), ConfigError, "half_life_days"
    ),
    Case("negative k", lambda t: _toml(t, "[blend]\nk = -3\n"), ConfigError, "k"),
    Case("unknown key", lambda t: _toml(t, "[blend]\nkay = 3\n"), ConfigError, "kay"),
    Case("toml syntax", lambda t: _toml(t, "[blend\nk = 3\n"), ConfigError, ""),
    Case(
        "bad on_bad_image",
        lambda t: _toml(t, "[data]\non_bad_image = 'ignore'\n"),
        ConfigError,
        "on_bad_image",
    ),
    Case("drop policy accepted", lambda t: _toml(t, "[data]\non_bad_image = 'drop'\n"), None),
    Case(
        "missing config file",
        lambda t: RecommenderConfig.from_toml(t / "nope.toml"),
        ConfigError,
        "nope.toml",
    ),
]

SNOWFLAKE = [
    Case(
        "injection in table name",
        lambda t: validate_identifier("items; drop table x", "table"),
        IdentifierError,
        "",
    ),
    Case("empty identifier", lambda t: validate_identifier("", "table"), IdentifierError, ""),
    Case("quote in identifier", lambda t: validate_identifier('a"b', "column"), IdentifierError, ""),
    Case("too many parts", lambda t: validate_identifier("a.b.c.d", "table"), IdentifierError, "parts"),
    Case("non-string identifier", lambda t: validate_identifier(7, "table"), IdentifierError, "string"),
    Case("unicode identifier", lambda t: validate_identifier("tëst", "table"), IdentifierError, ""),
    Case("good identifier", lambda t: validate_identifier("db.sch.items", "table"), None),
]

BUNDLES = [
    Case(
        "load a file",
        lambda t: FashionRecommender.load(_write(t, "x", "x")),
        ArtefactError,
        "folder not found|missing",
    ),
    Case(
        "load an empty folder",
        lambda t: FashionRecommender.load(t),
        ArtefactError,
        "missing fashion_reco.json",
    ),
    Case(
        "binary manifest",
        lambda t: (_write(t, "fashion_reco.json", b"\xff\xfe\x00garbage"), FashionRecommender.load(t)),
        ArtefactError,
        "not valid JSON",
    ),
    Case(
        "deeply nested manifest",
        lambda t: (_write(t, "fashion_reco.json", "[" * 100_000 + "]" * 100_000), FashionRecommender.load(t)),
        ArtefactError,
        "",
    ),
    Case(
        "manifest of another kind",
        lambda t: (_write(t, "fashion_reco.json", '{"format": "x"}'), FashionRecommender.load(t)),
        ArtefactError,
        "format 'x'",
    ),
    Case("save before fit", lambda t: FashionRecommender().save(t / "b"), NotFittedError, "fit"),
]

ALL = CATALOGUE + IMAGES + INTERACTIONS + CUSTOMERS + CONFIG + SNOWFLAKE + BUNDLES


def test_the_corpus_is_large() -> None:
    assert len(ALL) + len(API_CASES) + len(CLI_CASES) >= 60


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.name)
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FashionRecoWarning)
        if case.error is None:
            case.call(tmp_path)
            return
        try:
            case.call(tmp_path)
        except FashionRecoError as exc:
            assert isinstance(exc, case.error), f"{type(exc).__name__}: {exc}"
            assert pytest.importorskip("re").search(case.text, str(exc)), str(exc)
            assert "\n" not in str(exc).strip() or case.error is ConfigError
        else:
            pytest.fail(f"{case.name}: no error")


# ------------------------------------------------------------------ API of a fitted recommender

API_CASES: list[tuple[str, Callable[[FashionRecommender], object], str]] = [
    ("k = 0", lambda r: r.recommend(["c"], k=0), "at least 1"),
    ("k = nan", lambda r: r.recommend(["c"], k=math.nan), "whole number"),
    ("k = '5'", lambda r: r.recommend(["c"], k="5"), "whole number"),
    ("k = 2.5", lambda r: r.recommend(["c"], k=2.5), "whole number"),
    ("k = True", lambda r: r.similar_items(["x"], k=True), "whole number"),
    ("similar k = -1", lambda r: r.similar_items(["x"], k=-1), "at least 1"),
    ("test_days = inf", lambda r: r.evaluate_time_split(r.interactions, test_days=math.inf), "finite"),
    ("test_days = 0", lambda r: r.evaluate_time_split(r.interactions, test_days=0), "above 0"),
    ("evaluate k = 0", lambda r: r.evaluate(r.interactions, k=0), "at least 1"),
]


@pytest.mark.parametrize(("name", "call", "text"), API_CASES, ids=[c[0] for c in API_CASES])
def test_api_arguments(tiny_reco: FashionRecommender, name: str, call, text: str) -> None:
    with pytest.raises(RecommendError, match=text):
        call(tiny_reco)


def test_fit_refuses_bad_embeddings_and_now(tiny_model, tiny_catalogue, tiny_world) -> None:
    reco = FashionRecommender(image_model=tiny_model)
    for bad, text in [
        (np.zeros((3, 8)), "one row per catalogue item"),
        (np.full((len(tiny_catalogue), 8), np.nan), "NaN or inf"),
        (np.array([["a"] * 8] * len(tiny_catalogue)), "not a numeric array"),
    ]:
        with pytest.raises(RecommendError, match=text):
            reco.fit(tiny_catalogue, item_embeddings=bad, progress=False)
    with pytest.raises(RecommendError, match="now must be a date"):
        reco.fit(
            tiny_catalogue, tiny_world["clicks"], item_embeddings=tiny_world["embeddings"], now="whenever"
        )


# ------------------------------------------------------------------ CLI: one line, exit code 2

runner = CliRunner()

CLI_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("missing bundle", lambda t: ["recommend", "--model", str(t / "nope"), "c1"], "folder not found"),
    (
        "foreign folder as bundle",
        lambda t: ["similar", "--model", str(_write(t, "notes.txt", "x").parent), "a"],
        "missing fashion_reco.json",
    ),
    (
        "config with nan",
        lambda t: [
            "fit",
            "--out",
            str(t / "o"),
            "--config",
            str(_write(t, "c.toml", "[blend]\nhalf_life_days = nan\n")),
        ],
        "half_life_days",
    ),
    (
        "fit with a garbage --now",
        lambda t: ["fit", "--out", str(t / "o"), "--catalogue", str(t / "none"), "--now", "soon"],
        "error:",
    ),
]


@pytest.mark.parametrize(("name", "args", "text"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_errors_are_one_line(tmp_path: Path, name: str, args, text: str) -> None:
    result = runner.invoke(app, args(tmp_path))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], result.output
    assert "Traceback" not in result.output and "pydantic" not in result.output
