"""Every query of Kampung KB, families, persons, memberships and the access log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    LargeBinary,
    Row,
    Select,
    Table,
    TextClause,
    Uuid,
    any_,
    bindparam,
    exists,
    insert,
    inspect,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import where_given
from registry.families.models import AccessLog, Family, FamilyKkHistory, FamilyMembership, KampungKb, Person
from registry.health.models import Pregnancy
from registry.models import Base, outbox
from registry.regions.models import Region
from shared.auth import Principal
from shared.errors import NotFound
from shared.regions.scope import in_scope, parse_region, within
from shared.web.pagination import PageParams, change_feed_page, keyset_page


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
        in_scope(KampungKb.village_code, principal),
    )
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise NotFound("Kampung KB not found")
    return row


async def kampung_kb_code_taken(session: AsyncSession, code: str) -> bool:
    return await session.scalar(select(KampungKb.id).where(KampungKb.code == code)) is not None


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
            in_scope(KampungKb.village_code, principal), within(KampungKb.village_code, parse_region(region))
        ),
        (KampungKb.active, active),
    )
    return await change_feed_page(
        session, stmt, KampungKb, params, updated_since=updated_since, live=KampungKb.deleted_at.is_(None)
    )


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
            in_scope(Family.village_code, principal), within(Family.village_code, parse_region(region))
        ),
        (Family.kampung_kb_id, kampung_kb_id),
        (Family.krs, krs),
    )
    return await change_feed_page(
        session, stmt, Family, params, updated_since=updated_since, live=Family.deleted_at.is_(None)
    )


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
        .where(in_scope(Family.village_code, principal), within(Family.village_code, parse_region(region))),
        (Person.family_id, family_id),
        (Person.sex, sex),
    )
    return await change_feed_page(
        session, stmt, Person, params, updated_since=updated_since, live=Person.deleted_at.is_(None)
    )


async def get_family(
    session: AsyncSession, family_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> Family:
    """A live family inside the caller's region, else 404 (no existence leak)."""
    stmt = select(Family).where(
        Family.id == family_id, Family.deleted_at.is_(None), in_scope(Family.village_code, principal)
    )
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise NotFound("family not found")
    return row


@lru_cache(maxsize=256)
def _person_statement(region: str | None, lock: bool) -> Select[Person, Family]:
    """Built once per region scope and lock; the person is a bound parameter.

    Building it per request was a tenth of a measurement's CPU (seen with py-spy).
    """
    scope = Principal(sub="region-scope", region=region)  # in_scope reads only the region
    stmt = (
        select(Person, Family)
        .join(Family, Family.id == Person.family_id)
        .where(
            Person.id == bindparam("person_id", type_=Uuid()),
            Person.deleted_at.is_(None),
            in_scope(Family.village_code, scope),
        )
    )
    return stmt.with_for_update(of=Person) if lock else stmt


async def get_person(
    session: AsyncSession, person_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> tuple[Person, Family]:
    """A live person and their current family, inside the caller's region, else 404."""
    row = (await session.execute(_person_statement(principal.region, lock), {"person_id": person_id})).first()
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


@lru_cache(maxsize=256)
def _registration_lookup_statement(region: str | None) -> Select[Any]:
    """Built once per region scope (its clause is part of the statement); every value is a bound parameter.

    A NULL Kampung KB id or KK index matches nothing, so one statement serves every request.
    """
    scope = Principal(sub="region-scope", region=region)  # in_scope reads only the region
    village = exists().where(
        Region.code == bindparam("village_code"), Region.level == "village", Region.valid_to.is_(None)
    )
    kampung_kb = exists().where(
        KampungKb.id == bindparam("kampung_kb_id", type_=Uuid()),
        KampungKb.deleted_at.is_(None),
        in_scope(KampungKb.village_code, scope),
    )
    kk = exists().where(
        Family.kk_index == bindparam("kk_index", type_=LargeBinary()), Family.deleted_at.is_(None)
    )
    flags = select(village.label("village"), kampung_kb.label("kampung_kb"), kk.label("kk")).subquery()
    holders = (
        select(Person.id, Person.nik_index, Family.village_code)
        .join(Family, Family.id == Person.family_id)
        .where(
            Person.nik_index == any_(bindparam("nik_indexes", type_=ARRAY(LargeBinary()))),
            Person.deleted_at.is_(None),
        )
        .subquery()
    )
    return select(flags, holders.c.id, holders.c.nik_index, holders.c.village_code).select_from(
        flags.outerjoin(holders, true())
    )


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
    rows = (
        await session.execute(
            _registration_lookup_statement(principal.region),
            {
                "village_code": village_code,
                "kampung_kb_id": kampung_kb_id,
                "kk_index": kk_index,
                "nik_indexes": list(nik_indexes),
            },
        )
    ).all()
    first = rows[0]
    return RegistrationLookup(
        first.village,
        first.kampung_kb,
        first.kk,
        [NikHolder(r.id, r.nik_index, r.village_code) for r in rows if r.id is not None],
    )


Shape = tuple[tuple[str, ...], int]  # the columns a table's new rows set, and how many rows


def _new_rows(objects: Sequence[Base]) -> tuple[Shape, list[dict[str, Any]]]:
    """Column values of new ORM objects for one multi-row INSERT; what is not set stays the database's default."""
    states = [inspect(o) for o in objects]
    columns = [a for a in states[0].mapper.column_attrs if any(a.key in s.dict for s in states)]
    for attr in columns:
        if any(attr.key not in s.dict for s in states) and attr.columns[0].server_default is not None:
            raise ValueError(f"{attr.key} is set on some rows only and has a server default")
    keys = tuple(a.key for a in columns)
    return (keys, len(states)), [{k: s.dict.get(k) for k in keys} for s in states]


def _values(table: Table, name: str, shape: Shape) -> list[dict[str, Any]]:
    """Bound parameters `<name>_<row>_<column>` for the rows of one INSERT, typed like their columns."""
    keys, count = shape
    return [{k: bindparam(f"{name}_{i}_{k}", type_=table.c[k].type) for k in keys} for i in range(count)]


# Renders the registration statement to SQL text once per shape: SQLAlchemy does not cache statements with
# multi-row VALUES, and compiling this one on every request was the largest CPU cost of a registration.
_RENDERING_DIALECT = PGDialect(paramstyle="named")  # type: ignore[no-untyped-call]
# No casts next to the parameters (`:x::UUID`), which text() would misread; the columns type the values.
_RENDERING_DIALECT.bind_typing = BindTyping.NONE


@lru_cache(maxsize=256)
def _registration_statement(
    family: Shape, kk_history: Shape | None, persons: Shape, memberships: Shape, events: Shape
) -> TextClause:
    """The INSERTs of a registration as one statement, built once per shape (columns set, rows per table)."""
    stmt = _registration_select(family, kk_history, persons, memberships, events)
    compiled = stmt.compile(dialect=_RENDERING_DIALECT)
    binds = [bindparam(name, type_=b.type) for name, b in compiled.binds.items()]
    return text(compiled.string).bindparams(*binds)


def _registration_select(
    family: Shape, kk_history: Shape | None, persons: Shape, memberships: Shape, events: Shape
) -> Select[Any]:
    new_family = (
        insert(Family)
        .values(_values(Family.__table__, "family", family))  # type: ignore[arg-type]
        .returning(Family.created_at, Family.updated_at, Family.version)
        .cte("new_family")
    )
    new_persons = (
        insert(Person)
        .values(_values(Person.__table__, "person", persons))  # type: ignore[arg-type]
        .returning(Person.id, Person.created_at, Person.updated_at, Person.version, Person.name_key)
        .cte("new_person")
    )
    others = [
        insert(FamilyMembership)
        .values(_values(FamilyMembership.__table__, "membership", memberships))  # type: ignore[arg-type]
        .cte("new_membership"),
        insert(outbox).values(_values(outbox, "outbox", events)).cte("new_outbox"),
    ]
    if kk_history is not None:
        others.append(
            insert(FamilyKkHistory)
            .values(_values(FamilyKkHistory.__table__, "kk_history", kk_history))  # type: ignore[arg-type]
            .cte("new_kk_history")
        )
    return (
        select(
            new_persons,
            new_family.c.created_at.label("family_created_at"),
            new_family.c.updated_at.label("family_updated_at"),
            new_family.c.version.label("family_version"),
        )
        .select_from(new_persons.join(new_family, true()))
        .add_cte(*others)
    )


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
    params: dict[str, Any] = {}
    shapes: list[Shape | None] = []
    for name, objects in (
        ("family", [family]),
        ("kk_history", [kk_history] if kk_history is not None else []),
        ("person", persons),
        ("membership", memberships),
    ):
        if not objects:
            shapes.append(None)
            continue
        shape, rows = _new_rows(objects)
        shapes.append(shape)
        params.update({f"{name}_{i}_{k}": v for i, row in enumerate(rows) for k, v in row.items()})
    event_keys = tuple(outbox_rows[0])
    params.update({f"outbox_{i}_{k}": row[k] for i, row in enumerate(outbox_rows) for k in event_keys})
    family_shape, history_shape, person_shape, membership_shape = shapes
    assert family_shape is not None and person_shape is not None and membership_shape is not None
    stmt = _registration_statement(
        family_shape, history_shape, person_shape, membership_shape, (event_keys, len(outbox_rows))
    )
    made = {r.id: r for r in (await session.execute(stmt, params)).all()}
    return [made[p.id] for p in persons]


async def access_log(
    session: AsyncSession, person_id: uuid.UUID, params: PageParams
) -> tuple[list[AccessLog], str | None]:
    stmt = select(AccessLog).where(AccessLog.person_id == person_id)
    return await keyset_page(session, stmt, params, AccessLog.accessed_at, AccessLog.id)
