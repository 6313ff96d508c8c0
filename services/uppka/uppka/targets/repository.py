"""Every query on targets, and the group counts their progress needs."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from uppka.common import one_or_none
from uppka.groups.models import Group
from uppka.targets.models import Target


async def get(session: AsyncSession, target_id: uuid.UUID, *, lock: bool = False) -> Target | None:
    return await one_or_none(session, select(Target).where(Target.id == target_id), lock=lock)


async def find(session: AsyncSession, year: int, province_code: str) -> Target | None:
    stmt = select(Target).where(Target.year == year, Target.province_code == province_code)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_targets(session: AsyncSession, *, year: int | None, provinces: str | None) -> list[Target]:
    stmt = select(Target)
    if year is not None:
        stmt = stmt.where(Target.year == year)
    if provinces is not None:
        stmt = stmt.where(Target.province_code == provinces)
    return list((await session.execute(stmt.order_by(Target.year, Target.province_code))).scalars())


async def groups_existing_by_province(session: AsyncSession, year_end: date) -> dict[str, int]:
    """Groups registered by the end of the year and not dissolved by then, per province."""
    province = func.split_part(Group.village_code, ".", 1)
    started = func.coalesce(Group.founded_on, func.date(Group.created_at))
    stmt = (
        select(province, func.count())
        .where(started <= year_end, or_(Group.dissolved_on.is_(None), Group.dissolved_on > year_end))
        .group_by(province)
    )
    return {p: int(n) for p, n in (await session.execute(stmt)).all()}
