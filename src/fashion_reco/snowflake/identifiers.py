"""Safe Snowflake identifiers: validate every table, stage, column and function name before it reaches SQL.

Only *unquoted* identifiers are accepted (``[A-Za-z_][A-Za-z0-9_$]*``, at most 255 characters per part). Snowflake
resolves an unquoted identifier to its upper-case form, so ``validate_identifier`` returns that canonical form and
``quote_identifier`` wraps each part in double quotes: ``db.sch.my_table`` → ``"DB"."SCH"."MY_TABLE"``. The result
means exactly what the unquoted name meant, and because no accepted name can contain a quote, whitespace, a
semicolon or a comment marker, no accepted name can close the quote or start a new statement.

Anything else (quotes, semicolons, whitespace, empty parts, a dot where the kind of object allows none, more than
three parts) raises :class:`~fashion_reco.errors.IdentifierError` with ``key`` set to the offending name.
"""

from __future__ import annotations

import re
from typing import Literal

from fashion_reco.errors import IdentifierError

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "IdentifierKind",
    "quote_identifier",
    "stage_location",
    "validate_identifier",
    "validate_stage_path",
]

MAX_IDENTIFIER_LENGTH = 255

IdentifierKind = Literal[
    "identifier", "table", "view", "stage", "function", "column", "database", "schema", "warehouse", "role"
]

# How many dot-separated parts each kind of name may have (db.schema.object at most).
_MAX_PARTS: dict[str, int] = {
    "identifier": 1,
    "column": 1,
    "database": 1,
    "warehouse": 1,
    "role": 1,
    "schema": 2,
    "table": 3,
    "view": 3,
    "stage": 3,
    "function": 3,
}

_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# A stage path segment (a folder or file name under the stage): no quotes, spaces, semicolons, slashes or '..'.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-=]*")


def _why_invalid(part: str) -> str:
    if part == "":
        return "empty name part"
    if len(part) > MAX_IDENTIFIER_LENGTH:
        return f"longer than {MAX_IDENTIFIER_LENGTH} characters"
    for char in part:
        if char in "\"'`":
            return "quotes are not allowed"
        if char == ";":
            return "';' is not allowed"
        if char.isspace():
            return "whitespace is not allowed"
    if not (part[0].isascii() and (part[0].isalpha() or part[0] == "_")):
        return "must start with a letter or '_'"
    bad = next(c for c in part if not (c.isascii() and (c.isalnum() or c in "_$")))
    return f"character {bad!r} is not allowed (use letters, digits, '_' and '$')"


def validate_identifier(name: object, kind: IdentifierKind = "identifier") -> str:
    """Check ``name`` against Snowflake's unquoted-identifier rule; return its canonical upper-case form.

    Tables, views, stages and functions may be qualified (``db.schema.name``, each part checked); schemas may be
    ``db.schema``; columns, databases, warehouses and roles are a single part.
    """
    if not isinstance(name, str):
        raise IdentifierError(f"a {kind} name must be a string, got {type(name).__name__}", key=repr(name))
    max_parts = _MAX_PARTS.get(kind)
    if max_parts is None:
        raise IdentifierError(f"unknown identifier kind {kind!r}", key=name)
    parts = name.split(".")
    if len(parts) > max_parts:
        where = "no '.'" if max_parts == 1 else f"at most {max_parts} dot-separated parts"
        raise IdentifierError(f"not a valid {kind} name: a {kind} name has {where}", key=name)
    for part in parts:
        if not _UNQUOTED.fullmatch(part) or len(part) > MAX_IDENTIFIER_LENGTH:
            raise IdentifierError(f"not a valid {kind} name: {_why_invalid(part)}", key=name)
    return ".".join(part.upper() for part in parts)


def quote_identifier(name: str, kind: IdentifierKind = "table") -> str:
    """Validate ``name`` and return it double-quoted part by part: ``a.b.c`` → ``"A"."B"."C"``."""
    canonical = validate_identifier(name, kind)
    return ".".join(f'"{part}"' for part in canonical.split("."))


def validate_stage_path(path: str) -> str:
    """Check a path under a stage (``models/abc123``); returns it without leading/trailing slashes."""
    if not isinstance(path, str):
        raise IdentifierError(f"a stage path must be a string, got {type(path).__name__}", key=repr(path))
    stripped = path.strip("/")
    if stripped == "":
        return ""
    for segment in stripped.split("/"):
        if not _PATH_SEGMENT.fullmatch(segment) or ".." in segment or len(segment) > MAX_IDENTIFIER_LENGTH:
            raise IdentifierError(
                f"not a valid stage path: segment {segment!r} must be letters, digits, '_', '-', '.' or '='",
                key=path,
            )
    return stripped


def stage_location(stage: str, path: str = "") -> str:
    """``@STAGE`` or ``@DB.SCHEMA.STAGE/path`` with the stage name and every path segment validated."""
    canonical = validate_identifier(stage.removeprefix("@"), "stage")
    sub = validate_stage_path(path)
    return f"@{canonical}/{sub}" if sub else f"@{canonical}"
