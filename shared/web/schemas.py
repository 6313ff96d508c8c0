"""Base classes of API models, and the one date type every request takes."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

# Dates a request may carry: nothing in the programme lies before 1900 (a birth date before it was stored as
# -infinity) or after 2100.
DATE_MIN: Final = date(1900, 1, 1)
DATE_MAX: Final = date(2100, 12, 31)
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _api_date(value: object) -> date:
    """A calendar date written YYYY-MM-DD, inside DATE_MIN..DATE_MAX.

    Pydantic's lax mode would take a JSON number as unix time (1700000000 -> 2023-11-14) and a bool as 0/1;
    here only the ISO string is a date. Python `date` objects pass (models built in code, not from a request).
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("date_invalid", "not a calendar date (YYYY-MM-DD)") from None
    else:
        raise PydanticCustomError("date_format", "a date is a string written YYYY-MM-DD")
    if not DATE_MIN <= day <= DATE_MAX:
        raise PydanticCustomError(
            "date_range",
            "a date must lie between {min} and {max}",
            {"min": str(DATE_MIN), "max": str(DATE_MAX)},
        )
    return day


ApiDate = Annotated[
    date,
    PlainValidator(_api_date),
    WithJsonSchema(
        {"type": "string", "format": "date", "description": f"YYYY-MM-DD, from {DATE_MIN} to {DATE_MAX}"}
    ),
]
"""The date of every request body field and query parameter (strict ISO date, bounded)."""


class ApiInput(BaseModel):
    """Request bodies: unknown fields are an error (422 naming the field), never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApiOutput(BaseModel):
    """Response bodies, built from ORM rows or dicts."""

    model_config = ConfigDict(from_attributes=True)
