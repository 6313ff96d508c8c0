"""Queries of potential duplicates and the statements that merge one person into another."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import region_clause
from registry.families.models import Family, FamilyMembership, Person
from registry.growth.models import Measurement, StuntingCase
from registry.health.models import Catin, KbStatus, Pregnancy
from shared.auth import Principal
from shared.web.pagination import PageParams, encode_cursor

Group = tuple[str, str, date, list[uuid.UUID]]


def _live() -> Any:
    return Person.deleted_at.is_(None)


async def near_duplicate_groups(
    session: AsyncSession, principal: Principal, params: PageParams
) -> tuple[list[Group], str | None]:
    """Groups of two or more live persons in the caller's region with the same name key, birth date, village."""
    key = (Family.village_code, Person.name_key, Person.birth_date)
    stmt = (
        select(*key, func.array_agg(Person.id))
        .join(Family, Family.id == Person.family_id)
        .where(_live(), region_clause(Family.village_code, principal))
        .group_by(*key)
        .having(func.count() > 1)
        .order_by(*key)
        .limit(params.limit + 1)
    )
    if params.cursor is not None:
        village, name, birth = params.cursor
        stmt = stmt.where(tuple_(*key) > tuple_(village, name, date.fromisoformat(birth)))
    rows = [(r[0], r[1], r[2], list(r[3])) for r in (await session.execute(stmt)).all()]
    cursor = None
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        last = rows[-1]
        cursor = encode_cursor([last[0], last[1], last[2].isoformat()])
    return rows, cursor


async def without_nik(
    session: AsyncSession, principal: Principal, params: PageParams
) -> tuple[list[Person], str | None]:
    """Live persons without NIK in the caller's region, by id."""
    stmt = (
        select(Person)
        .join(Family, Family.id == Person.family_id)
        .where(_live(), Person.nik_index.is_(None), region_clause(Family.village_code, principal))
        .order_by(Person.id)
        .limit(params.limit + 1)
    )
    if params.cursor is not None:
        stmt = stmt.where(Person.id > uuid.UUID(str(params.cursor[0])))
    rows = list(await session.scalars(stmt))
    cursor = None
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        cursor = encode_cursor([str(rows[-1].id)])
    return rows, cursor


async def candidates(
    session: AsyncSession, principal: Principal, persons: list[Person]
) -> dict[tuple[str, date], list[Person]]:
    """Live persons in the region sharing name key and birth date with any of `persons`."""
    keys = list({(p.name_key, p.birth_date) for p in persons})
    if not keys:
        return {}
    rows = await session.scalars(
        select(Person)
        .join(Family, Family.id == Person.family_id)
        .where(
            _live(),
            region_clause(Family.village_code, principal),
            tuple_(Person.name_key, Person.birth_date).in_(keys),
        )
        .order_by(Person.id)
    )
    out: dict[tuple[str, date], list[Person]] = {}
    for p in rows:
        out.setdefault((p.name_key, p.birth_date), []).append(p)
    return out


async def persons_by_id(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Person]:
    rows = await session.scalars(select(Person).where(Person.id.in_(ids)))
    return {p.id: p for p in rows}


async def both_have(session: AsyncSession, model: Any, column: Any, value: str, ids: list[uuid.UUID]) -> bool:
    """Whether more than one of these persons has a row of `model` with `column == value`."""
    rows = await session.scalars(select(model.id).where(model.person_id.in_(ids), column == value))
    return len(list(rows)) > 1


async def has_current_kb_status(session: AsyncSession, person_id: uuid.UUID) -> bool:
    rows = await session.scalars(select(KbStatus.id).where(KbStatus.person_id == person_id, KbStatus.current))
    return len(list(rows)) > 0


async def retire_current_kb_status(session: AsyncSession, person_id: uuid.UUID) -> None:
    await session.execute(
        update(KbStatus).where(KbStatus.person_id == person_id, KbStatus.current).values(current=False)
    )


async def end_open_membership(session: AsyncSession, person_id: uuid.UUID, on: date, reason: str) -> None:
    await session.execute(
        update(FamilyMembership)
        .where(FamilyMembership.person_id == person_id, FamilyMembership.ended_on.is_(None))
        .values(ended_on=on, end_reason=reason)
    )


# Every column that names a person: a merge re-points them all from the duplicate to the survivor.
PERSON_REFERENCES = (
    FamilyMembership.person_id,
    KbStatus.person_id,
    Measurement.person_id,
    StuntingCase.person_id,
    Pregnancy.person_id,
    Pregnancy.child_person_id,
    Catin.person_id,
    Person.guardian_person_id,
)


async def repoint_person(session: AsyncSession, old_id: uuid.UUID, new_id: uuid.UUID) -> None:
    """Make every reference to `old_id` point at `new_id`."""
    for col in PERSON_REFERENCES:
        await session.execute(update(col.class_).where(col == old_id).values({col.key: new_id}))
