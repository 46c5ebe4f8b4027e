"""The Jinja2 environment of the report: templates from ``report/templates`` with autoescaping always on.

Every template (HTML and SVG alike) escapes what it interpolates, so ids, labels, reasons and model names from data
cannot inject markup; only fragments rendered by these same templates (``Markup``) and the package's own stylesheet
and script pass through unescaped.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

__all__ = ["fmt", "render", "short_id", "static_text"]


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


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("fashion_reco.report", "templates"),
        autoescape=True,  # every template, .html and .svg: data never reaches the markup unescaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["fmt"] = fmt
    env.filters["short_id"] = short_id
    return env


def render(name: str, /, **context: object) -> Markup:
    """Render template ``name`` with ``context``; the result is safe markup to nest in another template."""
    text = _environment().get_template(name).render(**context).strip()
    return Markup(text)  # noqa: S704 - produced by an autoescaping template


def static_text(name: str) -> Markup:
    """The text of a packaged asset (stylesheet, script) beside the templates, as markup to inline verbatim."""
    text = (resources.files("fashion_reco.report") / "templates" / name).read_text(encoding="utf-8")
    return Markup(text)  # noqa: S704 - the package's own file, never data
