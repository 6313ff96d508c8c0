"""Every query on the replica tables."""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import json_rows, json_rows_value
from shared.replica import newer_clause
from uppka.common import one_or_none
from uppka.replicas.models import KitchenReplica, PersonReplica


async def get_person(
    session: AsyncSession, person_id: uuid.UUID, *, lock: bool = False
) -> PersonReplica | None:
    return await one_or_none(
        session, select(PersonReplica).where(PersonReplica.person_id == person_id), lock=lock
    )


async def lock_or_create_person(session: AsyncSession, person_id: uuid.UUID, at: datetime) -> PersonReplica:
    """The replica row, locked; a placeholder is inserted first when the person is not known yet."""
    await session.execute(
        insert(PersonReplica)
        .values(person_id=person_id, last_event_at=at)
        .on_conflict_do_nothing(index_elements=[PersonReplica.person_id])
    )
    person = await get_person(session, person_id, lock=True)
    assert person is not None
    return person


async def lock_existing_persons(session: AsyncSession, person_ids: Sequence[uuid.UUID]) -> None:
    """Lock the persons' replica rows that exist, in id order (ids only: nothing enters the session)."""
    if person_ids:
        column = PersonReplica.person_id
        await session.execute(select(column).where(column.in_(person_ids)).order_by(column).with_for_update())


async def persons_of_family(session: AsyncSession, family_id: uuid.UUID) -> list[PersonReplica]:
    stmt = (
        select(PersonReplica)
        .where(PersonReplica.family_id == family_id)
        .order_by(PersonReplica.person_id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def get_kitchen(
    session: AsyncSession, kitchen_id: uuid.UUID, *, lock: bool = False
) -> KitchenReplica | None:
    return await one_or_none(
        session, select(KitchenReplica).where(KitchenReplica.kitchen_id == kitchen_id), lock=lock
    )


async def lock_or_create_kitchen(
    session: AsyncSession, kitchen_id: uuid.UUID, village_code: str, at: datetime
) -> KitchenReplica:
    """The replica row, locked; a placeholder is inserted first when the kitchen is not known yet."""
    await session.execute(
        insert(KitchenReplica)
        .values(kitchen_id=kitchen_id, village_code=village_code, last_event_at=at)
        .on_conflict_do_nothing(index_elements=[KitchenReplica.kitchen_id])
    )
    kitchen = await get_kitchen(session, kitchen_id, lock=True)
    assert kitchen is not None
    return kitchen


# The person facts a registration carries; an upsert applies them only over older ones (see `is_newer`).
_PERSON_FACTS = (
    "family_id",
    "village_code",
    "rw",
    "sex",
    "birth_date",
    "marital_status",
    "pus",
    "facts_known",
)


_FACTS_ROW = ("person_id", *_PERSON_FACTS, "facts_at", "last_event_at")
_KB_ROW = (
    "person_id",
    "family_id",
    "village_code",
    "kb_method",
    "is_user",
    "mkjp",
    "kb_since",
    "pus",
    "kb_at",
    "ever_kb_user",
    "last_event_at",
)


@functools.cache
def _upsert_person_facts() -> Insert:
    # Built once: constructing an upsert (its `excluded` columns above all) cost more per poll than running it.
    # The rows travel as one JSON parameter: an executemany wrote a message per row, most of the poll's CPU.
    replicas = typing.cast(Table, PersonReplica.__table__)
    stmt = insert(replicas).from_select(_FACTS_ROW, json_rows(replicas, _FACTS_ROW))
    held = PersonReplica.__table__.c
    newer = newer_clause(stmt.excluded.facts_at, held.facts_at)
    return stmt.on_conflict_do_update(
        index_elements=[PersonReplica.person_id],
        set_={
            **{
                name: case((newer, stmt.excluded[name]), else_=held[name])
                for name in (*_PERSON_FACTS, "facts_at")
            },
            "last_event_at": func.greatest(held.last_event_at, stmt.excluded.last_event_at),
        },
    )


async def upsert_person_facts(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Persons' facts in one statement, each as `lock_or_create_person` + an `is_newer` check would apply them.

    Rows carry `person_id`, the facts, `facts_at` and `last_event_at`; they are locked in person id order so
    two transactions upserting overlapping persons cannot deadlock.
    """
    if rows:
        ordered = sorted(rows, key=lambda row: row["person_id"])
        await session.execute(_upsert_person_facts(), {"rows": json_rows_value(_only(ordered, _FACTS_ROW))})


@functools.cache
def _upsert_person_kb() -> Insert:
    replicas = typing.cast(Table, PersonReplica.__table__)
    stmt = insert(replicas).from_select(_KB_ROW, json_rows(replicas, _KB_ROW))
    held = PersonReplica.__table__.c
    new = stmt.excluded
    newer = newer_clause(new.kb_at, held.kb_at)
    return stmt.on_conflict_do_update(
        index_elements=[PersonReplica.person_id],
        set_={
            # Having ever used KB is monotonic: even an out-of-date event proves it.
            "ever_kb_user": or_(held.ever_kb_user, new.ever_kb_user),
            "family_id": func.coalesce(held.family_id, new.family_id),
            "village_code": func.coalesce(held.village_code, new.village_code),
            **{
                name: case((newer, new[name]), else_=held[name])
                for name in ("kb_method", "is_user", "mkjp", "kb_since", "kb_at")
            },
            # A KB event's PUS stands in only until the person's own facts are known.
            "pus": case((and_(newer, held.facts_known.is_(False)), new.pus), else_=held.pus),
            "last_event_at": func.greatest(held.last_event_at, new.last_event_at),
        },
    )


async def upsert_person_kb(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Persons' KB statuses in one statement, each as `lock_or_create_person` + the KB handler would apply them.

    Rows carry `person_id`, the placeholder's `family_id` and `village_code` (filled only where unknown), the
    status (`kb_method`, `is_user`, `mkjp`, `kb_since`, `pus`) with its time `kb_at`, `ever_kb_user` and
    `last_event_at`; at most one per person. Locked in person id order, as `upsert_person_facts`.
    """
    if rows:
        ordered = sorted(rows, key=lambda row: row["person_id"])
        await session.execute(_upsert_person_kb(), {"rows": json_rows_value(_only(ordered, _KB_ROW))})


def _only(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    return [{name: row[name] for name in names} for row in rows]
