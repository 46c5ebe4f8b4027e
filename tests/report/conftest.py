"""Report fixtures: a small recommender over real photos, an evaluation frame, and the rendered report.

TEMPORARY stand-in: a FashionRecommender-shaped object built from real photos and numpy (pixel embeddings), used until
the blend recommender lands; to be replaced by the real facade fitted with a tiny config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.model.metrics import classification_metrics
from fashion_reco.report.html import write_report

EVIL_ITEM = "<script>alert(1)</script>"
EVIL_CUSTOMER = '"><img src=x onerror=alert(2)>'
EVIL_MODEL = "<b>evil&model</b>"
MODELS = ("blend", "popularity", "recent_popularity", "visual_only", "behaviour_only")
METRICS = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage", "novelty", "diversity")


def _embed(paths: list[str]) -> np.ndarray:
    rows = []
    for p in paths:
        with Image.open(p) as im:
            small = np.asarray(im.convert("RGB").resize((8, 8)), dtype=np.float32).ravel()
        rows.append(small - small.mean())
    x = np.stack(rows)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class StandIn:
    def __init__(self, catalogue: Catalogue, interactions: Interactions | None, customers: Customers | None) -> None:
        self.catalogue = catalogue
        self.interactions = interactions
        self.customers = customers
        self._ids = np.asarray(catalogue.item_ids, dtype=str)
        self._emb = _embed(catalogue.image_paths)
        labels = np.asarray(catalogue.labels, dtype=str)
        rng = np.random.default_rng(0)
        pred = np.where(rng.random(len(labels)) < 0.7, labels, rng.choice(catalogue.classes, len(labels)))
        self.image_model = SimpleNamespace(
            classes=catalogue.classes, metrics={"test": classification_metrics(labels, pred, catalogue.classes)}
        )

    def similar_items(self, item_ids, k=10, filter_items=None):
        rows = []
        for q in item_ids:
            i = int(np.flatnonzero(self._ids == q)[0])
            s = self._emb @ self._emb[i]
            s[i] = -np.inf
            rows += [(q, self._ids[j], float(s[j]), r) for r, j in enumerate(np.argsort(-s)[:k], 1)]
        return pd.DataFrame(rows, columns=["item_id", "similar_item_id", "score", "rank"])

    def recommend(self, customer_ids, k=12, filter_already_purchased=True, filter_items=None):
        ev = self.interactions.frame
        rows = []
        for c in customer_ids:
            seen = [int(np.flatnonzero(self._ids == s)[0]) for s in ev[ev.customer_id == c].item_id]
            s = self._emb @ self._emb[seen].mean(0) if seen else np.zeros(len(self._ids))
            reason = "looks like what you viewed <3" if seen else "popular right now"
            rows += [(c, self._ids[j], float(s[j]), r, reason) for r, j in enumerate(np.argsort(-s)[:k], 1)]
        return pd.DataFrame(rows, columns=["customer_id", "item_id", "score", "rank", "reason"])


def _catalogue(clothing_dir: Path, labels: pd.DataFrame, per_class: int) -> Catalogue:
    picked = labels.sort_values("image_id").groupby("label", sort=True).head(per_class)
    frame = pd.DataFrame({
        "item_id": picked["image_id"].to_numpy(), "image_path": [str(clothing_dir / f) for f in picked["file"]],
        "label": picked["label"].to_numpy(),
    })
    frame.loc[0, "item_id"] = EVIL_ITEM  # an id straight from user data, must come out escaped
    return Catalogue.from_frame(frame)


def _clickstream(catalogue: Catalogue, n_customers: int = 5, n_events: int = 120) -> tuple[Interactions, Customers]:
    rng = np.random.default_rng(1)
    ids = [EVIL_CUSTOMER] + [f"c{n:03d}" for n in range(1, n_customers)]
    events = pd.DataFrame({
        "customer_id": [ids[n % n_customers] for n in range(n_events)],
        "item_id": rng.choice(np.asarray(catalogue.item_ids), n_events),
        "event_type": rng.choice(["view", "view", "add_to_cart", "purchase"], n_events),
        "timestamp": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 60 * 24 * 30, n_events), unit="min"),
    })
    profiles = pd.DataFrame({
        "customer_id": [*ids, "cold-1"], "age_band": "25-34", "gender": "f", "preferred_labels": "dress;shoes",
    })
    return Interactions.from_frame(events), Customers.from_frame(profiles)


# -- a tiny DOM over html.parser, to query the report ---------------------------------------------------------------
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for node in self.iter():
            if tag is not None and node.tag != tag:
                continue
            if cls is not None and cls not in node.classes:
                continue
            if any(node.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            found.append(node)
        return found

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), parent=self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs), parent=self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}> at {self.getpos()}")
            while len(self.stack) > 1 and self.stack[-1].tag != tag:
                self.stack.pop()
        if len(self.stack) > 1:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str) -> tuple[Node, list[str]]:
    """The document root and a list of nesting errors (mismatched or unclosed tags)."""
    builder = _Builder()
    builder.feed(text)
    builder.close()
    errors = list(builder.errors)
    if len(builder.stack) > 1:
        errors.append("unclosed: " + ", ".join(n.tag for n in builder.stack[1:]))
    return builder.root, errors


@pytest.fixture(scope="session")
def parse_html() -> Callable[[str], tuple[Node, list[str]]]:
    return parse


@pytest.fixture(scope="session")
def report_catalogue(clothing_dir: Path, clothing_labels: pd.DataFrame) -> Catalogue:
    return _catalogue(clothing_dir, clothing_labels, per_class=4)


@pytest.fixture(scope="session")
def reco(report_catalogue: Catalogue) -> StandIn:
    interactions, customers = _clickstream(report_catalogue)
    return StandIn(report_catalogue, interactions, customers)


@pytest.fixture(scope="session")
def reco_without_interactions(report_catalogue: Catalogue) -> StandIn:
    bare = StandIn(report_catalogue, None, None)
    bare.image_model = SimpleNamespace(classes=report_catalogue.classes, metrics={})
    return bare


@pytest.fixture(scope="session")
def evaluation() -> pd.DataFrame:
    """One row per model and k (4, 8, 12); the blend best on the ranking metrics, a tie on diversity."""
    rows = []
    for i, model in enumerate((*MODELS, EVIL_MODEL)):
        quality = 0.3 / (1 + i)
        for k in (4, 8, 12):
            rows.append({
                "model": model, "k": k, "precision": quality * 4 / k, "recall": quality * k / 12,
                "map": quality / 2, "ndcg": quality * 0.8, "hit_rate": min(1.0, quality * 2 + k / 40),
                "coverage": 0.05 if model == "popularity" else 0.4 - 0.01 * i, "novelty": 8 + i / 10, "diversity": 0.5,
                "n_customers": 40,
            })
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def report_path(tmp_path_factory: pytest.TempPathFactory, reco: StandIn, evaluation: pd.DataFrame) -> Path:
    return write_report(reco, tmp_path_factory.mktemp("report") / "report.html", evaluation=evaluation)
