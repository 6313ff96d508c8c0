"""Small helpers every DASHAT module shares: region filters, RW spelling, today's date."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, or_, true

from shared.auth import Principal
from shared.db import utcnow
from shared.regions import normalize_code


def region_clause(column: Any, principal: Principal) -> ColumnElement[bool]:
    """SQL condition keeping rows located inside the caller's region (every list query uses it)."""
    if not principal.region:
        return true()
    prefix = normalize_code(principal.region)
    return or_(column == prefix, column.like(prefix + ".%"))


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
