"""Helpers every registry module uses: scopes, list filters (region scope: shared.regions.scope; paging and the
change feed: shared.web.pagination)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import Select

from shared.regions import CODE_SCHEMA

READ = "registry:read"
WRITE = "registry:write"
PII_READ = "registry:pii:read"
# Finding a person by NIK is itself a personal-data operation (issue 12): its own scope, a purpose, a log row.
NIK_SEARCH = "registry:nik:search"
IMPORT = "registry:import"


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
