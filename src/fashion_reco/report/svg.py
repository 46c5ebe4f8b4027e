"""Inline SVG charts from Jinja2 templates (no matplotlib): small-multiple bar charts and metric@k line charts.

Every chart is a standalone ``<svg>`` element meant to be inlined in HTML (no ``xmlns`` needed there, no external
fonts: text inherits the page's system font). Geometry is computed here; the templates (``bar_chart.svg``,
``line_chart.svg``) autoescape every label. Bars and lines carry ``data-model`` /
``data-metric`` attributes so tests and readers can find them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup

from fashion_reco.report.templating import render

__all__ = ["bar_chart", "line_chart", "model_colours", "nice_max"]

# Baselines in calm, distinct hues; the highlighted model (the blend) in a strong accent.
_ACCENT = "#d6336c"
_GREY = "#868e96"
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


def _tick_count(y_max: float) -> int:
    """Ticks that land on round numbers for the tops ``nice_max`` produces (1, 2, 2.5, 5 × 10^n)."""
    leading = y_max / 10.0 ** math.floor(math.log10(y_max))
    return 4 if abs(leading - 2.0) < 1e-9 else 5


def _c(value: float) -> str:
    """A coordinate as written into the SVG (one decimal)."""
    return f"{value:.1f}"


def _axis(left: float, top: float, width: float, height: float, y_max: float) -> dict[str, object]:
    ticks = _tick_count(y_max)
    rows = []
    for i in range(ticks + 1):
        fraction = i / ticks
        y = top + height - fraction * height
        rows.append({"y": _c(y), "label_y": _c(y + 3), "text": f"{y_max * fraction:.4g}"})
    return {
        "ticks": rows,
        "left": _c(left),
        "right": _c(left + width),
        "bottom": _c(top + height),
        "label_x": _c(left - 4),
    }


def _frame(
    metric: str, title: str | None, width: int, height: int, axis: dict[str, object]
) -> dict[str, object]:
    """What every chart template needs: its metric, label, size, centre line and y axis."""
    return {
        "metric": metric,
        "label": title or metric,
        "width": width,
        "height": height,
        "centre": _c(width / 2),
        "axis": axis,
    }


def bar_chart(
    metric: str,
    values: Mapping[str, float],
    *,
    colours: Mapping[str, str],
    highlight: str | None = None,
    title: str | None = None,
    width: int = 268,
    height: int = 200,
) -> Markup:
    """One metric, one bar per model (in ``values`` order), value printed above each bar; NaN draws no bar height."""
    models = list(values)
    left, right, top, bottom = 38.0, 8.0, 34.0, 62.0
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [v for v in values.values() if math.isfinite(v)]
    y_max = nice_max(max(finite, default=0.0))
    slot = plot_w / max(len(models), 1)
    bar_w = max(min(slot * 0.7, 36.0), 4.0)
    bars = []
    for i, model in enumerate(models):
        value = float(values[model])
        shown = value if math.isfinite(value) else 0.0
        bar_h = max(shown, 0.0) / y_max * plot_h
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - bar_h
        bars.append(
            {
                "model": model,
                "value": repr(value),
                "text": _fmt(value),
                "x": _c(x),
                "y": _c(y),
                "width": _c(bar_w),
                "height": _c(bar_h),
                "colour": colours.get(model, _GREY),
                "highlight": model == highlight,
                "weight": "700" if model == highlight else "400",
                "cx": _c(x + bar_w / 2),
                "text_y": _c(y - 3),
                "name_y": _c(top + plot_h + 10),
                "short": model if len(model) <= 16 else model[:15] + "…",
            }
        )
    return render(
        "bar_chart.svg",
        **_frame(metric, title, width, height, _axis(left, top, plot_w, plot_h, y_max)),
        value_font=9 if len(models) <= 5 else 8,
        bars=bars,
    )


def line_chart(
    metric: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    colours: Mapping[str, str],
    highlight: str | None = None,
    title: str | None = None,
    width: int = 268,
    height: int = 190,
) -> Markup:
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

    lines = []
    for model in sorted(series, key=lambda m: m == highlight):  # the highlighted model last, on top
        points = sorted((float(k), float(v)) for k, v in series[model] if math.isfinite(float(v)))
        if not points:
            continue
        lines.append(
            {
                "model": model,
                "colour": colours.get(model, _GREY),
                "stroke_width": "2.5" if model == highlight else "1.5",
                "points": " ".join(f"{_c(sx(k))},{_c(sy(v))}" for k, v in points),
                "dots": [{"x": _c(sx(k)), "y": _c(sy(v)), "k": _fmt(k), "text": _fmt(v)} for k, v in points],
            }
        )
    return render(
        "line_chart.svg",
        **_frame(metric, title, width, height, _axis(left, top, plot_w, plot_h, y_max)),
        k_ticks=[
            {"x": _c(sx(k)), "y": _c(top + plot_h + 13), "text": _fmt(k) if k != int(k) else str(int(k))}
            for k in ks
        ],
        k_label={"x": _c(left + plot_w / 2), "y": _c(height - 3)},
        lines=lines,
    )
