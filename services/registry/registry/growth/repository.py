"""Every query of measurements and stunting cases."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, Uuid, bindparam, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import where_given
from registry.families import repository as fam_repo
from registry.families.models import Family, Person
from registry.growth.models import Measurement, StuntingCase
from registry.health.repository import scoped
from registry.models import outbox
from shared.auth import Principal
from shared.errors import NotFound
from shared.web.pagination import PageParams, change_feed_page

# ------------------------------------------------------------------------------------------ measurements


async def measurements_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    person_id: uuid.UUID | None,
    kampung_kb_id: uuid.UUID | None,
    haz_class: str | None,
    updated_since: datetime | None,
) -> tuple[list[Measurement], str | None]:
    """Active measurements in the region (or the change feed, corrected and retracted ones included)."""
    stmt = where_given(
        scoped(Measurement, principal, region),
        (Measurement.person_id, person_id),
        (Family.kampung_kb_id, kampung_kb_id),
        (Measurement.haz_class, haz_class),
    )
    return await change_feed_page(
        session, stmt, Measurement, params, updated_since=updated_since, live=Measurement.status == "active"
    )


async def get_measurement(
    session: AsyncSession, principal: Principal, measurement_id: uuid.UUID, *, lock: bool = False
) -> tuple[Measurement, Person, Family]:
    """A measurement with its child and the child's family, inside the caller's region, else 404."""
    stmt = select(Measurement).where(Measurement.id == measurement_id)
    m = await session.scalar(stmt.with_for_update() if lock else stmt)
    if m is None:
        raise NotFound("measurement not found")
    try:
        person, family = await fam_repo.get_person(session, m.person_id, principal, lock=lock)
    except NotFound:
        raise NotFound("measurement not found") from None
    return m, person, family


async def measurements_of_person(session: AsyncSession, person_id: uuid.UUID) -> list[Measurement]:
    """Every measurement of a child, corrected and retracted ones included, oldest first."""
    stmt = (
        select(Measurement)
        .where(Measurement.person_id == person_id)
        .order_by(Measurement.created_at, Measurement.id)
    )
    return list((await session.scalars(stmt)).all())


class OpenCase(NamedTuple):
    """The child's open stunting case, as far as a new measurement's case rules need it (the row is locked)."""

    id: uuid.UUID
    measurement_id: uuid.UUID
    measured_on: date


# The columns a new measurement sets (the rest are the database's defaults or empty), and an outbox row's.
_NEW_MEASUREMENT_COLUMNS = (
    "id",
    "person_id",
    "family_id",
    "measured_on",
    "age_days",
    "weight_kg",
    "lenhei_cm",
    "position",
    "oedema",
    "haz",
    "waz",
    "whz",
    "haz_flag",
    "waz_flag",
    "whz_flag",
    "standing_under_9_months",
    "haz_class",
    "waz_class",
    "whz_class",
    "rule_version",
    "status",
    "recorded_by",
)
_OUTBOX_COLUMNS = ("event_id", "topic", "partition_key", "event_type", "envelope")


@lru_cache(maxsize=1)
def _new_measurement_statement() -> Select[Any]:
    """Built once; every value is a bound parameter, so SQLAlchemy compiles it once too.

    The open case is read in the same statement as the writes, after the child's row was locked by the previous
    one, so its snapshot sees a case any earlier writer of this child committed; `FOR UPDATE` keeps it locked as
    `open_case` does.
    """
    table = Measurement.__table__
    new_measurement = (
        insert(Measurement)
        .values({k: bindparam(f"m_{k}", type_=table.c[k].type) for k in _NEW_MEASUREMENT_COLUMNS})
        .returning(Measurement.created_at, Measurement.updated_at, Measurement.version)
        .cte("new_measurement")
    )
    new_outbox = (
        insert(outbox)
        .values({k: bindparam(f"outbox_{k}", type_=outbox.c[k].type) for k in _OUTBOX_COLUMNS})
        .cte("new_outbox")
    )
    case = (
        select(StuntingCase.id, StuntingCase.measurement_id, StuntingCase.measured_on)
        .where(
            StuntingCase.person_id == bindparam("m_person_id", type_=Uuid()), StuntingCase.status == "open"
        )
        .with_for_update()
        .lateral("open_case")
    )
    return (
        select(
            new_measurement.c.created_at,
            new_measurement.c.updated_at,
            new_measurement.c.version,
            case.c.id.label("case_id"),
            case.c.measurement_id.label("case_measurement_id"),
            case.c.measured_on.label("case_measured_on"),
        )
        .select_from(new_measurement.outerjoin(case, true()))
        .add_cte(new_outbox)
    )


async def insert_measurement(
    session: AsyncSession, m: Measurement, outbox_row: dict[str, Any]
) -> OpenCase | None:
    """Write a new measurement and its outbox row, and read the child's open case, in one statement.

    The database's defaults (timestamps, version) are set on `m`; `m` itself stays out of the session.
    """
    params = {f"m_{k}": getattr(m, k) for k in _NEW_MEASUREMENT_COLUMNS}
    params.update({f"outbox_{k}": outbox_row[k] for k in _OUTBOX_COLUMNS})
    row = (await session.execute(_new_measurement_statement(), params)).one()
    m.created_at, m.updated_at, m.version = row.created_at, row.updated_at, row.version
    if row.case_id is None:
        return None
    return OpenCase(row.case_id, row.case_measurement_id, row.case_measured_on)


async def measurement_by_id(session: AsyncSession, measurement_id: uuid.UUID) -> Measurement:
    return await session.get_one(Measurement, measurement_id)


# ------------------------------------------------------------------------------------------ stunting cases


async def cases_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    status: str | None,
    updated_since: datetime | None,
) -> tuple[list[StuntingCase], str | None]:
    """Stunting cases in the region (or the change feed, retracted ones included)."""
    stmt = where_given(
        scoped(StuntingCase, principal, region),
        (Family.kampung_kb_id, kampung_kb_id),
        (StuntingCase.status, status),
    )
    return await change_feed_page(
        session,
        stmt,
        StuntingCase,
        params,
        updated_since=updated_since,
        live=StuntingCase.status != "retracted",
    )


async def get_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> StuntingCase:
    """A stunting case (retracted ones too) inside the caller's region, else 404."""
    row: StuntingCase | None = await session.scalar(
        scoped(StuntingCase, principal, None).where(StuntingCase.id == case_id)
    )
    if row is None:
        raise NotFound("stunting case not found")
    return row


async def open_case(session: AsyncSession, person_id: uuid.UUID) -> StuntingCase | None:
    """The child's open case, locked."""
    return await session.scalar(
        select(StuntingCase)
        .where(StuntingCase.person_id == person_id, StuntingCase.status == "open")
        .with_for_update()
    )


async def cases_caused_by(
    session: AsyncSession, measurement_id: uuid.UUID, *, lock: bool = False
) -> list[StuntingCase]:
    """Cases (not retracted) that this measurement opened."""
    stmt = select(StuntingCase).where(
        StuntingCase.measurement_id == measurement_id, StuntingCase.status != "retracted"
    )
    return list(await session.scalars(stmt.with_for_update() if lock else stmt))


async def case_resolved_by(session: AsyncSession, measurement_id: uuid.UUID) -> StuntingCase | None:
    """The case this measurement resolved, locked."""
    return await session.scalar(
        select(StuntingCase)
        .where(StuntingCase.resolved_by_measurement_id == measurement_id, StuntingCase.status == "resolved")
        .with_for_update()
    )
