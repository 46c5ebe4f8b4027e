"""One error hierarchy for the whole SDK.

Every error names the thing at fault (file, row, column, key, item id) so that a retailer's data engineer can fix
the input without reading a traceback. Catch :class:`FashionRecoError` to handle anything this library raises on
purpose; any other exception is a bug.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArtefactError",
    "CatalogueError",
    "ConfigError",
    "DataError",
    "FashionRecoError",
    "FashionRecoWarning",
    "FetchError",
    "IdentifierError",
    "ImageError",
    "InteractionsError",
    "ModelError",
    "NotFittedError",
    "RecommendError",
    "SnowflakeError",
    "UnknownIdError",
    "WeightsUnavailableError",
]

_CONTEXT_ORDER = ("file", "key", "row", "column", "item_id", "customer_id", "value")


class FashionRecoError(Exception):
    """Base class: a problem with the caller's input, configuration or environment, described precisely.

    Context keywords (``file``, ``row``, ``column``, ``key``, ``item_id``, ``customer_id``, ``value``) are kept as
    attributes and prefixed to the message, e.g. ``manifest.csv, row 7, column 'label': empty value``.
    """

    def __init__(self, message: str, **context: Any) -> None:
        self.reason = message
        self.context = {k: v for k, v in context.items() if v is not None}
        for name in _CONTEXT_ORDER:
            setattr(self, name, self.context.get(name))
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        for name in _CONTEXT_ORDER:
            if name not in self.context:
                continue
            value = self.context[name]
            if name == "file":
                parts.append(str(value))
            elif name == "row":
                parts.append(f"row {value}")
            else:
                parts.append(f"{name.replace('_', ' ')} {value!r}")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class ConfigError(FashionRecoError):
    """Invalid configuration: unknown key, wrong type or value, unreadable config file."""


class DataError(FashionRecoError):
    """Problem with input data (catalogue, images, interactions, customers)."""


class ImageError(DataError):
    """An image file that cannot be decoded or fails validation (size, decompression bomb, format)."""


class CatalogueError(DataError):
    """A catalogue manifest or folder that is malformed (missing column, duplicate id, missing file)."""


class InteractionsError(DataError):
    """A clickstream / purchase log or customer table that is malformed."""


class FetchError(DataError):
    """A failure fetching a catalogue from S3 (access denied, missing bucket, unsafe key)."""


class ModelError(FashionRecoError):
    """Problem building, training, saving or loading the image model."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights were requested but cannot be found locally or downloaded."""


class ArtefactError(ModelError):
    """A saved artefact directory that is missing, truncated, tampered with or from an incompatible version."""


class RecommendError(FashionRecoError):
    """Problem in similarity, ranking, tuning or evaluation."""


class NotFittedError(RecommendError):
    """A method that needs a fitted model was called before ``fit`` or ``load``."""


class UnknownIdError(RecommendError, KeyError):
    """An item or customer id the model has never seen, where the call cannot fall back."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return Exception.__str__(self)


class SnowflakeError(FashionRecoError):
    """Problem deploying to or running inside Snowflake."""


class IdentifierError(SnowflakeError, ValueError):
    """A table, stage, column or function name that is not a safe Snowflake identifier."""


class FashionRecoWarning(UserWarning):
    """Input that was used after a repair the caller should know about (coerced column, excluded future events,
    skipped photos), counted and named in the message."""
