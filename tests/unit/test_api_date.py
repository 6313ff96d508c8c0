"""The one request date type: only a YYYY-MM-DD string from 1900-01-01 to 2100-12-31 is a date."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import BaseModel, ValidationError

from shared.web.schemas import ApiDate


class Body(BaseModel):
    on: ApiDate
    maybe: ApiDate | None = None


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (1700000000, "date_format"),  # lax pydantic: unix time, 2023-11-14
        (0, "date_format"),
        (20260105, "date_format"),
        (True, "date_format"),
        (1.5, "date_format"),
        ("2026-13-01", "date_invalid"),
        ("2026-02-30", "date_invalid"),
        ("1899-12-31", "date_range"),
        ("2101-01-01", "date_range"),
        ("2026-1-5", "date_format"),
        ("05-01-2026", "date_format"),
        ("2026-01-05T00:00:00", "date_format"),
        ("", "date_format"),
        (None, "date_format"),
    ],
)
def test_what_is_not_a_date(value: object, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Body.model_validate_json(f'{{"on": {_json(value)}}}')
    (err,) = exc.value.errors()
    assert err["loc"] == ("on",) and err["type"] == rule


def test_dates_at_the_bounds_and_python_dates() -> None:
    assert Body.model_validate_json('{"on": "1900-01-01"}').on == date(1900, 1, 1)
    assert Body.model_validate_json('{"on": "2100-12-31", "maybe": null}').on == date(2100, 12, 31)
    assert Body(on=date(2026, 2, 28)).on == date(2026, 2, 28)  # models built in code
    with pytest.raises(ValidationError):
        Body(on=datetime(2026, 2, 28, 10, 0))  # a timestamp is not a date


def test_schema_says_string_date() -> None:
    schema = Body.model_json_schema()["properties"]["on"]
    assert schema["type"] == "string" and schema["format"] == "date"


def _json(value: object) -> str:
    import json

    return json.dumps(value)
