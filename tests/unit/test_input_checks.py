"""The shared input checks of issue 13: text characters, instants, cursors, If-Match (pure, no server)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from shared.errors import PreconditionFailed, ValidationFailed
from shared.web.etag import IF_MATCH_PATTERN, MalformedIfMatch, check_version, parse_if_match
from shared.web.pagination import PageParams, decode_cursor, encode_cursor, keyset
from shared.web.schemas import ApiDateTime, ApiInput, forbidden_char


class Note(ApiInput):
    title: str
    lines: list[str] = []
    extra: dict[str, str] = {}


@pytest.mark.parametrize(
    "bad", ["\u0000", "\u0001", "\u001b", "\u007f", "\u202a", "\u202e", "\u2066", "\u2069", "\r"]
)
def test_control_and_override_characters_are_refused_in_every_string(bad: str) -> None:
    if bad == "\r":  # a carriage return is a line break in free text typed on Windows
        assert Note(title=f"a{bad}b").title == f"a{bad}b"
        return
    for body, loc in (
        ({"title": f"a{bad}b"}, ("title",)),
        ({"title": "ok", "lines": ["x", f"a{bad}"]}, ("lines",)),
        ({"title": "ok", "extra": {f"k{bad}": "v"}}, ("extra",)),
    ):
        with pytest.raises(ValidationError) as caught:
            Note.model_validate(body)
        assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(loc, "text_forbidden_character")]


@pytest.mark.parametrize("bad", ["\u000b", "\u000c", "\u001c", "\u001f"])
def test_a_forbidden_character_at_either_end_is_refused_not_stripped(bad: str) -> None:
    # Python's strip() counts these as whitespace; the schema's pattern refuses them wherever they stand.
    for title in (f"{bad}nik", f"nik{bad}"):
        with pytest.raises(ValidationError) as caught:
            Note.model_validate({"title": title})
        assert [e["type"] for e in caught.value.errors()] == ["text_forbidden_character"]


class Code(ApiInput):
    code: str = Field(min_length=2, max_length=4, pattern=r"^[0-9 ]+$")
    tags: list[str] = []


def test_length_and_pattern_hold_on_the_text_as_sent_then_spaces_are_dropped() -> None:
    # The OpenAPI states maxLength and pattern of the text sent: "3171 " is 5 long, whatever is stored.
    with pytest.raises(ValidationError) as caught:
        Code.model_validate({"code": "3171 "})
    assert [e["type"] for e in caught.value.errors()] == ["string_too_long"]
    for only_spaces in ("  ", " 3 "):
        with pytest.raises(ValidationError) as caught:
            Code.model_validate({"code": only_spaces})
        assert [e["type"] for e in caught.value.errors()] == ["string_too_short"]
    kept = Code.model_validate({"code": " 31 ", "tags": [" a ", "b"]})
    assert (kept.code, kept.tags) == ("31", ["a", "b"])


def test_tabs_newlines_and_indonesian_text_pass() -> None:
    assert Note(title="Siti Aminah\tRT 01\nRW 02 — Ñ é 日本").title.startswith("Siti")
    assert forbidden_char(["a", {"b": ["c"]}]) is None
    assert forbidden_char(["a", {"b": ["c\u0000"]}]) == "\u0000"


INSTANT = TypeAdapter(ApiDateTime)


@pytest.mark.parametrize(
    "bad", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0.5", 0.5, 0, True, "1899-12-31T23:00:00Z",
            "2101-01-01T00:00:00", "yesterday", "2026-02-30T00:00:00Z"],
)  # fmt: skip
def test_instants_out_of_range_or_not_iso_strings_are_refused(bad: Any) -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_python(bad)


def test_instants_keep_their_offset_and_naive_ones_are_utc() -> None:
    wib = INSTANT.validate_python("2026-01-01T07:00:00+07:00")
    assert wib == datetime(2026, 1, 1, tzinfo=UTC) and wib.utcoffset() == timedelta(hours=7)
    assert INSTANT.validate_python("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert INSTANT.validate_python("1900-01-01T00:00:00+14:00").tzinfo == timezone(timedelta(hours=14))


@pytest.mark.parametrize(
    "cursor", ["WyJ4Il0", "W251bGxd", "WyJ4IiwieSJd", "e30", "W10", "W3RydWVd", "W1tdXQ", "!!"]
)
def test_cursors_are_lists_of_strings_and_integers(cursor: str) -> None:
    if cursor in {"WyJ4Il0", "WyJ4IiwieSJd"}:  # well-formed: each list checks them against its key columns
        assert decode_cursor(cursor) in (["x"], ["x", "y"])
        return
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor)


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(["2026-01-01T00:00:00+00:00", 7])) == ["2026-01-01T00:00:00+00:00", 7]


MALFORMED_IF_MATCH = [
    "9" * 4301,
    "1" * 20,
    "\u00b2",
    "\u00b9\u00b2",
    "*x",
    "3",
    '"1"x',
    '"1" "2"',
    "",
    ",",
    ", ,",
    "* , *",
    'w/"1"',
    '"' + "1" * 5000 + '"',
]


@pytest.mark.parametrize("tag", MALFORMED_IF_MATCH)
def test_an_if_match_that_is_no_entity_tag_list_is_400(tag: str) -> None:
    # Malformed syntax (RFC 9110 §15.5.1), not a condition that evaluated to false: 400, naming the header.
    with pytest.raises(MalformedIfMatch) as raised:
        parse_if_match(tag)
    assert raised.value.status == 400
    assert [e["field"] for e in raised.value.errors] == ["header.If-Match"]


@pytest.mark.parametrize(
    "tag", [*MALFORMED_IF_MATCH, "*", '"1"', 'W/"1"', '"a", W/"b" ,"3"', '""', '"1",', ', "1", ,"2"']
)
def test_the_declared_if_match_pattern_is_what_the_parser_reads(tag: str) -> None:
    # The OpenAPI's pattern (with its maxLength 4096) and the parser agree on every value: a value inside the
    # declared schema is never refused as malformed, and one outside it always is.
    declared = len(tag) <= 4096 and re.fullmatch(IF_MATCH_PATTERN, tag) is not None
    try:
        parse_if_match(tag)
        parsed = True
    except MalformedIfMatch:
        parsed = False
    assert declared == parsed, tag


@pytest.mark.parametrize("tag", ['"-1"', '"1.0"', '"' + "1" * 20 + '"', '"x"', '""'])
def test_a_well_formed_tag_naming_no_version_matches_nothing(tag: str) -> None:
    condition = parse_if_match(tag)
    for current in (1, 10, -1):
        with pytest.raises(PreconditionFailed):
            check_version(condition, current)


def test_an_if_match_of_a_bigint_version_is_read() -> None:
    assert parse_if_match('"9223372036854775807"').matches(9223372036854775807)


def test_weak_tags_never_match_for_if_match() -> None:
    # RFC 9110 §13.1.1: If-Match uses the strong comparison, so W/"3" does not match the current "3".
    assert not parse_if_match('W/"3"').matches(3)
    with pytest.raises(PreconditionFailed):
        check_version(parse_if_match('W/"3"'), 3)


def test_star_matches_any_current_version() -> None:
    for current in (1, 2, 9223372036854775807):
        check_version(parse_if_match("*"), current)
        check_version(parse_if_match(" * "), current)


def test_a_list_matches_when_one_strong_member_does() -> None:
    condition = parse_if_match('W/"4", "2" ,"7",')
    assert [v for v in range(1, 9) if condition.matches(v)] == [2, 7]


class Figures(ApiInput):
    iron_mg: float
    portions: int
    maybe: float | None = None
    flag: bool = False


@pytest.mark.parametrize("field", ["iron_mg", "portions", "maybe"])
def test_a_boolean_is_not_a_number(field: str) -> None:
    body: dict[str, Any] = {"iron_mg": 1.5, "portions": 2, field: False}
    with pytest.raises(ValidationError) as caught:
        Figures.model_validate(body)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [((field,), "number_type")]


def test_ints_stay_numbers_for_floats_and_booleans_stay_booleans() -> None:
    assert Figures.model_validate({"iron_mg": 2, "portions": 3, "maybe": 0, "flag": True}).iron_mg == 2.0


@pytest.mark.parametrize("cursor", [["0001-01-01T00:00:00+14:00"], ["not a time"], [5]])
def test_a_cursor_instant_that_is_no_instant_is_422(cursor: list[Any]) -> None:
    from sqlalchemy import Column, DateTime, MetaData, Table, select

    table = Table("t", MetaData(), Column("at", DateTime(timezone=True)))
    params = PageParams(limit=10, cursor=cursor)
    with pytest.raises(ValidationFailed):
        keyset(select(table), params, table.c.at)  # type: ignore[arg-type]
