"""The one list helper and the one response shape: pure parts (no database; the list endpoints' tests run them
against PostgreSQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import DateTime, Integer, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.web.pagination import cursor_values, decode_cursor, encode_cursor
from shared.web.schemas import ApiOutput


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "row"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    code: Mapped[str] = mapped_column(Text)
    row_no: Mapped[int] = mapped_column(Integer)


ROW_ID = uuid.UUID("0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10")


def _row() -> _Row:
    wib = timezone(timedelta(hours=7))
    return _Row(
        id=ROW_ID, updated_at=datetime(2026, 11, 29, 12, 0, 30, 5, tzinfo=wib), code="32.10", row_no=7
    )


def test_a_feed_cursor_holds_the_instant_in_iso_8601_and_the_id_as_text() -> None:
    values = cursor_values(_row(), [_Row.updated_at, _Row.id])
    # The cursor the change feed wrote before the helper: (updated_at.isoformat(), str(id)).
    assert values == ["2026-11-29T12:00:30.000005+07:00", "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10"]
    assert decode_cursor(encode_cursor(values)) == values


def test_codes_and_row_numbers_stay_as_they_are() -> None:
    assert cursor_values(_row(), [_Row.code, _Row.row_no, _Row.id]) == [
        "32.10",
        7,
        "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10",
    ]


class _Read(ApiOutput):
    id: uuid.UUID
    code: str
    row_no: int
    deleted: bool = False


def test_from_row_takes_the_fields_by_name_and_the_derived_ones_from_the_caller() -> None:
    read = _Read.from_row(_row(), deleted=True)
    assert read.model_dump(mode="json") == {
        "id": "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10",
        "code": "32.10",
        "row_no": 7,
        "deleted": True,
    }


@dataclass
class _NoDeletedAttribute:
    id: uuid.UUID
    code: str
    row_no: int


def test_a_derived_field_is_never_read_from_the_row() -> None:
    # `deleted` is not an attribute: from_row must not look it up (an AttributeError would be a 500).
    row: Any = _NoDeletedAttribute(ROW_ID, "15.71", 1)
    assert _Read.from_row(row, deleted=False).deleted is False
    assert _Read.from_row(row, deleted=True, code="x").code == "x"


def test_an_instant_in_utc_keeps_its_offset_in_the_cursor() -> None:
    row = _row()
    row.updated_at = datetime(2026, 1, 1, tzinfo=UTC)
    assert cursor_values(row, [_Row.updated_at]) == ["2026-01-01T00:00:00+00:00"]
