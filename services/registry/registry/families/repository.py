"""Every query of Kampung KB, families, persons, memberships and the access log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Row, Select, exists, false, insert, inspect, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import aware, feed_key, region_clause, region_filter, where_given
from registry.families.models import AccessLog, Family, FamilyKkHistory, FamilyMembership, KampungKb, Person
from registry.health.models import Pregnancy
from registry.models import Base, outbox
from registry.regions.models import Region
from shared.auth import Principal
from shared.errors import NotFound
from shared.web.pagination import PageParams, keyset, make_page


async def village_exists(session: AsyncSession, code: str) -> bool:
    found = await session.scalar(
        select(Region.code).where(Region.code == code, Region.level == "village", Region.valid_to.is_(None))
    )
    return found is not None


async def get_kampung_kb(
    session: AsyncSession, kkb_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> KampungKb:
    stmt = select(KampungKb).where(
        KampungKb.id == kkb_id,
        KampungKb.deleted_at.is_(None),
        region_clause(KampungKb.village_code, principal),
    )
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise NotFound("Kampung KB not found")
    return row


async def kampung_kb_code_taken(session: AsyncSession, code: str) -> bool:
    return await session.scalar(select(KampungKb.id).where(KampungKb.code == code)) is not None


class KampungKbFilters(TypedDict):
    """Optional filters of the Kampung KB list."""

    region: str | None
    active: bool | None
    updated_since: datetime | None


class FamilyFilters(TypedDict):
    """Optional filters of the families list."""

    region: str | None
    kampung_kb_id: uuid.UUID | None
    krs: bool | None
    updated_since: datetime | None


class PersonFilters(TypedDict):
    """Optional filters of the persons list."""

    region: str | None
    family_id: uuid.UUID | None
    sex: str | None
    updated_since: datetime | None


async def kampung_kb_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    active: bool | None,
    updated_since: datetime | None,
) -> tuple[list[KampungKb], str | None]:
    """Live Kampung KB in the region (or the change feed, tombstones included)."""
    stmt = where_given(
        select(KampungKb).where(
            region_clause(KampungKb.village_code, principal), region_filter(KampungKb.village_code, region)
        ),
        (KampungKb.active, active),
    )
    return await paged(session, stmt, KampungKb, params, updated_since, KampungKb.deleted_at.is_(None))


async def families_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    krs: bool | None,
    updated_since: datetime | None,
) -> tuple[list[Family], str | None]:
    """Live families in the region (or the change feed, tombstones included)."""
    stmt = where_given(
        select(Family).where(
            region_clause(Family.village_code, principal), region_filter(Family.village_code, region)
        ),
        (Family.kampung_kb_id, kampung_kb_id),
        (Family.krs, krs),
    )
    return await paged(session, stmt, Family, params, updated_since, Family.deleted_at.is_(None))


async def persons_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    family_id: uuid.UUID | None,
    sex: str | None,
    updated_since: datetime | None,
) -> tuple[list[Person], str | None]:
    """Live persons whose current family lies in the region (or the change feed, tombstones included)."""
    stmt = where_given(
        select(Person)
        .join(Family, Family.id == Person.family_id)
        .where(region_clause(Family.village_code, principal), region_filter(Family.village_code, region)),
        (Person.family_id, family_id),
        (Person.sex, sex),
    )
    return await paged(session, stmt, Person, params, updated_since, Person.deleted_at.is_(None))


async def get_family(
    session: AsyncSession, family_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> Family:
    """A live family inside the caller's region, else 404 (no existence leak)."""
    stmt = select(Family).where(
        Family.id == family_id, Family.deleted_at.is_(None), region_clause(Family.village_code, principal)
    )
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise NotFound("family not found")
    return row


async def get_person(
    session: AsyncSession, person_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> tuple[Person, Family]:
    """A live person and their current family, inside the caller's region, else 404."""
    stmt = (
        select(Person, Family)
        .join(Family, Family.id == Person.family_id)
        .where(
            Person.id == person_id, Person.deleted_at.is_(None), region_clause(Family.village_code, principal)
        )
    )
    if lock:
        stmt = stmt.with_for_update(of=Person)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("person not found")
    return row[0], row[1]


async def person_by_nik_index(session: AsyncSession, index: bytes) -> tuple[Person, Family] | None:
    """Any live person holding this NIK (uniqueness is global, whatever the caller's region)."""
    row = (
        await session.execute(
            select(Person, Family)
            .join(Family, Family.id == Person.family_id)
            .where(Person.nik_index == index, Person.deleted_at.is_(None))
        )
    ).first()
    return (row[0], row[1]) if row else None


async def family_by_kk_index(session: AsyncSession, index: bytes) -> Family | None:
    return await session.scalar(select(Family).where(Family.kk_index == index, Family.deleted_at.is_(None)))


async def current_members(session: AsyncSession, family_id: uuid.UUID) -> list[Person]:
    """Members in the family now (not moved out, not deleted), dead ones included for the card."""
    rows = await session.scalars(
        select(Person)
        .where(Person.family_id == family_id, Person.deleted_at.is_(None), Person.moved_out_on.is_(None))
        .order_by(Person.birth_date, Person.id)
    )
    return list(rows)


async def has_ongoing_pregnancy(session: AsyncSession, family_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Pregnancy.family_id == family_id,
                    Pregnancy.status == "ongoing",
                    Pregnancy.deleted_at.is_(None),
                )
            )
        )
    )


async def open_membership(session: AsyncSession, person_id: uuid.UUID) -> FamilyMembership | None:
    return await session.scalar(
        select(FamilyMembership).where(
            FamilyMembership.person_id == person_id, FamilyMembership.ended_on.is_(None)
        )
    )


async def memberships(session: AsyncSession, person_id: uuid.UUID) -> list[FamilyMembership]:
    rows = await session.scalars(
        select(FamilyMembership)
        .where(FamilyMembership.person_id == person_id)
        .order_by(FamilyMembership.started_on, FamilyMembership.created_at)
    )
    return list(rows)


async def kk_history(session: AsyncSession, family_id: uuid.UUID) -> list[FamilyKkHistory]:
    rows = await session.scalars(
        select(FamilyKkHistory)
        .where(FamilyKkHistory.family_id == family_id)
        .order_by(FamilyKkHistory.valid_from, FamilyKkHistory.id)
    )
    return list(rows)


async def current_kk_history(session: AsyncSession, family_id: uuid.UUID) -> FamilyKkHistory | None:
    """The history row of the KK number the family carries now."""
    return await session.scalar(
        select(FamilyKkHistory).where(
            FamilyKkHistory.family_id == family_id, FamilyKkHistory.valid_to.is_(None)
        )
    )


@dataclass(frozen=True)
class NikHolder:
    """A live person already holding a NIK, and where their family lives (to decide what the caller may see)."""

    person_id: uuid.UUID
    nik_index: bytes
    village_code: str


@dataclass(frozen=True)
class RegistrationLookup:
    """What registering a family needs to know from the database."""

    village_exists: bool
    kampung_kb_found: bool
    kk_taken: bool
    nik_holders: list[NikHolder]


async def registration_lookup(
    session: AsyncSession,
    principal: Principal,
    *,
    village_code: str,
    kampung_kb_id: uuid.UUID | None,
    kk_index: bytes | None,
    nik_indexes: Sequence[bytes],
) -> RegistrationLookup:
    """The village, the Kampung KB (in the caller's region), the KK and the NIK holders, in one round trip.

    KK and NIK uniqueness is global, whatever the caller's region; one row per NIK holder (or one row of flags).
    """
    village = exists().where(
        Region.code == village_code, Region.level == "village", Region.valid_to.is_(None)
    )
    kampung_kb = (
        exists().where(
            KampungKb.id == kampung_kb_id,
            KampungKb.deleted_at.is_(None),
            region_clause(KampungKb.village_code, principal),
        )
        if kampung_kb_id is not None
        else false()
    )
    kk = (
        exists().where(Family.kk_index == kk_index, Family.deleted_at.is_(None))
        if kk_index is not None
        else false()
    )
    flags = select(village.label("village"), kampung_kb.label("kampung_kb"), kk.label("kk")).subquery()
    if not nik_indexes:
        row = (await session.execute(select(flags))).one()
        return RegistrationLookup(row.village, row.kampung_kb, row.kk, [])
    holders = (
        select(Person.id, Person.nik_index, Family.village_code)
        .join(Family, Family.id == Person.family_id)
        .where(Person.nik_index.in_(nik_indexes), Person.deleted_at.is_(None))
        .subquery()
    )
    rows = (
        await session.execute(
            select(flags, holders.c.id, holders.c.nik_index, holders.c.village_code).select_from(
                flags.outerjoin(holders, true())
            )
        )
    ).all()
    first = rows[0]
    return RegistrationLookup(
        first.village,
        first.kampung_kb,
        first.kk,
        [NikHolder(r.id, r.nik_index, r.village_code) for r in rows if r.id is not None],
    )


def _new_rows(objects: Sequence[Base]) -> list[dict[str, Any]]:
    """Column values of new ORM objects for one multi-row INSERT; what is not set stays the database's default."""
    states = [inspect(o) for o in objects]
    columns = [a for a in states[0].mapper.column_attrs if any(a.key in s.dict for s in states)]
    for attr in columns:
        if any(attr.key not in s.dict for s in states) and attr.columns[0].server_default is not None:
            raise ValueError(f"{attr.key} is set on some rows only and has a server default")
    return [{a.key: s.dict.get(a.key) for a in columns} for s in states]


async def insert_registration(
    session: AsyncSession,
    *,
    family: Family,
    kk_history: FamilyKkHistory | None,
    persons: list[Person],
    memberships: list[FamilyMembership],
    outbox_rows: list[dict[str, Any]],
) -> Sequence[Row[Any]]:
    """Write a new family with everything it brings in one statement (one INSERT per table, chained as CTEs).

    Foreign keys are checked at the end of the statement, so a member row may be written beside its family row.
    Returns, per person in order, the values the database made: the person's and the family's timestamps and
    versions.
    """
    new_family = (
        insert(Family)
        .values(_new_rows([family]))
        .returning(Family.created_at, Family.updated_at, Family.version)
        .cte("new_family")
    )
    new_persons = (
        insert(Person)
        .values(_new_rows(persons))
        .returning(Person.id, Person.created_at, Person.updated_at, Person.version, Person.name_key)
        .cte("new_person")
    )
    others = [
        insert(FamilyMembership).values(_new_rows(memberships)).cte("new_membership"),
        insert(outbox).values(outbox_rows).cte("new_outbox"),
    ]
    if kk_history is not None:
        others.append(insert(FamilyKkHistory).values(_new_rows([kk_history])).cte("new_kk_history"))
    stmt = (
        select(
            new_persons,
            new_family.c.created_at.label("family_created_at"),
            new_family.c.updated_at.label("family_updated_at"),
            new_family.c.version.label("family_version"),
        )
        .select_from(new_persons.join(new_family, true()))
        .add_cte(*others)
    )
    rows = {r.id: r for r in (await session.execute(stmt)).all()}
    return [rows[p.id] for p in persons]


async def access_log(
    session: AsyncSession, person_id: uuid.UUID, params: PageParams
) -> tuple[list[AccessLog], str | None]:
    stmt = keyset(
        select(AccessLog).where(AccessLog.person_id == person_id), params, AccessLog.accessed_at, AccessLog.id
    )
    rows = list(await session.scalars(stmt))
    return make_page(rows, params, lambda r: (r.accessed_at.isoformat(), str(r.id)))


async def paged(
    session: AsyncSession,
    stmt: Select[Any],
    model: Any,
    params: PageParams,
    updated_since: datetime | None,
    live: Any,
) -> tuple[list[Any], str | None]:
    """A page of a list: live rows by id, or the change feed (tombstones included) by (updated_at, id)."""
    updated_since = aware(updated_since)
    feed = updated_since is not None
    if feed:
        stmt = keyset(stmt.where(model.updated_at > updated_since), params, model.updated_at, model.id)
    else:
        stmt = keyset(stmt.where(live), params, model.id)
    rows = list(await session.scalars(stmt))
    return make_page(rows, params, lambda r: feed_key(r, feed))
