"""Base classes of API models, and the one date type every request takes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from types import UnionType
from typing import Annotated, Any, Final, Self, Union, get_args, get_origin

import annotated_types
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared.errors import ValidationFailed

# Dates a request may carry: nothing in the programme lies before 1900 (a birth date before it was stored as
# -infinity) or after 2100.
DATE_MIN: Final = date(1900, 1, 1)
DATE_MAX: Final = date(2100, 12, 31)
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
# What the OpenAPI declares beside `format`, so that a date the schema admits is one this module accepts: a
# year of DATE_MIN..DATE_MAX (1900..2100) and a month and day in range (the format rules out 02-30 and the like).
_YEAR_PATTERN: Final = r"(?:19[0-9]{2}|20[0-9]{2}|2100)"
DATE_PATTERN: Final = rf"^{_YEAR_PATTERN}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"
# The instants the parser below reads, as RFC 3339 writes them (`T`, seconds, at most 6 decimals, an offset).
DATETIME_PATTERN: Final = (
    rf"^{_YEAR_PATTERN}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


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
        {
            "type": "string",
            "format": "date",
            "pattern": DATE_PATTERN,
            "description": f"YYYY-MM-DD, from {DATE_MIN} to {DATE_MAX}",
        }
    ),
]
"""The date of every request body field and query parameter (strict ISO date, bounded)."""


def _whole_number(value: object) -> object:
    """A JSON integer: 1500, or 1500.0 (the same number, and JSON Schema's `integer` admits it, draft 6 on).

    Refused: true/false, strings ("1500": a number is not text) and fractions (1500.5), where lax pydantic would
    coerce the first two and strict pydantic would also refuse 1500.0, which the declared schema allows.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "a whole number is expected")
    if isinstance(value, float):
        if not value.is_integer():
            raise PydanticCustomError("int_from_float", "a whole number is expected, not a fraction")
        return int(value)
    return value


ApiInt = Annotated[int, BeforeValidator(_whole_number)]
"""An integer of a request body: a JSON number with no fraction (1500 or 1500.0), never a string or a boolean."""


# Characters no stored text may hold: PostgreSQL refuses U+0000 in text (a 500 if it reached the database), the
# other C0 controls and DEL have no place in a name, address or note (tab and line breaks do, in free text), and
# the bidirectional overrides/isolates (U+202A..U+202E, U+2066..U+2069) let a name display as something else
# (the "Trojan Source" trick, CVE-2021-42574).
_FORBIDDEN_CHARS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# The same rule as the OpenAPI declares it on every free-text string a request takes (shared.web.openapi), so a
# string the schema admits is never refused for its characters.
TEXT_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]*$"


def forbidden_char(value: object) -> str | None:
    """The first forbidden character in `value` (a string, or strings nested in lists/dicts), else None."""
    if isinstance(value, str):
        found = _FORBIDDEN_CHARS.search(value)
        return found.group() if found else None
    if isinstance(value, dict):
        for k, v in value.items():
            hit = forbidden_char(k) or forbidden_char(v)
            if hit:
                return hit
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            hit = forbidden_char(v)
            if hit:
                return hit
    return None


def check_text(value: str, field: str) -> str:
    """The same check for text read outside a body model (query parameters, import files): 422 naming `field`."""
    hit = forbidden_char(value)
    if hit is not None:
        raise ValidationFailed(
            f"a control or direction-override character (U+{ord(hit):04X}) is not allowed",
            field=field,
            rule="text_forbidden_character",
        )
    return value


_ISO_DATETIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?"
)


def _api_datetime(value: object) -> datetime:
    """An instant written in ISO 8601 (naive means UTC), inside the same 1900..2100 span as ApiDate.

    Lax pydantic would take a JSON/query number as unix time (`updated_since=0.5`), and an instant valid as
    written (0001-01-01T00:00:00+14:00) can fall outside what PostgreSQL and Python hold once converted to UTC.
    """
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str) and _ISO_DATETIME.fullmatch(value):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("datetime_invalid", "not a valid ISO 8601 date-time") from None
    else:
        raise PydanticCustomError(
            "datetime_format", "a date-time is a string written YYYY-MM-DDThh:mm:ss+hh:mm"
        )
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    # Bounded on the written date: within 1900..2100 no offset (at most +-14:00) can carry the instant out of
    # what Python and PostgreSQL hold when converted to UTC.
    if not DATE_MIN <= instant.date() <= DATE_MAX:
        raise PydanticCustomError(
            "datetime_range",
            "a date-time must lie between {min} and {max}",
            {"min": str(DATE_MIN), "max": str(DATE_MAX)},
        )
    return instant


ApiDateTime = Annotated[
    datetime,
    PlainValidator(_api_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": DATETIME_PATTERN,
            "description": f"ISO 8601 instant (no offset means UTC), from {DATE_MIN} to {DATE_MAX}",
        }
    ),
]
"""The instant of every request field and query parameter (strict ISO 8601 string, bounded, timezone-aware)."""


def _min_length(metadata: list[Any]) -> int:
    """The min_length a field declares (0 when none)."""
    return max((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), default=0)


def _is_number(annotation: object) -> bool:
    """Whether a field takes an int or float (alone or in an optional/union), and not a bool."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) is Annotated:
        return _is_number(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        args = get_args(annotation)
        return bool not in args and any(_is_number(a) for a in args)
    return False


class ApiInput(BaseModel):
    """Request bodies: unknown fields are an error (422 naming the field), never silently dropped.

    Every string field, nested ones included, is refused (422 naming the field) when it holds a forbidden
    character (see `_FORBIDDEN_CHARS`): one check for every body of every service.
    """

    # Surrounding spaces are dropped after the declared maxLength and pattern were checked on the text as sent
    # (pydantic's str_strip_whitespace checks them on the stripped text, so a body the OpenAPI refuses, "31 "
    # for a region code, was accepted); a text that held only spaces then counts as empty.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        # Lax pydantic reads JSON true/false as 1/0 ("iron_mg": false stored 0 mg); ints for floats stay
        # accepted (strict mode would refuse every UUID, enum and date string, which arrive as str).
        name = info.field_name
        if isinstance(value, bool) and name is not None and _is_number(cls.model_fields[name].annotation):
            raise PydanticCustomError("number_type", "a number is expected, not true/false")
        return value

    # On the text as sent: Python's strip() counts U+000B, U+000C and U+001C..U+001F as whitespace. A string
    # field is checked before pydantic reads it; containers after (a nested body checks its own fields, so the
    # error names the nested field).
    @field_validator("*", mode="before")
    @classmethod
    def _no_forbidden_characters(cls, value: object, info: ValidationInfo) -> object:
        return _refuse_forbidden(value) if isinstance(value, str) else value

    @field_validator("*", mode="after")
    @classmethod
    def _trimmed(cls, value: object, info: ValidationInfo) -> object:
        if type(value) is not str:  # an enum or other str subclass keeps its type (strip() would drop it)
            value = _refuse_forbidden(value)
            if isinstance(value, list) and value and all(type(item) is str for item in value):
                return [item.strip() for item in value]
            return value
        trimmed = value.strip()
        name = info.field_name
        shortest = _min_length(cls.model_fields[name].metadata) if name is not None else 0
        if len(trimmed) < shortest:
            raise PydanticCustomError(
                "string_too_short",
                "String should have at least {min_length} characters besides surrounding spaces",
                {"min_length": shortest},
            )
        return trimmed


def _refuse_forbidden(value: object) -> object:
    hit = forbidden_char(value)
    if hit is not None:
        raise PydanticCustomError(
            "text_forbidden_character",
            "a control or direction-override character (U+{code}) is not allowed",
            {"code": f"{ord(hit):04X}"},
        )
    return value


class ApiOutput(BaseModel):
    """Response bodies, built at the edge (the endpoint) from what the service returns: ORM rows, domain objects.

    Each read model says how it is made from its row (`from_row`, or a `from_domain` classmethod when some fields
    are derived or revealed); services never build response models or dicts.
    """

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_row(cls, row: object, /, **derived: Any) -> Self:
        """The model of a stored row: each field is the row's attribute of that name, except the `derived` ones
        (a tombstone flag, a number revealed to this caller...) that the row does not hold as such."""
        values = {name: getattr(row, name) for name in cls.model_fields if name not in derived}
        return cls.model_validate({**values, **derived})


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route takes, its own and its dependencies' (pagination, filters...)."""
    names: set[str] = set()
    pending: list[Dependant] = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(p.alias for p in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


_DECLARED: dict[int, frozenset[str]] = {}
_PARAMETER_NAME: Final = re.compile(r"[a-z_][a-z_]{0,63}")


def reject_unknown_query_parameters(request: Request) -> None:
    """A misspelt or unsupported filter is a 422 naming it, never silently ignored (an unfiltered 200 looks right).

    `village_code=15.71` on a route that takes `region` used to answer every kitchen; the caller could not tell.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = _DECLARED[id(route)] = declared_query_parameters(route)
    # Names are echoed only when they look like parameter names: a caller's key could be anything (a NIK).
    unknown = sorted(
        {
            name if _PARAMETER_NAME.fullmatch(name) else "<unrecognised>"
            for name in request.query_params
            if name not in declared
        }
    )
    if unknown:
        raise ValidationFailed(
            f"unknown query parameter(s): {', '.join(unknown)}; this operation takes "
            + (", ".join(sorted(declared)) or "none"),
            errors=[
                {
                    "field": f"query.{name}",
                    "rule": "query.unknown",
                    "message": "not a parameter of this operation",
                }
                for name in unknown
            ],
            field=f"query.{unknown[0]}",
            rule="query.unknown",
        )


async def clean_parameters(request: Request) -> None:
    """App-wide dependency: only declared query parameters (422 naming the others), and query and path parameters
    hold no forbidden character (422 naming the parameter).

    They are not stored, but a NUL reaching a SQL filter fails in PostgreSQL just the same (a 500).
    """
    reject_unknown_query_parameters(request)
    for where, items in (
        ("query", request.query_params.multi_items()),
        ("path", request.path_params.items()),
    ):
        for name, value in items:
            if isinstance(value, str):
                check_text(value, f"{where}.{name}")
