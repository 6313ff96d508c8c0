"""Helpers every registry module uses: list filters, change-feed parameters, views (region scope: shared.regions.scope)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select

from shared.regions import CODE_SCHEMA
from shared.web.schemas import ApiDateTime

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


UpdatedSince = Annotated[
    ApiDateTime | None,
    Query(
        description="Change feed: only rows changed after this instant, ordered by change time, "
        "including deleted/retracted rows as tombstones (`deleted: true`)",
        examples=["2026-11-01T00:00:00Z"],
    ),
]
RegionQuery = Annotated[
    str | None,
    Query(
        description="Only rows whose village lies in this region code",
        examples=["15.71"],
        json_schema_extra=CODE_SCHEMA,
    ),
]


def aware(value: datetime | None) -> datetime | None:
    """Treat a naive `updated_since` as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def feed_key(row: Any, feed: bool) -> tuple[Any, ...]:
    """Cursor key of a row: (updated_at, id) for the change feed, (id,) otherwise."""
    return (row.updated_at.isoformat(), str(row.id)) if feed else (str(row.id),)


def view(row: Any, schema: type[BaseModel], deleted: bool) -> dict[str, Any]:
    """The API fields of a row, by the read schema's field names, with the tombstone flag."""
    return {**{c: getattr(row, c) for c in schema.model_fields if c != "deleted"}, "deleted": deleted}
