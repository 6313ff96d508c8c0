"""Every query of measurements and stunting cases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import where_given
from registry.families import repository as fam_repo
from registry.families.models import Family, Person
from registry.growth.models import Measurement, StuntingCase
from registry.health.repository import scoped
from shared.auth import Principal
from shared.errors import NotFound
from shared.web.pagination import PageParams

# ------------------------------------------------------------------------------------------ measurements


class MeasurementFilters(TypedDict):
    """Optional filters of the measurements list."""

    region: str | None
    person_id: uuid.UUID | None
    kampung_kb_id: uuid.UUID | None
    haz_class: str | None
    updated_since: datetime | None


class CaseFilters(TypedDict):
    """Optional filters of the cases list."""

    region: str | None
    kampung_kb_id: uuid.UUID | None
    status: str | None
    updated_since: datetime | None


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
    return await fam_repo.paged(
        session, stmt, Measurement, params, updated_since, Measurement.status == "active"
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
    return await fam_repo.paged(
        session, stmt, StuntingCase, params, updated_since, StuntingCase.status != "retracted"
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
