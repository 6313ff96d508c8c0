"""Every query of the age sweep: the lock, the watermark, the day's birthdays and what their families need."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from registry.ageing.models import AgeSweep
from registry.families.models import Family, Person
from registry.health.models import Pregnancy
from registry.models import outbox

# One key for the age sweep, shared by the API replicas and `kencana registry sweep-ages` ("regages").
SWEEP_LOCK_KEY = 0x72656761676573
SWEEP_NAME = "ages"


async def try_lock(session: AsyncSession) -> bool:
    """Take the sweep's advisory lock for this transaction, or report that another process holds it."""
    # Transaction-scoped: released by the commit, and by PostgreSQL if the sweeping process dies.
    return bool((await session.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY)))).scalar_one())


async def last_swept_on(session: AsyncSession) -> date | None:
    return await session.scalar(select(AgeSweep.last_swept_on).where(AgeSweep.name == SWEEP_NAME))


async def advance(session: AsyncSession, day: date) -> None:
    """Move the watermark to `day` (in the transaction that applied the day)."""
    stmt = pg_insert(AgeSweep).values(name=SWEEP_NAME, last_swept_on=day)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AgeSweep.name], set_={"last_swept_on": day, "swept_at": func.now()}
        )
    )


async def birthdays(
    session: AsyncSession, windows: Sequence[tuple[date, date]]
) -> list[tuple[Person, Family]]:
    """Persons in a family here (alive, not moved out, not deleted) born inside any of the windows.

    One statement: an OR of birth-date ranges, which PostgreSQL runs as a BitmapOr of range scans on
    ix_person_birth_date; the exact age check is done in Python on these few rows.
    """
    if not windows:
        return []
    rows = await session.execute(
        select(Person, Family)
        .join(Family, Family.id == Person.family_id)
        .where(
            or_(*(Person.birth_date.between(low, high) for low, high in windows)),
            Person.deleted_at.is_(None),
            Person.died_on.is_(None),
            Person.moved_out_on.is_(None),
            Family.deleted_at.is_(None),
        )
    )
    return [(row[0], row[1]) for row in rows]


async def families_for_update(session: AsyncSession, family_ids: Sequence[uuid.UUID]) -> list[Family]:
    """The families to re-evaluate, locked against a concurrent write of their KRS status."""
    if not family_ids:
        return []
    rows = await session.scalars(
        select(Family)
        .where(Family.id.in_(family_ids), Family.deleted_at.is_(None))
        .order_by(Family.id)
        .with_for_update()
    )
    return list(rows)


async def current_members(session: AsyncSession, family_ids: Sequence[uuid.UUID]) -> list[Person]:
    """Every current member of these families (the same rows as families.repository.current_members)."""
    if not family_ids:
        return []
    rows = await session.scalars(
        select(Person)
        .where(Person.family_id.in_(family_ids), Person.deleted_at.is_(None), Person.moved_out_on.is_(None))
        .order_by(Person.family_id, Person.birth_date, Person.id)
    )
    return list(rows)


async def pregnant_families(session: AsyncSession, family_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these families with an ongoing pregnancy."""
    if not family_ids:
        return set()
    rows = await session.scalars(
        select(Pregnancy.family_id)
        .where(
            and_(
                Pregnancy.family_id.in_(family_ids),
                Pregnancy.status == "ongoing",
                Pregnancy.deleted_at.is_(None),
            )
        )
        .distinct()
    )
    return set(rows)


async def insert_outbox(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The day's events, in one statement."""
    if rows:
        await session.execute(insert(outbox), rows)
