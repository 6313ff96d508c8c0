"""Keyset (cursor) pagination with a capped page size, and the change feed every list offers the same way.

One helper per shape: `keyset_page` (a page ordered by key columns) and `change_feed_page` (live rows by id, or,
with `updated_since`, every row changed since then, tombstones included, by (updated_at, id)). A repository
builds the filtered SELECT; these add the order, the cursor and the next cursor, so each list reads the same way.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.errors import ValidationFailed
from shared.web.schemas import ApiDateTime, forbidden_char

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` to get the next one (null at the end)."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque cursor of the next page")


class PageParams(BaseModel):
    limit: int
    cursor: list[Any] | None


def encode_cursor(values: list[Any]) -> str:
    """Opaque, URL-safe cursor from the sort key of the last row."""
    return base64.urlsafe_b64encode(orjson.dumps(values, default=str)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
    except Exception as exc:
        raise _invalid_cursor() from exc
    # Every cursor this module writes is a non-empty list of strings and integers (ids, codes, instants, row
    # numbers); anything else was not written here. Each list checks the values' types against its key columns.
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values)
    ):
        raise _invalid_cursor()
    return values


def page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="Page size (capped by the service)")] = None,
    cursor: Annotated[str | None, Query(description="Cursor from the previous page's next_cursor")] = None,
) -> PageParams:
    """Dependency reading `limit` and `cursor`; the limit is capped to the service maximum."""
    settings = request.app.state.settings
    size = min(limit or settings.page_size_default, settings.page_size_max)
    return PageParams(limit=size, cursor=decode_cursor(cursor) if cursor else None)


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed("cursor is not valid", field="query.cursor", rule="cursor.invalid")


def _coerce(value: Any, column: InstrumentedAttribute[Any]) -> Any:
    """The cursor value as the column's type; a value of another type (a forged cursor) is a 422, never a 500."""
    python_type = column.type.python_type
    try:
        if python_type is datetime:
            if not isinstance(value, str):
                raise _invalid_cursor()
            instant = datetime.fromisoformat(value)
            # Out of range once converted (year 1 at +14:00) fails here (OverflowError), not in asyncpg.
            instant.astimezone(UTC)
            return instant
        if python_type is uuid.UUID:
            if not isinstance(value, str):
                raise _invalid_cursor()
            return uuid.UUID(value)
        if python_type is int:
            if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
                raise _invalid_cursor()
            return value
        if python_type is str:
            if not isinstance(value, str) or forbidden_char(value) is not None:
                raise _invalid_cursor()
            return value
    except (ValueError, OverflowError) as exc:
        raise _invalid_cursor() from exc
    raise _invalid_cursor()


def keyset(stmt: Select[Any], params: PageParams, *columns: InstrumentedAttribute[Any]) -> Select[Any]:
    """Order by the key columns (ascending) and start after the cursor; fetches one extra row."""
    if params.cursor is not None:
        if len(params.cursor) != len(columns):
            raise _invalid_cursor()
        values = [_coerce(v, c) for v, c in zip(params.cursor, columns, strict=True)]
        if len(columns) == 1:
            stmt = stmt.where(columns[0] > values[0])
        else:
            stmt = stmt.where(or_(tuple_(*columns) > tuple_(*values)))
    return stmt.order_by(*columns).limit(params.limit + 1)


def make_page(rows: list[Any], params: PageParams, key: Any) -> tuple[list[Any], str | None]:
    """Split the extra row off and build the next cursor from `key(last_row)`."""
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(list(key(rows[-1])))
    return rows, None


def cursor_values(row: Any, columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    """The row's key values as a cursor holds them: instants in ISO 8601, ids as text, codes and numbers as is."""
    values: list[Any] = []
    for column in columns:
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        values.append(value)
    return values


async def keyset_page(
    session: AsyncSession, stmt: Select[Any], params: PageParams, *columns: InstrumentedAttribute[Any]
) -> tuple[list[Any], str | None]:
    """One page of `stmt` ordered by the key columns (the last one unique), and the next page's cursor."""
    rows = list(await session.scalars(keyset(stmt, params, *columns)))
    return make_page(rows, params, lambda row: cursor_values(row, columns))


UpdatedSince = Annotated[
    ApiDateTime | None,
    Query(
        description="Change feed: only rows changed after this instant, ordered by change time, "
        "including deleted/retracted rows as tombstones (`deleted: true`)",
        examples=["2026-11-01T00:00:00Z"],
    ),
]
"""The change-feed query parameter of every list that offers one (same name, meaning and order everywhere)."""


async def change_feed_page(
    session: AsyncSession,
    stmt: Select[Any],
    model: Any,
    params: PageParams,
    *,
    updated_since: datetime | None,
    live: ColumnElement[bool] | InstrumentedAttribute[bool],
) -> tuple[list[Any], str | None]:
    """A list page: the `live` rows by id, or the change feed after `updated_since` by (updated_at, id).

    The feed includes what `live` leaves out (deleted, retracted, replaced rows) so a follower learns of them as
    tombstones; a cursor from one mode is refused by the other (its number of key values differs). A naive instant
    is UTC. `model` needs `id` and `updated_at` columns.
    """
    if updated_since is None:
        return await keyset_page(session, stmt.where(live), params, model.id)
    if updated_since.tzinfo is None:
        updated_since = updated_since.replace(tzinfo=UTC)
    return await keyset_page(
        session, stmt.where(model.updated_at > updated_since), params, model.updated_at, model.id
    )
