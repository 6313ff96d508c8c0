"""The queries the indicators need: members with their registry facts, reports, groups of an area."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.regions.scope import within
from uppka.groups.models import Group, GroupStatusChange, Member
from uppka.replicas.models import PersonReplica
from uppka.reports.models import MonthlyReport


async def member_facts(session: AsyncSession, group_id: uuid.UUID) -> list[Any]:
    stmt = (
        select(
            Member.joined_on,
            Member.left_on,
            Member.kb_method,
            Member.kb_user,
            Member.mkjp,
            PersonReplica.birth_date,
            PersonReplica.marital_status,
            PersonReplica.pus,
            PersonReplica.sex,
        )
        .outerjoin(PersonReplica, PersonReplica.person_id == Member.person_id)
        .where(Member.group_id == group_id)
    )
    return list((await session.execute(stmt)).all())


async def groups_in_area(session: AsyncSession, caller_region: str | None, region: str | None) -> list[Any]:
    """Groups inside the caller's region (and `region`): id, village, the day they count from."""
    stmt = select(
        Group.id,
        Group.village_code,
        func.coalesce(Group.founded_on, func.date(Group.created_at)).label("started_on"),
    ).where(within(Group.village_code, caller_region), within(Group.village_code, region))
    return list((await session.execute(stmt)).all())


async def status_changes_in_area(
    session: AsyncSession, caller_region: str | None, region: str | None
) -> list[Any]:
    """Every dated status of the groups of an area (the history reporting folds from the events)."""
    stmt = (
        select(GroupStatusChange.group_id, GroupStatusChange.changed_on, GroupStatusChange.status)
        .join(Group, Group.id == GroupStatusChange.group_id)
        .where(within(Group.village_code, caller_region), within(Group.village_code, region))
    )
    return list((await session.execute(stmt)).all())


async def reports_in_area(
    session: AsyncSession, caller_region: str | None, region: str | None, first: str, last: str
) -> list[Any]:
    """The monthly reports of an area's groups for the months first..last (YYYY-MM)."""
    stmt = (
        select(MonthlyReport.group_id, MonthlyReport.period, MonthlyReport.late)
        .join(Group, Group.id == MonthlyReport.group_id)
        .where(
            within(Group.village_code, caller_region),
            within(Group.village_code, region),
            MonthlyReport.period >= first,
            MonthlyReport.period <= last,
        )
    )
    return list((await session.execute(stmt)).all())
