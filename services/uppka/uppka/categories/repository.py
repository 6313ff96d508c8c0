"""Every query of the category sweep: the lock, the watermark, and the members whose birthday it is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from uppka.categories.models import CategorySweep
from uppka.groups.models import Group, Member
from uppka.replicas.models import PersonReplica

# One key for the category sweep, shared by the consumer replicas and `kencana uppka sweep-categories` ("uppcats").
SWEEP_LOCK_KEY = 0x75707063617473
SWEEP_NAME = "categories"


async def try_lock(session: AsyncSession) -> bool:
    """Take the sweep's advisory lock for this transaction, or report that another process holds it."""
    # Transaction-scoped: released by the commit, and by PostgreSQL if the sweeping process dies.
    return bool((await session.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY)))).scalar_one())


async def last_swept_on(session: AsyncSession) -> date | None:
    return await session.scalar(select(CategorySweep.last_swept_on).where(CategorySweep.name == SWEEP_NAME))


async def advance(session: AsyncSession, day: date) -> None:
    """Move the watermark to `day` (in the transaction that applied the day)."""
    stmt = pg_insert(CategorySweep).values(name=SWEEP_NAME, last_swept_on=day)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CategorySweep.name], set_={"last_swept_on": day, "swept_at": func.now()}
        )
    )


async def members_born_in(
    session: AsyncSession, windows: Sequence[tuple[date, date]]
) -> list[tuple[Member, Group, PersonReplica]]:
    """Current memberships of persons born inside any of the windows, locked for the category update.

    One statement: an OR of birth-date ranges (a BitmapOr of range scans on ix_person_replica_birth_date), then
    the members of those few persons by ix_member_person_id; the exact age check is done in Python.
    """
    if not windows:
        return []
    stmt = (
        select(Member, Group, PersonReplica)
        .join(PersonReplica, PersonReplica.person_id == Member.person_id)
        .join(Group, Group.id == Member.group_id)
        .where(
            or_(*(PersonReplica.birth_date.between(low, high) for low, high in windows)),
            Member.left_on.is_(None),
        )
        .order_by(Member.id)
        .with_for_update(of=Member)
    )
    return [(m, g, p) for m, g, p in (await session.execute(stmt)).all()]
