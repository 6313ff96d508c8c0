"""Every query on the replica tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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
