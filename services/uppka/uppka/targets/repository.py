"""Every query on targets, and the group counts their progress needs."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import uppka_reporting
from uppka.common import one_or_none
from uppka.groups.models import Group, GroupStatusChange
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


async def kampung_kb_groups_active_by_province(session: AsyncSession, year_end: date) -> dict[str, int]:
    """Kampung KB groups founded by the end of the year and active on that day, per province.

    The yearly target (1,542 groups in 2022) is for Kampung KB groups; reporting's `uppka_target_progress`
    counts the same groups (its `s.uppka.groups_active_kkb` at the year's end).
    """
    started = func.coalesce(Group.founded_on, func.date(Group.created_at))
    groups = (
        await session.execute(
            select(Group.id, Group.village_code).where(Group.kampung_kb_id.is_not(None), started <= year_end)
        )
    ).all()
    history: dict[uuid.UUID, list[tuple[date, str]]] = defaultdict(list)
    changes = await session.execute(
        select(GroupStatusChange.group_id, GroupStatusChange.changed_on, GroupStatusChange.status)
        .join(Group, Group.id == GroupStatusChange.group_id)
        .where(Group.kampung_kb_id.is_not(None), started <= year_end)
    )
    for group_id, changed_on, status in changes:
        history[group_id].append((changed_on, status))
    out: dict[str, int] = defaultdict(int)
    for group_id, village_code in groups:
        if uppka_reporting.status_on(history[group_id], year_end) == "active":
            out[village_code.split(".", 1)[0]] += 1
    return dict(out)
