"""Identifier safety: nothing a caller passes as a table/stage/column/function name can break out of SQL."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_reco.errors import FashionRecoError, IdentifierError
from fashion_reco.snowflake.identifiers import (
    quote_identifier,
    stage_location,
    validate_identifier,
    validate_stage_path,
)

_QUOTED_NAME = re.compile(r'"[A-Z_][A-Z0-9_$]*"(\."[A-Z_][A-Z0-9_$]*"){0,2}')
_KINDS = [
    "identifier",
    "table",
    "view",
    "stage",
    "function",
    "column",
    "database",
    "schema",
    "warehouse",
    "role",
]


def _tokens(sql: str) -> list[str]:
    """A minimal Snowflake lexer: quoted identifiers, string literals, comments, words and single symbols."""
    token = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\'\\]|\\.|\'\')*\'|--[^\n]*|/\*.*?\*/|[A-Za-z0-9_$]+|\S', re.S)
    return [t for t in token.findall(sql) if t.strip()]


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("item_id", "column", '"ITEM_ID"'),
        ("FASHION_RECO_CATALOGUE", "table", '"FASHION_RECO_CATALOGUE"'),
        ("db.sch.my_table", "table", '"DB"."SCH"."MY_TABLE"'),
        ("_x$1", "function", '"_X$1"'),
        ("analytics.public", "schema", '"ANALYTICS"."PUBLIC"'),
        ("A" * 255, "column", '"' + "A" * 255 + '"'),
    ],
)
def test_valid_names_are_quoted_part_by_part(name: str, kind: str, expected: str) -> None:
    assert quote_identifier(name, kind) == expected
    assert validate_identifier(name, kind) == expected.replace('"', "")


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ('my"table', "table", "quotes"),
        ("t; DROP TABLE users", "table", "';'"),
        ("t;", "table", "';'"),
        ("my table", "table", "whitespace"),
        ("tab\tle", "table", "whitespace"),
        ("1abc", "table", "start with a letter"),
        ("", "table", "empty"),
        ("a..b", "table", "empty"),
        ("db.sch.t.extra", "table", "at most 3"),
        ("t.c", "column", "no '.'"),
        ("x-y", "column", "'-'"),
        ("éllo", "column", "start with a letter"),
        ("hé", "column", "'é'"),
        ("a/*c*/", "table", "'/'"),
        ("a--b", "table", "'-'"),
        ("A" * 256, "column", "longer than 255"),
        ("it's", "column", "quotes"),
    ],
)
def test_bad_names_raise_identifier_error_naming_the_key(name: str, kind: str, reason: str) -> None:
    with pytest.raises(IdentifierError) as info:
        quote_identifier(name, kind)
    assert info.value.key == name
    assert reason in str(info.value)
    assert isinstance(info.value, FashionRecoError) and isinstance(info.value, ValueError)


def test_non_string_name_is_rejected() -> None:
    with pytest.raises(IdentifierError, match="must be a string"):
        validate_identifier(42, "table")  # type: ignore[arg-type]


def test_stage_locations_validate_stage_and_path() -> None:
    assert stage_location("models") == "@MODELS"
    assert stage_location("@db.sch.models", "fashion/abc-123_v1.0/") == "@DB.SCH.MODELS/fashion/abc-123_v1.0"
    assert validate_stage_path("/a/b/") == "a/b"
    for bad in ["a b", "a/../b", "x;y", "a'b", 'a"b', "..", "a//b"]:
        with pytest.raises(IdentifierError) as info:
            stage_location("models", bad)
        assert info.value.key == bad
    with pytest.raises(IdentifierError):
        stage_location("mo dels")


@settings(max_examples=400, deadline=None)
@given(st.text(min_size=0, max_size=40), st.sampled_from(_KINDS))
def test_no_accepted_identifier_can_close_a_quote_or_start_a_statement(name: str, kind: str) -> None:
    try:
        quoted = quote_identifier(name, kind)  # type: ignore[arg-type]
    except IdentifierError as exc:
        assert exc.key == name
        return
    assert _QUOTED_NAME.fullmatch(quoted), quoted
    for forbidden in (";", "'", "--", "/*", "*/", "\\", "\n", " "):
        assert forbidden not in quoted
    # Embedded in a statement, the name lexes as quoted identifier tokens and dots only.
    tokens = _tokens(f"SELECT * FROM {quoted} WHERE 1 = 1")  # noqa: S608 - the point of the test
    assert tokens[:3] == ["SELECT", "*", "FROM"]
    assert tokens[-4:] == ["WHERE", "1", "=", "1"]
    assert all(
        t == "." or (t.startswith('"') and t.endswith('"') and t.count('"') == 2) for t in tokens[3:-4]
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab_;'\" .-/*\n$1é")), max_size=20))
def test_dangerous_alphabets_never_leak_through(name: str) -> None:
    try:
        quoted = quote_identifier(name, "table")
    except IdentifierError:
        return
    assert not set(quoted) & set(";' -/*\né")
    assert quoted.count('"') == 2 * (name.count(".") + 1)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_$]{0,30}(\.[A-Za-z_][A-Za-z0-9_$]{0,30}){0,2}", fullmatch=True))
def test_every_unquoted_identifier_is_accepted_and_round_trips(name: str) -> None:
    canonical = validate_identifier(name, "table")
    assert canonical == name.upper()
    assert quote_identifier(canonical, "table").replace('"', "") == canonical
