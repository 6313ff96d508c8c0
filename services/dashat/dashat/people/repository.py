"""Queries of the people replica."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.people.models import FamilyReplica, GroupReplica, PersonReplica


async def lock_person(session: AsyncSession, person_id: uuid.UUID) -> PersonReplica:
    """The person's replica row, created empty when no event about them arrived yet; locked for the update."""
    await session.execute(
        insert(PersonReplica)
        .values(person_id=person_id, krs_reasons=[], catin_risks=[])
        .on_conflict_do_nothing()
    )
    row = (
        await session.execute(
            select(PersonReplica).where(PersonReplica.person_id == person_id).with_for_update()
        )
    ).scalar_one()
    return row


async def lock_existing(
    session: AsyncSession, person_ids: Sequence[uuid.UUID], family_ids: Sequence[uuid.UUID]
) -> None:
    """Lock the persons' and families' replica rows that exist, in id order (persons first, as the API does)."""
    for id_column, ids in ((PersonReplica.person_id, person_ids), (FamilyReplica.family_id, family_ids)):
        if ids:
            await session.execute(
                select(id_column).where(id_column.in_(ids)).order_by(id_column).with_for_update()
            )


async def get_person(
    session: AsyncSession, person_id: uuid.UUID, *, lock: bool = False
) -> PersonReplica | None:
    """The person's replica row; `lock` holds it like the event handlers do, for decisions that read it."""
    stmt = select(PersonReplica).where(PersonReplica.person_id == person_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_family(session: AsyncSession, family_id: uuid.UUID) -> FamilyReplica:
    await session.execute(
        insert(FamilyReplica).values(family_id=family_id, krs_reasons=[]).on_conflict_do_nothing()
    )
    return (
        await session.execute(
            select(FamilyReplica).where(FamilyReplica.family_id == family_id).with_for_update()
        )
    ).scalar_one()


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
