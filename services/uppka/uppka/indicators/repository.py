"""The queries the indicators need: members with their registry facts, reports, groups of an area."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from uppka.common import scoped
from uppka.groups.models import Group, Member
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
        )
        .outerjoin(PersonReplica, PersonReplica.person_id == Member.person_id)
        .where(Member.group_id == group_id)
    )
    return list((await session.execute(stmt)).all())


async def groups_with_report(
    session: AsyncSession, caller_region: str | None, region: str | None, period: str
) -> list[Any]:
    """Groups inside the caller's region (and `region`), each with its report of `period` if any."""
    stmt = (
        select(
            Group.village_code,
            func.coalesce(Group.founded_on, func.date(Group.created_at)).label("started_on"),
            Group.dissolved_on,
            MonthlyReport.id.label("report_id"),
            MonthlyReport.late,
        )
        .outerjoin(MonthlyReport, (MonthlyReport.group_id == Group.id) & (MonthlyReport.period == period))
        .where(*scoped(Group.village_code, caller_region, region))
    )
    return list((await session.execute(stmt)).all())
