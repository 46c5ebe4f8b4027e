"""Report fixtures: the real ``FashionRecommender`` fitted on 40 real photos with a tiny configuration (64 px input,
one epoch), a synthetic clickstream, a two-k evaluation, hostile ids from "user data", and the rendered report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from fashion_reco.config import RecommenderConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.synthetic import generate_clickstream, generate_customers
from fashion_reco.facade import FashionRecommender
from fashion_reco.model.image_model import ImageModel
from fashion_reco.report.html import write_report

# Strings a retailer's data could contain; the report must show them as text, never as markup.
EVIL_ITEM = "<script>alert(1)</script>"
EVIL_CUSTOMER = '"><img src=x onerror=alert(2)>'
EVIL_MODEL = "<b>evil&model</b>"
COLD_CUSTOMER = "cold-1"
KS = (4, 8)


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


def tiny_config() -> RecommenderConfig:
    return RecommenderConfig(
        model={
            "image_size": 64,
            "head_epochs": 1,
            "finetune_epochs": 0,
            "augment": False,
            "batch_size": 16,
            "max_train_images": 40,
            "num_threads": 2,
        },
        data={"num_workers": 0},
        blend={"tune": False},
    )


@pytest.fixture(scope="session")
def report_catalogue(clothing_dir: Path, clothing_labels: pd.DataFrame) -> Catalogue:
    """Four real photos per class (40): two to train, one to validate, one held-out test photo per class."""
    picked = clothing_labels.sort_values("image_id").groupby("label", sort=True).head(4)
    position = picked.groupby("label").cumcount().to_numpy()
    frame = pd.DataFrame(
        {
            "item_id": picked["image_id"].to_numpy(),
            "image_path": [str(clothing_dir / f) for f in picked["file"]],
            "label": picked["label"].to_numpy(),
            "split": pd.Series(["train", "train", "validation", "test"]).to_numpy()[position],
        }
    )
    frame.loc[0, "item_id"] = EVIL_ITEM
    return Catalogue.from_frame(frame)


@pytest.fixture(scope="session")
def fitted(report_catalogue: Catalogue) -> tuple[FashionRecommender, pd.DataFrame]:
    """The facade fitted on the first 53 days of a synthetic clickstream of 5 customers (one with a hostile id) plus
    one cold customer, and its evaluation on the last 7 days at k = 4 and 8 (one baseline renamed to a hostile name)."""
    reco = FashionRecommender(tiny_config())
    reco.train(report_catalogue, progress=False)
    embeddings = reco.embed(report_catalogue, progress=False)
    profiles = generate_customers(report_catalogue, n=6, seed=3).frame
    profiles["customer_id"] = [EVIL_CUSTOMER, *profiles["customer_id"].iloc[1:-1], COLD_CUSTOMER]
    warm = Customers.from_frame(profiles.iloc[:-1])
    clicks = generate_clickstream(report_catalogue, warm, item_embeddings=embeddings, days=60, seed=3)
    train, test = clicks.split_by_time(7)
    reco.fit(
        report_catalogue, train, Customers.from_frame(profiles), item_embeddings=embeddings, progress=False
    )
    evaluation = pd.concat([reco.evaluate(test, k=k).assign(k=k) for k in KS], ignore_index=True)
    last = evaluation["model"].iloc[-1]
    evaluation["model"] = evaluation["model"].replace({last: EVIL_MODEL})
    return reco, evaluation


@pytest.fixture(scope="session")
def reco(fitted: tuple[FashionRecommender, pd.DataFrame]) -> FashionRecommender:
    return fitted[0]


@pytest.fixture(scope="session")
def evaluation(fitted: tuple[FashionRecommender, pd.DataFrame]) -> pd.DataFrame:
    return fitted[1]


@pytest.fixture(scope="session")
def reco_without_interactions(report_catalogue: Catalogue) -> FashionRecommender:
    """Fitted on photos only, with an untrained image model: no customers, no classifier metrics."""
    config = tiny_config()
    model = ImageModel.untrained(report_catalogue.classes, config.model)
    return FashionRecommender(config, image_model=model).fit(report_catalogue, progress=False)


@pytest.fixture(scope="session")
def report_path(
    tmp_path_factory: pytest.TempPathFactory, reco: FashionRecommender, evaluation: pd.DataFrame
) -> Path:
    return write_report(reco, tmp_path_factory.mktemp("report") / "report.html", evaluation=evaluation)
