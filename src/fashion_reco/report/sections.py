"""The report's four sections: each function shapes its data into plain values and renders one Jinja2 template.

Nothing here writes markup: the templates in ``report/templates`` do, with autoescaping on, so ids, labels,
reasons, class and model names from data are escaped wherever they land (text or attribute). Numbers are
formatted here (:func:`~fashion_reco.report.templating.fmt`), never interpolated raw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from markupsafe import Markup

from fashion_reco.columns import Columns
from fashion_reco.report.collect import METRIC_TITLES, ClassifierView, EvaluationView, ItemLookup, RollingView
from fashion_reco.report.svg import bar_chart, line_chart, model_colours
from fashion_reco.report.templating import fmt, render
from fashion_reco.report.thumbs import ThumbnailCache

__all__ = [
    "SECTION_IDS",
    "Tile",
    "TileMaker",
    "classifier_section",
    "customers_missing_section",
    "customers_section",
    "evaluation_section",
    "gallery_section",
]

SECTION_IDS = {
    "gallery": "more-like-this",
    "customers": "customers",
    "evaluation": "evaluation",
    "classifier": "classifier",
}

_EVENT_LABELS = {"view": "view", "add_to_cart": "cart", "purchase": "bought"}


@dataclass(frozen=True)
class Tile:
    """One item as the ``tile`` macro draws it: thumbnail, label, id and optional rank/score, date, reason."""

    item_id: str
    label: str
    uri: str
    width: int
    height: int
    css: str
    badge: str | None = None
    badge_kind: str = ""
    rank: int | None = None
    score: float | None = None
    when: str = ""
    reason: str = ""


class TileMaker:
    """Turns an item id into a :class:`Tile`: embedded thumbnail plus caption values."""

    def __init__(self, lookup: ItemLookup, thumbs: ThumbnailCache) -> None:
        self.lookup = lookup
        self.thumbs = thumbs

    def tile(
        self,
        item_id: object,
        *,
        classes: str = "",
        badge: str | None = None,
        badge_kind: str = "",
        rank: int | None = None,
        score: float | None = None,
        when: str = "",
        reason: str = "",
    ) -> Tile:
        """The tile of ``item_id`` (an unknown id still gets a placeholder image and its id)."""
        info = self.lookup[item_id]
        thumb = self.thumbs.get(info.image_path)
        css = " ".join(c for c in ("tile", classes, "placeholder" if thumb.placeholder else "") if c)
        return Tile(
            item_id=info.item_id,
            label=info.label or "unlabelled",
            uri=thumb.uri,
            width=thumb.width,
            height=thumb.height,
            css=css,
            badge=badge,
            badge_kind=badge_kind,
            rank=rank,
            score=score,
            when=when,
            reason=reason,
        )


# -- (a) more like this -------------------------------------------------------------------------------------------------
def gallery_section(
    tiles: TileMaker,
    query_ids: Sequence[str],
    similar: pd.DataFrame | None,
    k: int,
    *,
    warning: str | None = None,
) -> Markup:
    """Sampled items with their ``k`` visually nearest neighbours (``warning``: the collapse guard's, shown first)."""
    lead = (
        f"Sampled catalogue items (left) and their {k} nearest neighbours by cosine similarity of the image "
        "embeddings: what a product page's “more like this” strip would show."
    )
    rows = []
    if query_ids and similar is not None:
        grouped = {
            str(q): g.sort_values(Columns.RANK) for q, g in similar.groupby(Columns.ITEM_ID, sort=False)
        }
        for query in query_ids:
            neighbours = grouped.get(str(query))
            strip = [] if neighbours is None else _ranked_tiles(tiles, neighbours, Columns.SIMILAR_ITEM_ID)
            rows.append(
                {
                    "query": tiles.tile(query, classes="query", badge="query", badge_kind="query"),
                    "neighbours": strip,
                }
            )
    return render("gallery.html", anchor=SECTION_IDS["gallery"], lead=lead, rows=rows, warning=warning)


def _ranked_tiles(tiles: TileMaker, frame: pd.DataFrame, id_column: str, classes: str = "") -> list[Tile]:
    out = []
    for row in frame.itertuples(index=False):
        reason = getattr(row, Columns.REASON, None)
        out.append(
            tiles.tile(
                getattr(row, id_column),
                classes=classes,
                rank=int(getattr(row, Columns.RANK)),
                score=getattr(row, Columns.SCORE),
                reason=reason if isinstance(reason, str) else "",
            )
        )
    return out


# -- (b) customers ------------------------------------------------------------------------------------------------------
def _profile_line(profile: Mapping[str, object] | None) -> list[tuple[str, str]]:
    if not profile:
        return []
    parts = []
    for key, title in (
        ("age_band", "age"),
        ("gender", "gender"),
        ("preferred_labels", "likes"),
        ("signup_date", "since"),
    ):
        value = profile.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value == "":
            continue
        if isinstance(value, pd.Timestamp):
            value = value.date().isoformat()
        if key == "preferred_labels":
            value = ", ".join(v for v in str(value).split(";") if v)
        parts.append((title, str(value)))
    return parts


def _history_tiles(tiles: TileMaker, history: pd.DataFrame | None) -> list[Tile]:
    if history is None:
        return []
    out = []
    for row in history.itertuples(index=False):
        event = str(getattr(row, Columns.EVENT_TYPE, "") or "")
        when = getattr(row, Columns.TIMESTAMP, None)
        date = pd.Timestamp(when).strftime("%Y-%m-%d") if when is not None and not pd.isna(when) else ""
        out.append(
            tiles.tile(
                getattr(row, Columns.ITEM_ID),
                classes="small",
                badge=_EVENT_LABELS.get(event, event),
                badge_kind=event,
                when=date,
            )
        )
    return out


def customers_section(
    tiles: TileMaker,
    customer_ids: Sequence[str],
    histories: Mapping[str, pd.DataFrame],
    event_counts: Mapping[str, int],
    recommendations: pd.DataFrame,
    profiles: Mapping[str, Mapping[str, object]],
    k: int,
    history_limit: int,
) -> Markup:
    """Sampled customers: recent history next to their ``k`` recommendations with reasons."""
    lead = (
        f"Sampled customers: their {history_limit} most recent interactions (newest first) next to the top {k} "
        "personalised recommendations, each with the reason the model gives and its score."
    )
    grouped = {
        str(c): g.sort_values(Columns.RANK)
        for c, g in recommendations.groupby(Columns.CUSTOMER_ID, sort=False)
    }
    cards = []
    for customer in customer_ids:
        n_events = event_counts.get(customer, 0)
        recs = grouped.get(customer)
        cards.append(
            {
                "customer_id": customer,
                "kind": "cold" if n_events == 0 else "warm",
                "n_events": n_events,
                "profile": _profile_line(profiles.get(customer)),
                "history": _history_tiles(tiles, histories.get(customer)),
                "recommendations": [] if recs is None else _ranked_tiles(tiles, recs, Columns.ITEM_ID, "rec"),
            }
        )
    return render("customers.html", anchor=SECTION_IDS["customers"], lead=lead, cards=cards, missing=None)


def customers_missing_section(reason: str) -> Markup:
    """The customers section when there is nothing to show, saying why."""
    return render(
        "customers.html",
        anchor=SECTION_IDS["customers"],
        lead="Personalised recommendations per customer.",
        cards=[],
        missing=reason,
    )


# -- (c) evaluation -----------------------------------------------------------------------------------------------------
def _best(values: pd.Series) -> float | None:
    finite = pd.to_numeric(values, errors="coerce").dropna()
    finite = finite[finite.map(math.isfinite)]
    return float(finite.max()) if len(finite) else None


def _close(value: object, best: float) -> bool:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and abs(number - best) <= 1e-12 * max(1.0, abs(best))


def _rolling_context(rolling: RollingView | None) -> dict[str, object]:
    """Template values of the fold table and the interval table (empty when there is no rolling evaluation)."""
    if rolling is None:
        return {"fold_rows": [], "interval_rows": [], "recall_rows": []}
    fold_rows = [
        {
            "fold": int(r["fold"]),
            "window": f"{pd.Timestamp(r['cutoff']):%Y-%m-%d %H:%M} – {pd.Timestamp(r['until']):%Y-%m-%d %H:%M}",
            "customers": int(r["n_customers"]),
            "maps": [fmt(r[m], 4) for m in rolling.models],
        }
        for r in rolling.folds.to_dict("records")
    ]
    interval_rows = [
        {
            "baseline": str(r["baseline"]),
            "metric": METRIC_TITLES.get(str(r["metric"]), str(r["metric"])),
            "candidate": fmt(r["candidate_value"], 4),
            "value": fmt(r["baseline_value"], 4),
            "diff": f"{float(r['diff']):+.4f}" if math.isfinite(float(r["diff"])) else "–",
            "interval": f"[{float(r['low']):+.4f}, {float(r['high']):+.4f}]"
            if math.isfinite(float(r["low"]))
            else "–",
            "ratio": fmt(r["ratio"], 2),
            "n": int(r["n"]),
            "verdict": str(r["verdict"]),
        }
        for r in rolling.intervals.to_dict("records")
    ]
    recall_rows = (
        []
        if rolling.recall is None
        else [
            {
                "source": str(r["source"]),
                "recall": fmt(r["recall"], 3),
                "per_customer": fmt(r["candidates_per_customer"], 1),
            }
            for r in rolling.recall.to_dict("records")
        ]
    )
    return {
        "fold_rows": fold_rows,
        "interval_rows": interval_rows,
        "recall_rows": recall_rows,
        "fold_models": rolling.models,
        "candidate": rolling.candidate,
        "confidence": f"{100 * rolling.confidence:g} %",
        "window_days": f"{rolling.window_days:g}",
        "k": rolling.k,
    }


def evaluation_section(
    view: EvaluationView | None, reason: str | None = None, rolling: RollingView | None = None
) -> Markup:
    """The model under test against the baselines: table (best per metric in bold), bar charts, metric@k lines and,
    for a rolling-origin evaluation, the fold table and the bootstrap intervals of the differences."""
    anchor = SECTION_IDS["evaluation"]
    if view is None or view.table.empty or not view.metrics:
        lead = "Ranking quality of the personalised model against the baselines on later time windows."
        return render(
            "evaluation.html", anchor=anchor, lead=lead, missing=reason or "No evaluation was supplied."
        )
    at_k = f" at k={int(view.k)}" if view.k is not None and float(view.k).is_integer() else ""
    where = (
        f"pooled over {len(rolling.folds)} rolling time windows (customer-windows)"
        if rolling is not None and len(rolling.folds) > 1
        else "on the held-out time window"
    )
    marked = f"; {view.highlight} highlighted" if view.highlight else ""
    lead = f"Ranking metrics{at_k} {where}, one row per model (higher is better; best per metric in bold{marked})."
    table = view.table
    models = [str(m) for m in table[Columns.MODEL].tolist()]
    colours = model_colours(models, view.highlight)
    best = {m: _best(table[m]) for m in view.metrics}
    rows = []
    for model, (_, row) in zip(models, table.iterrows(), strict=True):
        cells = []
        for metric in view.metrics:
            top = best[metric]
            cells.append((fmt(row[metric], 4), top is not None and _close(row[metric], top)))
        rows.append(
            {
                "model": model,
                "colour": colours[model],
                "highlight": model == view.highlight,
                "cells": cells,
                "info": [fmt(row[c], 0) for c in view.info],
            }
        )
    bars = [
        bar_chart(
            m,
            dict(zip(models, pd.to_numeric(table[m], errors="coerce").astype(float), strict=True)),
            colours=colours,
            highlight=view.highlight,
            title=METRIC_TITLES.get(m, m),
        )
        for m in view.metrics
    ]
    return render(
        "evaluation.html",
        anchor=anchor,
        lead=lead,
        missing=None,
        metric_titles=[METRIC_TITLES.get(m, m) for m in view.metrics],
        info_titles=[METRIC_TITLES.get(c, c) for c in view.info],
        rows=rows,
        legend_entries=[(m, colours[m]) for m in models],
        bars=bars,
        lines=_line_charts(view, colours),
        highlight=view.highlight or "the model",
        **_rolling_context(rolling),
    )


def _line_charts(view: EvaluationView, colours: Mapping[str, str]) -> list[Markup]:
    if view.by_k is None:
        return []
    charts = []
    for metric in view.metrics:
        series = {
            str(model): list(
                zip(
                    g["k"].astype(float),
                    pd.to_numeric(g[metric], errors="coerce").astype(float),
                    strict=True,
                )
            )
            for model, g in view.by_k.groupby(Columns.MODEL, sort=False)
        }
        charts.append(
            line_chart(
                metric,
                series,
                colours=colours,
                highlight=view.highlight,
                title=METRIC_TITLES.get(metric, metric),
            )
        )
    return charts


# -- (d) classifier -----------------------------------------------------------------------------------------------------
def _mean(values: Iterable[float]) -> float:
    numbers = list(values)
    return sum(numbers) / len(numbers) if numbers else math.nan


def _heat(count: int, row_total: int, diagonal: bool) -> str:
    share = count / row_total if row_total else 0.0
    alpha = 0.08 + 0.92 * share if count else 0.0
    rgb = "47,158,68" if diagonal else "224,49,49"
    colour = "#fff" if alpha > 0.55 else "#212529"
    return f"background:rgba({rgb},{alpha:.2f});color:{colour}"


def classifier_section(
    view: ClassifierView | None, reason: str | None = None, *, warning: str | None = None
) -> Markup:
    """Held-out accuracy, macro-F1, same-label retrieval, the confusion matrix and per-class scores of the classifier."""
    anchor = SECTION_IDS["classifier"]
    if view is None:
        lead = "Quality of the fine-tuned ResNet18 on held-out photos."
        return render(
            "classifier.html",
            anchor=anchor,
            lead=lead,
            missing=reason or "No classifier metrics are available.",
            warning=warning,
        )
    m = view.metrics
    where = f"the {view.split} split" if view.split else "held-out photos"
    lead = (
        f"The fine-tuned ResNet18 whose embeddings drive the visual similarity, measured on {where} "
        f"({m.n} photos, {len(m.classes)} classes)."
    )
    classes = list(m.classes)
    confusion = []
    for i, (name, counts) in enumerate(zip(classes, m.confusion, strict=True)):
        total = sum(counts)
        cells = [
            {"count": c, "predicted": classes[j], "style": _heat(c, total, i == j)}
            for j, c in enumerate(counts)
        ]
        confusion.append({"name": name, "cells": cells, "total": total})
    f1_min = min((s.f1 for s in m.per_class.values()), default=0.0)
    per_class = [
        {
            "name": name,
            "weak": s.f1 == f1_min and len(classes) > 1,
            "precision": fmt(s.precision),
            "recall": fmt(s.recall),
            "f1": fmt(s.f1),
            "meter": f"{max(0.0, min(1.0, s.f1)) * 100:.0f}",
            "support": s.support,
        }
        for name in classes
        if (s := m.per_class.get(name)) is not None
    ]
    r = m.retrieval
    retrieval = (
        None
        if r is None
        else {
            "k": r.k,
            "precision": fmt(r.precision_at_k),
            "recall_1": fmt(r.recall_at_1),
            "chance": fmt(r.chance_precision),
            "caption": (
                f"“More like this” judged by labels: share of each photo's {r.k} nearest neighbours (cosine of the "
                f"served embeddings, among {r.n_corpus} photos) with its class, {r.n_queries} query photos; "
                f"a random ranking scores {fmt(r.chance_precision)}."
            ),
        }
    )
    return render(
        "classifier.html",
        anchor=anchor,
        lead=lead,
        missing=None,
        warning=warning,
        retrieval=retrieval,
        accuracy=fmt(m.accuracy),
        macro_f1=fmt(m.macro_f1),
        n=m.n,
        classes=classes,
        confusion=confusion,
        per_class=per_class,
        macro_precision=fmt(_mean(s.precision for s in m.per_class.values())),
        macro_recall=fmt(_mean(s.recall for s in m.per_class.values())),
    )
