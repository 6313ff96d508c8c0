"""Every query on groups, their funding and status history, and members."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.regions.scope import within
from shared.web.pagination import PageParams, keyset_page
from uppka.common import one_or_none
from uppka.groups.models import Group, GroupFunding, GroupStatusChange, Member


async def get_group(session: AsyncSession, group_id: uuid.UUID, *, lock: bool = False) -> Group | None:
    return await one_or_none(session, select(Group).where(Group.id == group_id), lock=lock)


async def code_taken(session: AsyncSession, code: str) -> bool:
    return (await session.execute(select(Group.id).where(Group.code == code))).first() is not None


async def register_number_taken(session: AsyncSession, number: str, exclude: uuid.UUID | None = None) -> bool:
    stmt = select(Group.id).where(Group.register_number == number)
    if exclude is not None:
        stmt = stmt.where(Group.id != exclude)
    return (await session.execute(stmt)).first() is not None


async def list_groups(
    session: AsyncSession,
    params: PageParams,
    *,
    caller_region: str | None,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    status: str | None,
) -> tuple[list[Group], str | None]:
    stmt = select(Group).where(within(Group.village_code, caller_region), within(Group.village_code, region))
    if kampung_kb_id:
        stmt = stmt.where(Group.kampung_kb_id == kampung_kb_id)
    if status:
        stmt = stmt.where(Group.status == status)
    return await keyset_page(session, stmt, params, Group.code, Group.id)


async def funding_of(session: AsyncSession, group_id: uuid.UUID) -> list[GroupFunding]:
    stmt = select(GroupFunding).where(GroupFunding.group_id == group_id).order_by(GroupFunding.created_at)
    return list((await session.execute(stmt)).scalars())


async def status_history(session: AsyncSession, group_id: uuid.UUID) -> list[GroupStatusChange]:
    stmt = (
        select(GroupStatusChange)
        .where(GroupStatusChange.group_id == group_id)
        .order_by(GroupStatusChange.changed_on, GroupStatusChange.id)
    )
    return list((await session.execute(stmt)).scalars())


async def officers_of(session: AsyncSession, group_id: uuid.UUID) -> list[Member]:
    stmt = select(Member).where(
        Member.group_id == group_id, Member.left_on.is_(None), Member.role != "anggota"
    )
    return list((await session.execute(stmt.order_by(Member.role))).scalars())


async def get_member(
    session: AsyncSession, group_id: uuid.UUID, member_id: uuid.UUID, *, lock: bool = False
) -> Member | None:
    return await one_or_none(
        session, select(Member).where(Member.id == member_id, Member.group_id == group_id), lock=lock
    )


async def active_membership(
    session: AsyncSession, group_id: uuid.UUID, person_id: uuid.UUID
) -> Member | None:
    stmt = select(Member).where(
        Member.group_id == group_id, Member.person_id == person_id, Member.left_on.is_(None)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_officer(session: AsyncSession, group_id: uuid.UUID, role: str) -> Member | None:
    stmt = select(Member).where(Member.group_id == group_id, Member.role == role, Member.left_on.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_memberships_of_person(
    session: AsyncSession, person_id: uuid.UUID
) -> list[tuple[Member, Group]]:
    """Current memberships of a person, with their groups, locked for the event handler's update."""
    stmt = (
        select(Member, Group)
        .join(Group, Group.id == Member.group_id)
        .where(Member.person_id == person_id, Member.left_on.is_(None))
        .order_by(Member.id)
        .with_for_update(of=Member)
    )
    return [(m, g) for m, g in (await session.execute(stmt)).all()]


async def active_members(session: AsyncSession, group_id: uuid.UUID) -> list[Member]:
    stmt = select(Member).where(Member.group_id == group_id, Member.left_on.is_(None)).order_by(Member.id)
    return list((await session.execute(stmt.with_for_update())).scalars())


async def list_members(
    session: AsyncSession, group_id: uuid.UUID, params: PageParams, *, active: bool | None
) -> tuple[list[Member], str | None]:
    stmt = select(Member).where(Member.group_id == group_id)
    if active is True:
        stmt = stmt.where(Member.left_on.is_(None))
    elif active is False:
        stmt = stmt.where(Member.left_on.is_not(None))
    return await keyset_page(session, stmt, params, Member.created_at, Member.id)


async def persons_with_active_memberships(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Of these persons, those with a current membership (their events may change a member)."""
    if not person_ids:
        return set()
    stmt = select(Member.person_id).where(Member.person_id.in_(person_ids), Member.left_on.is_(None))
    return set((await session.execute(stmt)).scalars())
