"""Every query on activities and attendance."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.web.pagination import PageParams, keyset_page
from uppka.activities.models import Activity, ActivityAttendance
from uppka.common import one_or_none
from uppka.groups.models import Member


async def get(session: AsyncSession, group_id: uuid.UUID, activity_id: uuid.UUID) -> Activity | None:
    return await one_or_none(
        session, select(Activity).where(Activity.id == activity_id, Activity.group_id == group_id)
    )


async def members_by_id(
    session: AsyncSession, group_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Member]:
    stmt = select(Member).where(Member.group_id == group_id, Member.id.in_(ids))
    return {m.id: m for m in (await session.execute(stmt)).scalars()}


async def attendees(session: AsyncSession, activity_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    stmt = (
        select(ActivityAttendance)
        .where(ActivityAttendance.activity_id.in_(activity_ids))
        .order_by(ActivityAttendance.member_id)
    )
    out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for row in (await session.execute(stmt)).scalars():
        out[row.activity_id].append(row.member_id)
    return out


async def list_for_group(
    session: AsyncSession,
    group_id: uuid.UUID,
    params: PageParams,
    *,
    first: date | None,
    last: date | None,
    activity_type: str | None,
) -> tuple[list[Activity], str | None]:
    stmt = select(Activity).where(Activity.group_id == group_id)
    if first:
        stmt = stmt.where(Activity.held_on >= first)
    if last:
        stmt = stmt.where(Activity.held_on <= last)
    if activity_type:
        stmt = stmt.where(Activity.activity_type == activity_type)
    return await keyset_page(session, stmt, params, Activity.created_at, Activity.id)
