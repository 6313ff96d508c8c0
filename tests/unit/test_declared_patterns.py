"""Issue 13: each pattern the OpenAPI declares is what the code behind it accepts (pure, no server).

Schemathesis generates from the declared patterns: a value inside one that the code refuses is a schema-valid
request refused 422, a value outside one that the code accepts is invalid data accepted. Each pair is checked on
values chosen at the edges by hand.
"""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, ValidationError

from shared.regions import CODE_PATTERN, normalize_code
from shared.web.schemas import (
    DATE_PATTERN,
    DATETIME_PATTERN,
    TEXT_PATTERN,
    ApiDate,
    ApiDateTime,
    ApiInt,
    forbidden_char,
)


@pytest.mark.parametrize(
    "text",
    [
        "Siti Aminah",
        "line\nbreak",
        "tab\there",
        "CR\rLF",
        "é ñ ß",
        "🙂",
        "",
        "X\x00Y",
        "bell\x07",
        "\x7f",
        "a\u202eb",
        "\u2066",
        "\u2069",
        "\x1f",
        "\x0b",
        "\x0c",
        "\u202a",
    ],
)
def test_the_text_pattern_is_the_forbidden_character_rule(text: str) -> None:
    assert (re.fullmatch(TEXT_PATTERN, text) is not None) == (forbidden_char(text) is None), repr(text)


@pytest.mark.parametrize(
    "code",
    [
        "15",
        "15.71",
        "15.71.01",
        "15.71.01.1001",
        "1571",
        "157101",
        "1571011001",
        "1",
        "15.7",
        "15.0",
        "15%",
        "",
        "15.71.01.100",
        "15.71.01.10011",
        "157",
        "15710110011",
        "15.7101",
        "١٥",
    ],
)
def test_the_region_code_pattern_is_what_normalize_code_reads(code: str) -> None:
    try:
        normalize_code(code)
        accepted = True
    except ValueError:
        accepted = False
    assert (re.fullmatch(CODE_PATTERN, code) is not None) == accepted, code


class Dated(BaseModel):
    day: ApiDate | None = None
    at: ApiDateTime | None = None
    count: ApiInt | None = None


@pytest.mark.parametrize(
    "day",
    [
        "1900-01-01",
        "2100-12-31",
        "2026-02-28",
        "1899-12-31",
        "2101-01-01",
        "0001-01-01",
        "9999-12-31",
        "2026-13-01",
        "2026-00-10",
        "2026-01-00",
        "2026-01-32",
        "26-01-01",
    ],
)
def test_the_date_pattern_bounds_what_api_date_accepts(day: str) -> None:
    try:
        Dated(day=day)  # type: ignore[arg-type]
        accepted = True
    except ValidationError:
        accepted = False
    assert (re.fullmatch(DATE_PATTERN, day) is not None) == accepted, day


@pytest.mark.parametrize(
    "instant",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T23:59:59.123456+07:00",
        "1900-01-01T00:00:00+14:00",
        "2100-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00.1234567Z",
    ],
)
def test_what_the_datetime_pattern_admits_api_datetime_accepts(instant: str) -> None:
    # The pattern is the RFC 3339 form; the parser also reads a few more (no offset, a space): a superset.
    if re.fullmatch(DATETIME_PATTERN, instant):
        Dated(at=instant)  # type: ignore[arg-type]
    else:
        with pytest.raises(ValidationError):
            Dated(at=instant)  # type: ignore[arg-type]


def test_a_whole_number_is_an_integer_and_nothing_else_is() -> None:
    assert Dated.model_validate_json('{"count": 1500.0}').count == 1500
    assert Dated.model_validate_json('{"count": 1500}').count == 1500
    for bad, error in (('"1500"', "int_type"), ("true", "int_type"), ("1500.5", "int_from_float")):
        with pytest.raises(ValidationError) as raised:
            Dated.model_validate_json(f'{{"count": {bad}}}')
        assert raised.value.errors()[0]["type"] == error, bad
