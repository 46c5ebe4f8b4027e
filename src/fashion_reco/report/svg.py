"""Inline SVG charts drawn by hand (no matplotlib): small-multiple bar charts and metric@k line charts.

Every chart is a standalone ``<svg>`` element meant to be inlined in HTML (no ``xmlns`` needed there, no external
fonts: text inherits the page's system font). Every label is escaped. Bars and lines carry ``data-model`` /
``data-metric`` attributes so tests and readers can find them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["bar_chart", "line_chart", "model_colours", "nice_max"]

# Baselines in calm, distinct hues; the highlighted model (the blend) in a strong accent.
_ACCENT = "#d6336c"
_PALETTE = ("#4c6ef5", "#15aabf", "#82c91e", "#fab005", "#fd7e14", "#7950f2", "#868e96", "#20c997", "#a61e4d")


def model_colours(models: Sequence[str], highlight: str | None = None) -> dict[str, str]:
    """A stable colour per model (in the given order); the highlighted model gets the accent colour."""
    colours: dict[str, str] = {}
    index = 0
    for model in models:
        if highlight is not None and model == highlight:
            colours[model] = _ACCENT
        else:
            colours[model] = _PALETTE[index % len(_PALETTE)]
            index += 1
    return colours


def nice_max(value: float) -> float:
    """Round ``value`` up to 1, 2, 2.5 or 5 times a power of ten (axis top); 1.0 for non-positive input."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    base = 10.0**exponent
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * base * (1 + 1e-9):
            return step * base
    return 10.0 * base  # pragma: no cover - unreachable


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _tick_count(y_max: float) -> int:
    """Ticks that land on round numbers for the tops ``nice_max`` produces (1, 2, 2.5, 5 × 10^n)."""
    leading = y_max / 10.0 ** math.floor(math.log10(y_max))
    return 4 if abs(leading - 2.0) < 1e-9 else 5


def _axis(left: float, top: float, width: float, height: float, y_max: float) -> list[str]:
    parts = []
    ticks = _tick_count(y_max)
    for i in range(ticks + 1):
        fraction = i / ticks
        y = top + height - fraction * height
        parts.append(
            f'<line class="grid" x1="{left:.1f}" y1="{y:.1f}" x2="{left + width:.1f}" y2="{y:.1f}" '
            f'stroke="#e9ecef" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 4:.1f}" y="{y + 3:.1f}" text-anchor="end" font-size="9" fill="#868e96">'
            f"{escape(f'{y_max * fraction:.4g}')}</text>"
        )
    parts.append(
        f'<line x1="{left:.1f}" y1="{top + height:.1f}" x2="{left + width:.1f}" y2="{top + height:.1f}" '
        f'stroke="#adb5bd" stroke-width="1"/>'
    )
    return parts


def bar_chart(
    metric: str,
    values: Mapping[str, float],
    *,
    colours: Mapping[str, str],
    highlight: str | None = None,
    title: str | None = None,
    width: int = 268,
    height: int = 200,
) -> str:
    """One metric, one bar per model (in ``values`` order), value printed above each bar; NaN draws no bar height."""
    models = list(values)
    left, right, top, bottom = 38.0, 8.0, 34.0, 62.0
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [v for v in values.values() if math.isfinite(v)]
    y_max = nice_max(max(finite, default=0.0))
    slot = plot_w / max(len(models), 1)
    bar_w = max(min(slot * 0.7, 36.0), 4.0)
    value_font = 9 if len(models) <= 5 else 8
    label = title or metric
    parts = [
        f'<svg class="chart bar-chart" data-metric="{_attr(metric)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_attr(label)} by model">',
        f"<title>{escape(label)} by model</title>",
        f'<text x="{width / 2:.1f}" y="15" text-anchor="middle" font-size="12" font-weight="600" '
        f'fill="#212529">{escape(label)}</text>',
        *_axis(left, top, plot_w, plot_h, y_max),
    ]
    for i, model in enumerate(models):
        value = float(values[model])
        shown = value if math.isfinite(value) else 0.0
        bar_h = max(shown, 0.0) / y_max * plot_h
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - bar_h
        stroke = ' stroke="#212529" stroke-width="1.5"' if model == highlight else ""
        parts.append(
            f'<rect class="bar" data-model="{_attr(model)}" data-value="{_attr(repr(value))}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" rx="2" '
            f'fill="{_attr(colours.get(model, "#868e96"))}"{stroke}><title>{escape(model)}: {escape(_fmt(value))}'
            f"</title></rect>"
        )
        weight = "700" if model == highlight else "400"
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="{value_font}" '
            f'font-weight="{weight}" fill="#343a40">{escape(_fmt(value))}</text>'
        )
        short = model if len(model) <= 16 else model[:15] + "…"
        cx, cy = x + bar_w / 2, top + plot_h + 10
        parts.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" font-size="9" font-weight="{weight}" '
            f'fill="#495057" transform="rotate(-35 {cx:.1f} {cy:.1f})">{escape(short)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    metric: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    colours: Mapping[str, str],
    highlight: str | None = None,
    title: str | None = None,
    width: int = 268,
    height: int = 190,
) -> str:
    """``metric`` against k: one polyline (with point markers) per model; x ticks at every k that occurs."""
    left, right, top, bottom = 38.0, 10.0, 30.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    ks = sorted({float(k) for points in series.values() for k, _ in points})
    finite = [v for points in series.values() for _, v in points if math.isfinite(v)]
    y_max = nice_max(max(finite, default=0.0))
    k_lo, k_hi = (ks[0], ks[-1]) if ks else (0.0, 1.0)
    span = (k_hi - k_lo) or 1.0

    def sx(k: float) -> float:
        return left + (plot_w / 2 if k_hi == k_lo else (k - k_lo) / span * plot_w)

    def sy(v: float) -> float:
        return top + plot_h - max(v, 0.0) / y_max * plot_h

    label = title or metric
    parts = [
        f'<svg class="chart line-chart" data-metric="{_attr(metric)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_attr(label)} at k">',
        f"<title>{escape(label)} at k</title>",
        f'<text x="{width / 2:.1f}" y="15" text-anchor="middle" font-size="12" font-weight="600" '
        f'fill="#212529">{escape(label)}@k</text>',
        *_axis(left, top, plot_w, plot_h, y_max),
    ]
    for k in ks:
        parts.append(
            f'<text x="{sx(k):.1f}" y="{top + plot_h + 13:.1f}" text-anchor="middle" font-size="9" '
            f'fill="#868e96">{escape(_fmt(k) if k != int(k) else str(int(k)))}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 3:.1f}" text-anchor="middle" font-size="9" '
        f'fill="#868e96">k</text>'
    )
    # Draw the highlighted model last so it sits on top.
    order = sorted(series, key=lambda m: m == highlight)
    for model in order:
        points = sorted((float(k), float(v)) for k, v in series[model] if math.isfinite(float(v)))
        if not points:
            continue
        colour = _attr(colours.get(model, "#868e96"))
        stroke_w = "2.5" if model == highlight else "1.5"
        coords = " ".join(f"{sx(k):.1f},{sy(v):.1f}" for k, v in points)
        parts.append(
            f'<polyline class="line" data-model="{_attr(model)}" points="{coords}" fill="none" '
            f'stroke="{colour}" stroke-width="{stroke_w}"><title>{escape(model)}</title></polyline>'
        )
        for k, v in points:
            parts.append(
                f'<circle cx="{sx(k):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(model)} @{escape(_fmt(k))}: {escape(_fmt(v))}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
