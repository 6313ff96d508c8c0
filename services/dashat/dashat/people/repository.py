"""Queries of the people replica."""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from dashat.people.models import FamilyReplica, GroupReplica, PersonReplica
from shared.db import json_rows, json_rows_value
from shared.replica import newer_clause


async def lock_person(session: AsyncSession, person_id: uuid.UUID) -> PersonReplica:
    """The person's replica row, created empty when no event about them arrived yet; locked for the update.

    Looked up first: the row usually exists, and then that is the only round trip (the INSERT that found a
    conflict was one more per event, a tenth of a stunting detection's handling).
    """
    locked = select(PersonReplica).where(PersonReplica.person_id == person_id).with_for_update()
    row = (await session.execute(locked)).scalar_one_or_none()
    if row is None:
        await session.execute(
            insert(PersonReplica)
            .values(person_id=person_id, krs_reasons=[], catin_risks=[])
            .on_conflict_do_nothing()
        )
        row = (await session.execute(locked)).scalar_one()
    return row


async def lock_existing(
    session: AsyncSession, person_ids: Sequence[uuid.UUID], family_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Lock the persons' and families' replica rows that exist, in id order (persons first, as the API does).

    Returns the family each existing person belongs to now (nothing enters the session).
    """
    held: dict[uuid.UUID, uuid.UUID | None] = {}
    if person_ids:
        rows = await session.execute(
            select(PersonReplica.person_id, PersonReplica.family_id)
            .where(PersonReplica.person_id.in_(person_ids))
            .order_by(PersonReplica.person_id)
            .with_for_update()
        )
        held = {person_id: family_id for person_id, family_id in rows}
    if family_ids:
        column = FamilyReplica.family_id
        await session.execute(select(column).where(column.in_(family_ids)).order_by(column).with_for_update())
    return held


async def get_person(
    session: AsyncSession, person_id: uuid.UUID, *, lock: bool = False
) -> PersonReplica | None:
    """The person's replica row; `lock` holds it like the event handlers do, for decisions that read it."""
    stmt = select(PersonReplica).where(PersonReplica.person_id == person_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_family(session: AsyncSession, family_id: uuid.UUID) -> FamilyReplica:
    """The family's replica row, created empty when unknown yet; locked for the update (looked up first, as
    `lock_person`)."""
    locked = select(FamilyReplica).where(FamilyReplica.family_id == family_id).with_for_update()
    row = (await session.execute(locked)).scalar_one_or_none()
    if row is None:
        await session.execute(
            insert(FamilyReplica).values(family_id=family_id, krs_reasons=[]).on_conflict_do_nothing()
        )
        row = (await session.execute(locked)).scalar_one()
    return row


async def get_family(session: AsyncSession, family_id: uuid.UUID) -> FamilyReplica | None:
    return await session.get(FamilyReplica, family_id)


async def copy_family_facts_to_members(session: AsyncSession, family: FamilyReplica) -> None:
    """Keep the denormalised decile/KRS on every member in step with the family."""
    await session.execute(
        update(PersonReplica)
        .where(PersonReplica.family_id == family.family_id)
        .values(welfare_decile=family.welfare_decile, krs=family.krs, krs_reasons=list(family.krs_reasons))
    )


async def move_family_members(
    session: AsyncSession, family_id: uuid.UUID, village_code: str, rw: str | None
) -> list[uuid.UUID]:
    """Members living with the family follow its move; returns their ids."""
    result = await session.execute(
        update(PersonReplica)
        .where(PersonReplica.family_id == family_id, PersonReplica.moved_out.is_(False))
        .values(village_code=village_code, rw=rw)
        .returning(PersonReplica.person_id)
    )
    return [r[0] for r in result]


async def lock_group(
    session: AsyncSession, group_id: uuid.UUID, village_code: str, status: str
) -> GroupReplica:
    await session.execute(
        insert(GroupReplica)
        .values(group_id=group_id, village_code=village_code, status=status)
        .on_conflict_do_nothing()
    )
    return (
        await session.execute(select(GroupReplica).where(GroupReplica.group_id == group_id).with_for_update())
    ).scalar_one()


async def get_group(session: AsyncSession, group_id: uuid.UUID) -> GroupReplica | None:
    return await session.get(GroupReplica, group_id)


def _touched(held: Any, values: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """`updated_at` as an ORM flush would leave it: moved only when a value really changes."""
    changed = tuple_(*(held[name] for name in values)).is_distinct_from(tuple_(*values.values()))
    return case((changed, func.now()), else_=held.updated_at)


# The rows of the set-based upserts travel as one JSON parameter (`json_rows`): an executemany writes a message
# per row, which was most of a poll's CPU. Rows name every column a new row needs (the models' Python defaults
# too: an INSERT from a SELECT does not apply them).
_FAMILY_FACTS_ROW = ("family_id", "village_code", "rw", "welfare_decile", "facts_at", "krs_reasons")
_FAMILY_RISK_ROW = ("family_id", "krs", "krs_reasons", "krs_at", "village_code", "welfare_decile")
_PERSON_FACTS_ROW = (
    *("person_id", "family_id", "sex", "birth_date", "relation", "village_code", "rw", "facts_at"),
    *("location_at", "welfare_decile", "krs", "krs_reasons", "moved_out", "alive", "pregnant", "catin_risks"),
)
_FAMILIES = typing.cast(Table, FamilyReplica.__table__)
_PERSONS = typing.cast(Table, PersonReplica.__table__)


@functools.cache
def _upsert_family_facts() -> ReturningInsert[uuid.UUID]:
    # Built once: constructing an upsert (its `excluded` columns above all) cost more per poll than running it.
    stmt = insert(_FAMILIES).from_select(_FAMILY_FACTS_ROW, json_rows(_FAMILIES, _FAMILY_FACTS_ROW))
    new = stmt.excluded
    held = _FAMILIES.c
    facts = {name: new[name] for name in ("village_code", "rw", "welfare_decile", "facts_at")}
    return stmt.on_conflict_do_update(
        index_elements=[FamilyReplica.family_id],
        set_={**facts, "updated_at": _touched(held, facts)},
        where=newer_clause(new.facts_at, held.facts_at),
    ).returning(FamilyReplica.family_id)


async def upsert_family_facts(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Families' facts in one statement, each as `lock_family` + a `is_newer` check would apply them.

    Rows carry `family_id`, `village_code`, `rw`, `welfare_decile` and `facts_at`, at most one per family;
    returns the families whose facts were applied (older facts than those held change nothing).
    """
    if not rows:
        return []
    ordered = [{**row, "krs_reasons": []} for row in sorted(rows, key=lambda row: row["family_id"])]
    value = json_rows_value(_only(ordered, _FAMILY_FACTS_ROW))
    return list((await session.scalars(_upsert_family_facts(), {"rows": value})).all())


@functools.cache
def _upsert_family_risk() -> ReturningInsert[uuid.UUID]:
    stmt = insert(_FAMILIES).from_select(_FAMILY_RISK_ROW, json_rows(_FAMILIES, _FAMILY_RISK_ROW))
    new = stmt.excluded
    held = _FAMILIES.c
    facts: dict[str, ColumnElement[Any]] = {
        "krs": new.krs,
        "krs_reasons": new.krs_reasons,
        "krs_at": new.krs_at,
        "village_code": func.coalesce(held.village_code, new.village_code),
        "welfare_decile": func.coalesce(new.welfare_decile, held.welfare_decile),
    }
    return stmt.on_conflict_do_update(
        index_elements=[FamilyReplica.family_id],
        set_={**facts, "updated_at": _touched(held, facts)},
        where=newer_clause(new.krs_at, held.krs_at),
    ).returning(FamilyReplica.family_id)


async def upsert_family_risk(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Families' stunting-risk (KRS) status in one statement, each as `lock_family` + the risk handler's `is_newer`
    check would apply it.

    Rows carry `family_id`, `krs`, `krs_reasons`, `krs_at`, `village_code` (filled only where unknown) and
    `welfare_decile` (None: the held one stays), at most one per family; returns the families whose status was
    applied (an older status than the one held changes nothing).
    """
    if not rows:
        return []
    ordered = sorted(rows, key=lambda row: row["family_id"])
    value = json_rows_value(_only(ordered, _FAMILY_RISK_ROW))
    return list((await session.scalars(_upsert_family_risk(), {"rows": value})).all())


async def copy_families_facts_to_members(session: AsyncSession, family_ids: Sequence[uuid.UUID]) -> None:
    """`copy_family_facts_to_members` for several families in one statement."""
    if family_ids:
        await session.execute(
            update(PersonReplica)
            .where(
                PersonReplica.family_id == FamilyReplica.family_id, FamilyReplica.family_id.in_(family_ids)
            )
            .values(
                welfare_decile=FamilyReplica.welfare_decile,
                krs=FamilyReplica.krs,
                krs_reasons=FamilyReplica.krs_reasons,
            )
        )


async def families_facts(
    session: AsyncSession, family_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int | None, bool | None, list[str]]]:
    """(welfare decile, KRS, KRS reasons) of the families that exist."""
    if not family_ids:
        return {}
    rows = await session.execute(
        select(
            FamilyReplica.family_id,
            FamilyReplica.welfare_decile,
            FamilyReplica.krs,
            FamilyReplica.krs_reasons,
        ).where(FamilyReplica.family_id.in_(family_ids))
    )
    return {family_id: (decile, krs, list(reasons)) for family_id, decile, krs, reasons in rows}


@functools.cache
def _upsert_person_facts() -> Insert:
    stmt = insert(_PERSONS).from_select(_PERSON_FACTS_ROW, json_rows(_PERSONS, _PERSON_FACTS_ROW))
    held = _PERSONS.c
    new = stmt.excluded
    location_newer = newer_clause(new.location_at, held.location_at)
    krs_known = new.krs.is_not(None)
    facts: dict[str, ColumnElement[Any]] = {
        **{name: new[name] for name in ("family_id", "sex", "birth_date", "relation", "facts_at")},
        **{
            name: case((location_newer, new[name]), else_=held[name])
            for name in ("village_code", "rw", "location_at", "moved_out")
        },
        "welfare_decile": func.coalesce(new.welfare_decile, held.welfare_decile),
        "krs": case((krs_known, new.krs), else_=held.krs),
        "krs_reasons": case((krs_known, new.krs_reasons), else_=held.krs_reasons),
    }
    return stmt.on_conflict_do_update(
        index_elements=[PersonReplica.person_id],
        set_={**facts, "updated_at": _touched(held, facts)},
        where=newer_clause(new.facts_at, held.facts_at),
    )


async def upsert_person_facts(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Persons' facts in one statement, each as `apply_person_facts` would apply them (see `is_newer`).

    Rows carry `person_id`, `family_id`, `sex`, `birth_date`, `relation`, `village_code`, `rw`, the event time as
    `facts_at` and `location_at`, and their family's `welfare_decile`, `krs` and `krs_reasons` (None when the
    family is not known, or does not know them: held values then stay). At most one row per person.
    """
    if not rows:
        return
    new_person = {"moved_out": False, "alive": True, "pregnant": False, "catin_risks": []}
    ordered = [
        {**row, **new_person, "krs_reasons": row["krs_reasons"] if row["krs"] is not None else []}
        for row in sorted(rows, key=lambda row: row["person_id"])
    ]
    await session.execute(
        _upsert_person_facts(), {"rows": json_rows_value(_only(ordered, _PERSON_FACTS_ROW))}
    )


def _only(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    return [{name: row[name] for name in names} for row in rows]


# Who can be a baby's mother in its family card: the wife, or the head when she is a woman (BKKBN family
# records list a single mother as kepala keluarga).
MOTHER_RELATIONS = ("istri", "kepala_keluarga")


async def possible_mothers(session: AsyncSession, family_id: uuid.UUID) -> list[PersonReplica]:
    """The family's living women, still in it, who are its wife or its female head; locked for a decision."""
    stmt = (
        select(PersonReplica)
        .where(
            PersonReplica.family_id == family_id,
            PersonReplica.sex == "P",
            PersonReplica.relation.in_(MOTHER_RELATIONS),
            PersonReplica.alive.is_(True),
            PersonReplica.moved_out.is_(False),
            PersonReplica.merged_into.is_(None),
        )
        .order_by(PersonReplica.person_id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def babies_in_family(
    session: AsyncSession, family_id: uuid.UUID, born_after: date
) -> list[PersonReplica]:
    """The family's living children (relation anak) born after a day, youngest first."""
    stmt = (
        select(PersonReplica)
        .where(
            PersonReplica.family_id == family_id,
            PersonReplica.relation == "anak",
            PersonReplica.birth_date > born_after,
            PersonReplica.alive.is_(True),
            PersonReplica.merged_into.is_(None),
        )
        .order_by(PersonReplica.birth_date.desc(), PersonReplica.person_id)
    )
    return list((await session.execute(stmt)).scalars())


async def families_with_babies(
    session: AsyncSession, family_ids: Sequence[uuid.UUID], born_after: date
) -> set[uuid.UUID]:
    """Of these families, those with a child (relation anak) born after a day in the replica."""
    if not family_ids:
        return set()
    stmt = select(PersonReplica.family_id).where(
        PersonReplica.family_id.in_(family_ids),
        PersonReplica.relation == "anak",
        PersonReplica.birth_date > born_after,
    )
    return {f for f in (await session.execute(stmt)).scalars() if f is not None}


# A replica row created empty (`lock_person` / `lock_family`), with the models' Python defaults.
_EMPTY_PERSON = {"alive": True, "moved_out": False, "pregnant": False, "krs_reasons": [], "catin_risks": []}
_EMPTY_PERSON_ROW = ("person_id", *_EMPTY_PERSON)


@functools.cache
def _create_persons() -> Insert:
    return (
        insert(_PERSONS)
        .from_select(_EMPTY_PERSON_ROW, json_rows(_PERSONS, _EMPTY_PERSON_ROW))
        .on_conflict_do_nothing()
    )


@functools.cache
def _create_families() -> Insert:
    names = ("family_id", "krs_reasons")
    return insert(_FAMILIES).from_select(names, json_rows(_FAMILIES, names)).on_conflict_do_nothing()


async def lock_for_poll(
    session: AsyncSession,
    person_ids: Sequence[uuid.UUID],
    family_ids: Sequence[uuid.UUID],
    *,
    create_persons: Sequence[uuid.UUID] = (),
    create_families: Sequence[uuid.UUID] = (),
) -> tuple[list[PersonReplica], list[FamilyReplica]]:
    """`lock_person` / `lock_family` for a run of events at once: the rows created empty where missing, then
    the persons and every member of the families, and the families, locked in id order."""
    if create_persons:
        rows = [{"person_id": p, **_EMPTY_PERSON} for p in sorted(create_persons)]
        await session.execute(_create_persons(), {"rows": json_rows_value(rows)})
    if create_families:
        rows = [{"family_id": f, "krs_reasons": []} for f in sorted(create_families)]
        await session.execute(_create_families(), {"rows": json_rows_value(rows)})
    persons = await session.execute(
        select(PersonReplica)
        .where(PersonReplica.person_id.in_(person_ids) | PersonReplica.family_id.in_(family_ids))
        .order_by(PersonReplica.person_id)
        .with_for_update()
    )
    families = await session.execute(
        select(FamilyReplica)
        .where(FamilyReplica.family_id.in_(family_ids))
        .order_by(FamilyReplica.family_id)
        .with_for_update()
    )
    return list(persons.scalars()), list(families.scalars())


def _state_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in ("created_at", "updated_at"))


@functools.cache
def _write_rows(table: Table, key: str) -> Any:
    names = _state_columns(table)
    given = json_rows(table, names).subquery("given")
    values: dict[str, Any] = {name: given.c[name] for name in names if name != key}
    return update(table).where(table.c[key] == given.c[key]).values(**values, updated_at=func.now())


def _plain(value: Any) -> Any:
    """A value orjson writes: asyncpg reads UUIDs as its own subclass, which orjson refuses."""
    return str(value) if isinstance(value, uuid.UUID) and type(value) is not uuid.UUID else value


async def write_replica_rows(
    session: AsyncSession, persons: Sequence[PersonReplica], families: Sequence[FamilyReplica]
) -> None:
    """Changed replica rows, each table in one statement, as the ORM would flush them (`updated_at` moved):
    the ORM writes an UPDATE per row on asyncpg (no executemany it can count rows of)."""
    for table, key, objects in ((_PERSONS, "person_id", persons), (_FAMILIES, "family_id", families)):
        if objects:
            names = _state_columns(table)
            ordered = sorted(objects, key=lambda o: getattr(o, key))
            rows = [{name: _plain(getattr(o, name)) for name in names} for o in ordered]
            await session.execute(_write_rows(table, key), {"rows": json_rows_value(rows)})
