"""Small helpers every DASHAT module shares: region filters, RW spelling, today's date."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, or_, true

from shared.db import utcnow
from shared.errors import ValidationFailed
from shared.regions import normalize_code


def region_clause(column: Any, region: str | None) -> ColumnElement[bool]:
    """SQL condition keeping rows located inside a region code prefix; no region keeps every row.

    Every list query passes the caller's region through it (`principal.region`).
    """
    if not region:
        return true()
    prefix = normalize_code(region)
    return or_(column == prefix, column.like(prefix + ".%"))


def region_param(region: str | None, field: str = "query.region") -> str | None:
    """A region code a caller filters by, normalised; a malformed one is a 4xx naming the parameter.

    Absent is no filter; an empty value is malformed like any other (the OpenAPI declares the code's pattern).
    """
    if region is None:
        return None
    try:
        return normalize_code(region)
    except ValueError as exc:
        raise ValidationFailed("not a region code", field=field, rule="region.malformed") from exc


def norm_rw(rw: str | None) -> str | None:
    """RWs are written "3", "03" or "003": compare them as 3-digit strings."""
    if rw is None:
        return None
    value = rw.strip()
    if not value:
        return None
    return value.zfill(3) if value.isdigit() else value.upper()


def today() -> date:
    return utcnow().date()
