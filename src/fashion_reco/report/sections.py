"""HTML fragments for the report's four sections, built with plain f-strings.

Every value that comes from data (item and customer ids, labels, reasons, model and class names, event types) goes
through :func:`esc` before it reaches the markup; numbers are formatted, never interpolated raw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape

import pandas as pd

from fashion_reco.columns import Columns
from fashion_reco.report.collect import METRIC_TITLES, ClassifierView, EvaluationView, ItemLookup
from fashion_reco.report.svg import bar_chart, line_chart, model_colours
from fashion_reco.report.thumbs import ThumbnailCache

__all__ = [
    "SECTION_IDS",
    "TileMaker",
    "classifier_section",
    "customers_section",
    "esc",
    "evaluation_section",
    "gallery_section",
    "note",
    "section",
]

SECTION_IDS = {
    "gallery": "more-like-this",
    "customers": "customers",
    "evaluation": "evaluation",
    "classifier": "classifier",
}

_EVENT_LABELS = {"view": "view", "add_to_cart": "cart", "purchase": "bought"}


def esc(value: object) -> str:
    """HTML-escape any value (quotes included, so the result is safe inside attributes too)."""
    return escape("" if value is None else str(value), quote=True)


def fmt(value: object, digits: int = 3) -> str:
    """A number for display: ``–`` for missing or non-finite values."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    return f"{number:.{digits}f}"


def short_id(item_id: str, keep: int = 8) -> str:
    """Long ids (UUIDs) shortened for captions; the full id goes in a ``title`` tooltip."""
    return item_id if len(item_id) <= keep + 1 else item_id[:keep] + "…"


def note(text: str, kind: str = "info") -> str:
    return f'<p class="note note-{esc(kind)}">{esc(text)}</p>'


def section(key: str, title: str, lead: str, body: str) -> str:
    return (
        f'<section id="{SECTION_IDS[key]}" class="report-section" data-section="{key}">'
        f'<h2>{esc(title)}</h2><p class="lead">{esc(lead)}</p>{body}</section>'
    )


class TileMaker:
    """Renders one item as a ``<figure>``: embedded thumbnail plus caption lines."""

    def __init__(self, lookup: ItemLookup, thumbs: ThumbnailCache) -> None:
        self.lookup = lookup
        self.thumbs = thumbs

    def tile(
        self,
        item_id: object,
        *,
        top: str = "",
        extra: str = "",
        classes: str = "",
        badge: str | None = None,
        badge_kind: str = "",
    ) -> str:
        """``top`` and ``extra`` are already-escaped HTML snippets shown above/below the label line."""
        info = self.lookup[item_id]
        thumb = self.thumbs.get(info.image_path)
        label = info.label or "unlabelled"
        css = " ".join(c for c in ("tile", classes, "placeholder" if thumb.placeholder else "") if c)
        badge_html = f'<span class="badge badge-{esc(badge_kind)}">{esc(badge)}</span>' if badge else ""
        return (
            f'<figure class="{css}" data-item-id="{esc(info.item_id)}">'
            f'<div class="thumb">{badge_html}<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" '
            f'alt="{esc(label)} {esc(info.item_id)}" title="{esc(info.item_id)}"></div>'
            f'<figcaption>{top}<span class="label">{esc(label)}</span>'
            f'<span class="id" title="{esc(info.item_id)}">{esc(short_id(info.item_id))}</span>{extra}</figcaption>'
            f"</figure>"
        )


# -- (a) more like this -------------------------------------------------------------------------------------------------
def gallery_section(tiles: TileMaker, query_ids: Sequence[str], similar: pd.DataFrame | None, k: int) -> str:
    lead = (
        f"Sampled catalogue items (left) and their {k} nearest neighbours by cosine similarity of the image "
        "embeddings: what a product page's “more like this” strip would show."
    )
    if not query_ids or similar is None:
        return section("gallery", "More like this", lead, note("The catalogue is empty: nothing to show."))
    rows = []
    grouped = {str(q): g.sort_values(Columns.RANK) for q, g in similar.groupby(Columns.ITEM_ID, sort=False)}
    for query in query_ids:
        neighbours = grouped.get(str(query))
        cells = []
        if neighbours is not None:
            for row in neighbours.itertuples(index=False):
                rank = int(getattr(row, Columns.RANK))
                score = getattr(row, Columns.SCORE)
                top = f'<span class="rank">#{rank}</span><span class="score">{fmt(score)}</span>'
                cells.append(tiles.tile(getattr(row, Columns.SIMILAR_ITEM_ID), top=top))
        strip = "".join(cells) if cells else note("No similar items returned.")
        rows.append(
            '<div class="gallery-row">'
            f"{tiles.tile(query, classes='query', badge='query', badge_kind='query')}"
            f'<div class="arrow" aria-hidden="true">→</div><div class="tiles">{strip}</div></div>'
        )
    return section("gallery", "More like this", lead, "".join(rows))


# -- (b) customers ------------------------------------------------------------------------------------------------------
def _profile_line(profile: Mapping[str, object] | None) -> str:
    if not profile:
        return ""
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
        parts.append(f'<span class="kv"><b>{esc(title)}</b> {esc(value)}</span>')
    return f'<div class="profile">{"".join(parts)}</div>' if parts else ""


def customers_section(
    tiles: TileMaker,
    customer_ids: Sequence[str],
    histories: Mapping[str, pd.DataFrame],
    event_counts: Mapping[str, int],
    recommendations: pd.DataFrame,
    profiles: Mapping[str, Mapping[str, object]],
    k: int,
    history_limit: int,
) -> str:
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
        history = histories.get(customer)
        n_events = event_counts.get(customer, 0)
        history_tiles = []
        if history is not None:
            for row in history.itertuples(index=False):
                event = str(getattr(row, Columns.EVENT_TYPE, "") or "")
                when = getattr(row, Columns.TIMESTAMP, None)
                date = (
                    pd.Timestamp(when).strftime("%Y-%m-%d") if when is not None and not pd.isna(when) else ""
                )
                extra = f'<span class="when">{esc(date)}</span>' if date else ""
                history_tiles.append(
                    tiles.tile(
                        getattr(row, Columns.ITEM_ID),
                        extra=extra,
                        classes="small",
                        badge=_EVENT_LABELS.get(event, event),
                        badge_kind=event,
                    )
                )
        history_html = (
            "".join(history_tiles)
            if history_tiles
            else note("No interactions yet: a cold-start customer, ranked from the profile and popularity.")
        )
        rec_tiles = []
        recs = grouped.get(customer)
        if recs is not None:
            for row in recs.itertuples(index=False):
                top = (
                    f'<span class="rank">#{int(getattr(row, Columns.RANK))}</span>'
                    f'<span class="score">{fmt(getattr(row, Columns.SCORE))}</span>'
                )
                reason = getattr(row, Columns.REASON, None)
                extra = (
                    f'<span class="reason" title="{esc(reason)}">{esc(reason)}</span>'
                    if isinstance(reason, str) and reason
                    else ""
                )
                rec_tiles.append(
                    tiles.tile(getattr(row, Columns.ITEM_ID), top=top, extra=extra, classes="rec")
                )
        rec_html = "".join(rec_tiles) if rec_tiles else note("No recommendations returned.")
        kind = "cold" if n_events == 0 else "warm"
        cards.append(
            f'<article class="customer customer-{kind}" data-customer-id="{esc(customer)}">'
            f"<header><h3>Customer <code>{esc(customer)}</code></h3>"
            f'<span class="pill pill-{kind}">{n_events} events</span>{_profile_line(profiles.get(customer))}</header>'
            f'<div class="customer-body"><div class="history"><h4>Recent history</h4><div class="tiles">{history_html}'
            f'</div></div><div class="recs"><h4>Recommended</h4><div class="tiles">{rec_html}</div></div></div>'
            f"</article>"
        )
    return section("customers", "Customers", lead, "".join(cards))


def customers_missing_section(reason: str) -> str:
    return section("customers", "Customers", "Personalised recommendations per customer.", note(reason))


# -- (c) evaluation -----------------------------------------------------------------------------------------------------
def _best(values: pd.Series) -> float | None:
    finite = pd.to_numeric(values, errors="coerce").dropna()
    finite = finite[finite.map(math.isfinite)]
    return float(finite.max()) if len(finite) else None


def evaluation_section(view: EvaluationView | None, reason: str | None = None) -> str:
    title = "Offline evaluation"
    if view is None or view.table.empty or not view.metrics:
        lead = "Ranking quality of the personalised model against the baselines on a later time window."
        return section("evaluation", title, lead, note(reason or "No evaluation was supplied."))
    at_k = f" at k={int(view.k)}" if view.k is not None and float(view.k).is_integer() else ""
    lead = (
        f"Ranking metrics{at_k} on the held-out time window, one row per model "
        f"(higher is better; best per metric in bold{'; the personalised model highlighted' if view.highlight else ''})."
    )
    table = view.table
    models = table[Columns.MODEL].tolist()
    colours = model_colours(models, view.highlight)
    best = {m: _best(table[m]) for m in view.metrics}
    head = "".join(f'<th scope="col">{esc(METRIC_TITLES.get(m, m))}</th>' for m in view.metrics)
    head += "".join(f'<th scope="col" class="info">{esc(METRIC_TITLES.get(c, c))}</th>' for c in view.info)
    body = []
    for _, row in table.iterrows():
        model = str(row[Columns.MODEL])
        cells = []
        for metric in view.metrics:
            value, top = row[metric], best[metric]
            is_best = top is not None and _close(value, top)
            cls = ' class="best"' if is_best else ""
            cells.append(
                f"<td{cls}>{'<b>' if is_best else ''}{fmt(value, 4)}{'</b>' if is_best else ''}</td>"
            )
        cells += [f'<td class="info">{fmt(row[c], 0)}</td>' for c in view.info]
        highlight = ' class="highlight"' if model == view.highlight else ""
        swatch = f'<span class="swatch" style="background:{esc(colours[model])}"></span>'
        body.append(
            f'<tr{highlight} data-model="{esc(model)}"><th scope="row">{swatch}{esc(model)}</th>'
            f"{''.join(cells)}</tr>"
        )
    table_html = (
        f'<div class="table-wrap"><table class="metrics-table evaluation-table"><thead><tr><th scope="col">model</th>'
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
    bars = "".join(
        bar_chart(
            m,
            dict(zip(models, pd.to_numeric(table[m], errors="coerce").astype(float), strict=True)),
            colours=colours,
            highlight=view.highlight,
            title=METRIC_TITLES.get(m, m),
        )
        for m in view.metrics
    )
    legend = "".join(
        f'<span class="legend-item"><span class="swatch" style="background:{esc(colours[m])}"></span>{esc(m)}'
        f"</span>"
        for m in models
    )
    charts = (
        f'<h3>Personalised model vs baselines per metric</h3><div class="legend">{legend}</div>'
        f'<div class="charts bar-charts">{bars}</div>'
    )
    if view.by_k is not None:
        lines = []
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
            lines.append(
                line_chart(
                    metric,
                    series,
                    colours=colours,
                    highlight=view.highlight,
                    title=METRIC_TITLES.get(metric, metric),
                )
            )
        charts += (
            f'<h3>Metrics at k</h3><div class="legend">{legend}</div>'
            f'<div class="charts line-charts">{"".join(lines)}</div>'
        )
    return section("evaluation", title, lead, table_html + charts)


def _close(value: object, best: float) -> bool:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and abs(number - best) <= 1e-12 * max(1.0, abs(best))


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


def classifier_section(view: ClassifierView | None, reason: str | None = None) -> str:
    title = "Image classifier"
    if view is None:
        lead = "Quality of the fine-tuned ResNet18 on held-out photos."
        return section("classifier", title, lead, note(reason or "No classifier metrics are available."))
    m = view.metrics
    where = f"the {view.split} split" if view.split else "held-out photos"
    lead = (
        f"The fine-tuned ResNet18 whose embeddings drive the visual similarity, measured on {where} "
        f"({m.n} photos, {len(m.classes)} classes)."
    )
    stats = (
        '<div class="stats">'
        f'<div class="stat"><span class="stat-value">{fmt(m.accuracy)}</span><span class="stat-name">accuracy</span></div>'
        f'<div class="stat"><span class="stat-value">{fmt(m.macro_f1)}</span><span class="stat-name">macro-F1</span>'
        f'</div><div class="stat"><span class="stat-value">{m.n}</span><span class="stat-name">photos</span></div></div>'
    )
    classes = list(m.classes)
    head = "".join(f'<th scope="col" class="rot"><span>{esc(c)}</span></th>' for c in classes)
    rows = []
    for i, (name, counts) in enumerate(zip(classes, m.confusion, strict=True)):
        total = sum(counts)
        cells = "".join(
            f'<td style="{_heat(c, total, i == j)}" title="true {esc(name)}, predicted {esc(classes[j])}: {c}">'
            f"{c if c else ''}</td>"
            for j, c in enumerate(counts)
        )
        rows.append(f'<tr><th scope="row">{esc(name)}</th>{cells}<td class="total">{total}</td></tr>')
    confusion = (
        '<div class="table-wrap"><table class="confusion-table"><caption>Confusion matrix: rows are the true class, '
        "columns the predicted class; shading is the share of the row.</caption>"
        f'<thead><tr><th scope="col">true ↓ predicted →</th>{head}<th scope="col">n</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    per_rows = []
    f1_min = min((s.f1 for s in m.per_class.values()), default=0.0)
    for name in classes:
        s = m.per_class.get(name)
        if s is None:
            continue
        weak = ' class="weak"' if s.f1 == f1_min and len(classes) > 1 else ""
        per_rows.append(
            f'<tr{weak}><th scope="row">{esc(name)}</th><td>{fmt(s.precision)}</td><td>{fmt(s.recall)}</td>'
            f'<td><span class="meter"><span style="width:{max(0.0, min(1.0, s.f1)) * 100:.0f}%"></span></span>'
            f"{fmt(s.f1)}</td><td>{s.support}</td></tr>"
        )
    per_class = (
        '<div class="table-wrap"><table class="metrics-table per-class-table"><caption>Per-class precision, recall and '
        'F1 (weakest class marked).</caption><thead><tr><th scope="col">class</th><th scope="col">precision</th>'
        '<th scope="col">recall</th><th scope="col">F1</th><th scope="col">support</th></tr></thead>'
        f'<tbody>{"".join(per_rows)}</tbody><tfoot><tr><th scope="row">macro average</th>'
        f"<td>{fmt(_mean(s.precision for s in m.per_class.values()))}</td>"
        f"<td>{fmt(_mean(s.recall for s in m.per_class.values()))}</td>"
        f"<td>{fmt(m.macro_f1)}</td><td>{m.n}</td></tr></tfoot></table></div>"
    )
    return section("classifier", title, lead, stats + f'<div class="two-col">{confusion}{per_class}</div>')
