"""Queries of children's measurements."""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.rules import HazReading
from dashat.outcomes import domain
from dashat.outcomes.models import ChildMeasurement
from shared.db import json_rows, json_rows_value


async def upsert(
    session: AsyncSession,
    measurement_id: uuid.UUID,
    *,
    person_id: uuid.UUID,
    measured_on: date,
    age_days: int,
    haz: float | None,
    haz_flag: bool,
) -> None:
    """Insert a measurement or overwrite the facts held under its id (a redelivery, a placeholder)."""
    values = {
        "person_id": person_id,
        "measured_on": measured_on,
        "age_days": age_days,
        "haz": haz,
        "haz_flag": haz_flag,
    }
    await session.execute(
        insert(ChildMeasurement)
        .values(measurement_id=measurement_id, **values)
        .on_conflict_do_update(index_elements=[ChildMeasurement.measurement_id], set_=values)
    )


# A new measurement's row, bound as one JSON parameter (see dashat.people.repository); the flags a new row
# needs are named, since an INSERT from a SELECT does not apply the model's Python defaults.
_MEASUREMENT_ROW = (
    *("measurement_id", "person_id", "measured_on", "age_days", "haz", "haz_flag"),
    *("superseded", "retracted"),
)


@functools.cache
def _upsert_many() -> Insert:
    measurements = typing.cast(Table, ChildMeasurement.__table__)
    stmt = insert(measurements).from_select(_MEASUREMENT_ROW, json_rows(measurements, _MEASUREMENT_ROW))
    return stmt.on_conflict_do_update(
        index_elements=[ChildMeasurement.measurement_id],
        set_={
            name: stmt.excluded[name] for name in ("person_id", "measured_on", "age_days", "haz", "haz_flag")
        },
    )


async def upsert_many(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """`upsert` of several measurements (distinct ids) in one statement."""
    if not rows:
        return
    ordered = [
        {**{name: row[name] for name in _MEASUREMENT_ROW[:6]}, "superseded": False, "retracted": False}
        for row in sorted(rows, key=lambda row: row["measurement_id"])
    ]
    await session.execute(_upsert_many(), {"rows": json_rows_value(ordered)})


async def mark_superseded(
    session: AsyncSession,
    measurement_id: uuid.UUID,
    *,
    person_id: uuid.UUID,
    measured_on: date,
    age_days: int,
) -> None:
    """Mark a corrected measurement; a placeholder stands in for it when it has not arrived yet."""
    await session.execute(
        insert(ChildMeasurement)
        .values(
            measurement_id=measurement_id,
            person_id=person_id,
            measured_on=measured_on,
            age_days=age_days,
            superseded=True,
        )
        .on_conflict_do_update(index_elements=[ChildMeasurement.measurement_id], set_={"superseded": True})
    )


async def mark_retracted(
    session: AsyncSession, measurement_id: uuid.UUID, *, person_id: uuid.UUID, measured_on: date
) -> None:
    """Mark a retracted measurement; a placeholder stands in for it when it has not arrived yet."""
    await session.execute(
        insert(ChildMeasurement)
        .values(
            measurement_id=measurement_id,
            person_id=person_id,
            measured_on=measured_on,
            age_days=0,
            retracted=True,
        )
        .on_conflict_do_nothing()
    )
    await session.execute(
        update(ChildMeasurement)
        .where(ChildMeasurement.measurement_id == measurement_id)
        .values(retracted=True)
    )


async def haz_points(session: AsyncSession, person_id: uuid.UUID, since: date) -> list[domain.Point]:
    """The HAZ values that count for a child's trajectory from `since` on (not retracted, corrected or flagged)."""
    rows = await session.execute(
        select(ChildMeasurement.measured_on, ChildMeasurement.haz).where(
            ChildMeasurement.person_id == person_id,
            ChildMeasurement.retracted.is_(False),
            ChildMeasurement.superseded.is_(False),
            ChildMeasurement.haz_flag.is_(False),
            ChildMeasurement.haz.is_not(None),
            ChildMeasurement.measured_on >= since,
        )
    )
    return [domain.Point(r[0], float(r[1])) for r in rows if r[1] is not None]


async def readings(session: AsyncSession, person_id: uuid.UUID, since: date) -> list[HazReading]:
    """A child's measurements from a day on as the recovery rule reads them (retracted and corrected ones out)."""
    rows = await session.execute(
        select(ChildMeasurement.measured_on, ChildMeasurement.haz, ChildMeasurement.haz_flag).where(
            ChildMeasurement.person_id == person_id,
            ChildMeasurement.retracted.is_(False),
            ChildMeasurement.superseded.is_(False),
            ChildMeasurement.measured_on >= since,
        )
    )
    return [HazReading(measured_on, haz, flag) for measured_on, haz, flag in rows]
