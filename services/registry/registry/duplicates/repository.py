"""Queries of potential duplicates and the statements that merge one person into another."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Text, cast, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.families.models import Family, FamilyMembership, Person
from registry.growth.models import Measurement, StuntingCase
from registry.health.models import Catin, KbStatus, Pregnancy
from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.regions.scope import in_scope
from shared.web.pagination import PageParams, encode_cursor
from shared.web.schemas import forbidden_char

Group = tuple[str, str, date, list[uuid.UUID]]


def _live() -> Any:
    return Person.deleted_at.is_(None)


async def near_duplicate_groups(
    session: AsyncSession, principal: Principal, params: PageParams
) -> tuple[list[Group], str | None]:
    """Groups of two or more live persons in the caller's region with the same name key, birth date, village.

    Ordered by village and the group's smallest person id, so the cursor holds only those two (no name or birth
    date in a URL: cursors are opaque and carry no personal data).
    """
    key = (Family.village_code, Person.name_key, Person.birth_date)
    first_id = func.min(cast(Person.id, Text))
    stmt = (
        select(*key, func.array_agg(Person.id), first_id)
        .join(Family, Family.id == Person.family_id)
        .where(_live(), in_scope(Family.village_code, principal))
        .group_by(*key)
        .having(func.count() > 1)
        .order_by(Family.village_code, first_id)
        .limit(params.limit + 1)
    )
    if params.cursor is not None:
        village, after_id = _cursor_of_group(params.cursor)
        stmt = stmt.having(tuple_(Family.village_code, first_id) > tuple_(village, after_id))
    rows = (await session.execute(stmt)).all()
    cursor = None
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        cursor = encode_cursor([rows[-1][0], rows[-1][4]])
    return [(r[0], r[1], r[2], list(r[3])) for r in rows], cursor


def _cursor_of_group(values: list[Any]) -> tuple[str, str]:
    """[village code, smallest person id of the last group]; anything else is a forged cursor (422)."""
    if len(values) != 2 or not all(isinstance(v, str) for v in values) or forbidden_char(values[0]):
        raise ValidationFailed("cursor is not valid", field="query.cursor", rule="cursor.invalid")
    try:
        return values[0], str(uuid.UUID(values[1]))
    except ValueError as exc:
        raise ValidationFailed("cursor is not valid", field="query.cursor", rule="cursor.invalid") from exc


async def without_nik(
    session: AsyncSession, principal: Principal, params: PageParams
) -> tuple[list[Person], str | None]:
    """Live persons without NIK in the caller's region, by id."""
    stmt = (
        select(Person)
        .join(Family, Family.id == Person.family_id)
        .where(_live(), Person.nik_index.is_(None), in_scope(Family.village_code, principal))
        .order_by(Person.id)
        .limit(params.limit + 1)
    )
    if params.cursor is not None:
        if len(params.cursor) != 1 or not isinstance(params.cursor[0], str):
            raise ValidationFailed("cursor is not valid", field="query.cursor", rule="cursor.invalid")
        try:
            after = uuid.UUID(params.cursor[0])
        except ValueError as exc:
            raise ValidationFailed(
                "cursor is not valid", field="query.cursor", rule="cursor.invalid"
            ) from exc
        stmt = stmt.where(Person.id > after)
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
            in_scope(Family.village_code, principal),
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
