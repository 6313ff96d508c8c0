"""Helpers every registry module uses: scopes, region scope in SQL, list filters, the reference date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement, Select, false, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.regions import CODE_SCHEMA, normalize_code

READ = "registry:read"
WRITE = "registry:write"
PII_READ = "registry:pii:read"
# Finding a person by NIK is itself a personal-data operation (issue 12): its own scope, a purpose, a log row.
NIK_SEARCH = "registry:nik:search"
IMPORT = "registry:import"


def region_clause(column: InstrumentedAttribute[str], principal: Principal) -> ColumnElement[bool]:
    """SQL condition: the row's village code lies inside the principal's region (by dotted segments)."""
    if not principal.region:
        return true()
    try:
        prefix = normalize_code(principal.region)
    except ValueError:
        return false()  # a malformed region claim sees nothing (deny by default)
    return or_(column == prefix, column.like(prefix + ".%"))


def region_filter(column: InstrumentedAttribute[str], code: str | None) -> ColumnElement[bool]:
    """SQL condition for an explicit `region` query filter (any level).

    Absent is no filter; an empty `region=` is a malformed code like any other (the OpenAPI declares the code's
    pattern, which an empty value does not match), not a silent "everything".
    """
    if code is None:
        return true()
    try:
        prefix = normalize_code(code)
    except ValueError as exc:
        raise ValidationFailed("not a region code", field="query.region", rule="region.code_format") from exc
    return or_(column == prefix, column.like(prefix + ".%"))


def where_given(stmt: Select[Any], *filters: tuple[Any, object]) -> Select[Any]:
    """Add `column == value` for every optional list filter the caller gave (None means not filtered)."""
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


RegionQuery = Annotated[
    str | None,
    Query(
        description="Only rows whose village lies in this region code",
        examples=["15.71"],
        json_schema_extra=CODE_SCHEMA,
    ),
]


def today() -> date:
    """The reference date for 'in the future' checks (UTC+7 would move it by hours; UTC is used throughout)."""
    return datetime.now(UTC).date()
