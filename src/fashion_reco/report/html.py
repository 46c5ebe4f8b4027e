"""The self-contained HTML report of a fitted ``FashionRecommender``.

One file, no network: thumbnails are embedded as ``data:`` URIs, charts are inline SVG, the stylesheet and a tiny
self-check script are inline, and a Content-Security-Policy forbids fetching anything else. Sections:

(a) "More like this" — sampled items and their visually nearest neighbours;
(b) customers — recent history next to personalised recommendations with reasons;
(c) offline evaluation — the model under test vs baselines, table and charts (metric@k lines when the table has a ``k``
    column); for a rolling-origin evaluation also the bootstrap intervals of the differences and MAP per fold;
(d) the image classifier — accuracy, macro-F1, per-class scores and the confusion matrix.

A section without its input (no interactions, no evaluation, no classifier metrics) is replaced by a short note.
The report reads only the facade's public attributes (``catalogue``, ``image_model``, ``interactions``, ``customers``,
``similar_items``, ``recommend``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Protocol

import pandas as pd

from fashion_reco._version import __version__
from fashion_reco.atomic import atomic_write_text
from fashion_reco.columns import Columns
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.interactions import Interactions
from fashion_reco.errors import NotFittedError
from fashion_reco.ids import Ids
from fashion_reco.model.image_model import ImageModel
from fashion_reco.recommend.evaluation import TimeSplitEvaluation
from fashion_reco.report import sections
from fashion_reco.report.collect import (
    ItemLookup,
    classifier_view,
    collapse_warning,
    customer_histories,
    evaluation_view,
    rolling_view,
    sample_customers,
    sample_items,
)
from fashion_reco.report.sections import SECTION_IDS, TileMaker
from fashion_reco.report.templating import render, static_text
from fashion_reco.report.thumbs import ThumbnailCache

__all__ = ["Reportable", "render_report", "write_report"]

HISTORY_LIMIT = 8


class Reportable(Protocol):
    """What the report reads from a fitted ``FashionRecommender`` (its public attributes and two queries)."""

    catalogue: Catalogue | None
    image_model: ImageModel | None
    interactions: Interactions | None
    customers: Customers | None

    def similar_items(self, item_ids: Ids, k: int = ..., filter_items: Ids | None = ...) -> pd.DataFrame: ...

    def recommend(
        self,
        customer_ids: Ids,
        k: int = ...,
        filter_already_purchased: bool = ...,
        filter_items: Ids | None = ...,
    ) -> pd.DataFrame: ...


_NAV = (
    ("gallery", "More like this"),
    ("customers", "Customers"),
    ("evaluation", "Evaluation"),
    ("classifier", "Classifier"),
)


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def write_report(
    reco: Reportable,
    path: str | Path,
    *,
    evaluation: pd.DataFrame | TimeSplitEvaluation | None = None,
    n_items: int = 8,
    n_customers: int = 6,
    k: int = 8,
    seed: int = 0,
) -> Path:
    """Render the report of ``reco`` (a fitted ``FashionRecommender``) and write it atomically to ``path``.

    ``n_items`` sampled items get a "more like this" strip of ``k`` neighbours; ``n_customers`` sampled customers
    (one cold-start customer among them when the profiles include one) get their ``k`` recommendations;
    ``evaluation`` is the frame returned by ``FashionRecommender.evaluate`` or the result of
    ``FashionRecommender.evaluate_time_split`` (its pooled table, fold table and intervals are shown). Sampling is
    seeded by ``seed``.
    """
    text = render_report(
        reco, evaluation=evaluation, n_items=n_items, n_customers=n_customers, k=k, seed=seed
    )
    target = Path(path)
    atomic_write_text(target, text)
    return target


def render_report(
    reco: Reportable,
    *,
    evaluation: pd.DataFrame | TimeSplitEvaluation | None = None,
    n_items: int = 8,
    n_customers: int = 6,
    k: int = 8,
    seed: int = 0,
) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    catalogue = reco.catalogue
    if catalogue is None:
        raise NotFittedError("nothing to report: call fit() first, or load() a saved recommender")
    items = catalogue.items
    tiles = TileMaker(ItemLookup(items), ThumbnailCache())

    query_ids = sample_items(items, n_items, seed)
    similar = reco.similar_items(query_ids, k=k) if query_ids else None
    model = reco.image_model
    warning = collapse_warning(model) if model is not None else None
    parts = [sections.gallery_section(tiles, query_ids, similar, k, warning=warning)]

    interactions = reco.interactions
    events = interactions.frame if interactions is not None else None
    profiles = reco.customers.frame if reco.customers is not None else None
    if events is None or events.empty:
        parts.append(
            sections.customers_missing_section(
                "No interactions were given to fit(): recommendations are not personalised, so there are no customer "
                "pages. Pass a clickstream (Interactions) to fit() to see them."
            )
        )
    else:
        customer_ids = sample_customers(events, profiles, n_customers, seed)
        histories = customer_histories(events, customer_ids, HISTORY_LIMIT)
        counts = events[Columns.CUSTOMER_ID].astype(str).value_counts()
        recs = reco.recommend(customer_ids, k=k)
        profile_rows: dict[str, dict[str, object]] = {}
        if profiles is not None and not profiles.empty:
            chosen = profiles[profiles[Columns.CUSTOMER_ID].astype(str).isin(set(customer_ids))]
            profile_rows = {str(r[Columns.CUSTOMER_ID]): r for r in chosen.to_dict("records")}
        parts.append(
            sections.customers_section(
                tiles,
                customer_ids,
                histories,
                {c: int(counts.get(c, 0)) for c in customer_ids},
                recs,
                profile_rows,
                k=k,
                history_limit=HISTORY_LIMIT,
            )
        )

    rolling = rolling_view(evaluation)
    metrics = evaluation.table if isinstance(evaluation, TimeSplitEvaluation) else evaluation
    if metrics is None or metrics.empty:
        parts.append(
            sections.evaluation_section(
                None,
                "No evaluation was supplied: pass the frame returned by "
                "FashionRecommender.evaluate(test_interactions).",
            )
        )
    else:
        highlight = rolling.candidate if rolling is not None else None
        parts.append(sections.evaluation_section(evaluation_view(metrics, highlight), rolling=rolling))

    view = classifier_view(model.metrics) if model is not None else None
    reason = (
        "No image model is attached."
        if model is None
        else "The image model carries no held-out metrics (e.g. it was built untrained or from embeddings only)."
    )
    parts.append(sections.classifier_section(view, reason, warning=warning))

    script = static_text("report.js")
    page = render(
        "report.html",
        title="fashion-reco report",
        version=__version__,
        csp=_csp(script),
        style=static_text("report.css"),
        summary=_summary(items, events, model),
        nav=[(SECTION_IDS[key], title) for key, title in _NAV],
        sections=parts,
        script=script,
    )
    return str(page) + "\n"


def _summary(items: pd.DataFrame, events: pd.DataFrame | None, model: ImageModel | None) -> str:
    bits = [f"{len(items):,} catalogue items"]
    if Columns.LABEL in items.columns:
        bits.append(f"{items[Columns.LABEL].nunique():,} classes")
    if events is not None and not events.empty:
        bits.append(f"{events[Columns.CUSTOMER_ID].nunique():,} customers with {len(events):,} events")
        if Columns.TIMESTAMP in events.columns:
            stamps = pd.to_datetime(events[Columns.TIMESTAMP])
            bits.append(f"{stamps.min():%Y-%m-%d} to {stamps.max():%Y-%m-%d}")
    if model is not None:
        bits.append(f"image model over {len(model.classes)} classes")
    return " · ".join(bits)
