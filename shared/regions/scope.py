"""Region scope, one way in every service: read a region filter, and keep a query inside a region.

Two questions, never mixed up:
- a *filter* (`?region=15.71`, `body.region_prefix`): what the caller asks for. Absent is no filter; a malformed
  value, the empty string included (the OpenAPI declares the code's pattern), is a 422 naming the field with rule
  `region.format`;
- a *scope* (the token's `region` claim, `Principal.region`): what the caller may see. Checked on every query
  (`in_scope` in SQL, `Principal.can_access` / `ensure_access` on a loaded row); a row outside it is a 404, so its
  existence does not leak.

Codes are compared by dotted segments: `15.71` holds `15.71.01.1001` but not `15.710`.
"""

from __future__ import annotations

from typing import Any, Final, overload

from sqlalchemy import ColumnElement, false, or_, true

from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.regions import normalize_code

__all__ = ["MALFORMED_RULE", "in_scope", "parse_region", "scope_clauses", "within"]

# The rule every service answers for a region code of the wrong shape (problem+json `errors[].rule`).
MALFORMED_RULE: Final = "region.format"


@overload
def parse_region(value: str, field: str = ..., message: str = ...) -> str: ...
@overload
def parse_region(value: None, field: str = ..., message: str = ...) -> None: ...
@overload
def parse_region(value: str | None, field: str = ..., message: str = ...) -> str | None: ...
def parse_region(
    value: str | None, field: str = "query.region", message: str = "not a region code"
) -> str | None:
    """A region code from a request, dotted; None when absent; 422 `region.format` naming `field` when malformed."""
    if value is None:
        return None
    try:
        return normalize_code(value)
    except ValueError as exc:
        raise ValidationFailed(message, field=field, rule=MALFORMED_RULE) from exc


def within(column: Any, region: str | None) -> ColumnElement[bool]:
    """SQL: the row's region code is `region` or lies under it; no region (None or "") keeps every row.

    `region` is a dotted code already read by `parse_region` or a principal's (normalised when the token was
    read); anything else is refused rather than matched as text.
    """
    if not region:
        return true()
    prefix = normalize_code(region)
    return or_(column == prefix, column.like(prefix + ".%"))


def in_scope(column: Any, principal: Principal) -> ColumnElement[bool]:
    """SQL: the row lies inside the principal's region (all rows for a national principal).

    A region claim that is not a code sees nothing (deny by default); `shared.auth` refuses such tokens already.
    """
    if not principal.region:
        return true()
    try:
        return within(column, principal.region)
    except ValueError:
        return false()


def scope_clauses(column: Any, principal: Principal, region: str | None = None) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a list: inside the caller's scope and, when given, inside the requested region."""
    return [in_scope(column, principal), within(column, region)]
