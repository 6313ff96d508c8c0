"""Every query on monthly reports, their revisions and DASHAT contributions."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.web.pagination import PageParams, keyset_page
from uppka.common import one_or_none
from uppka.reports.models import DashatContribution, MonthlyReport, ReportRevision


async def get(
    session: AsyncSession, group_id: uuid.UUID, report_id: uuid.UUID, *, lock: bool = False
) -> MonthlyReport | None:
    return await one_or_none(
        session,
        select(MonthlyReport).where(MonthlyReport.id == report_id, MonthlyReport.group_id == group_id),
        lock=lock,
    )


async def for_period(session: AsyncSession, group_id: uuid.UUID, period: str) -> MonthlyReport | None:
    stmt = select(MonthlyReport).where(MonthlyReport.group_id == group_id, MonthlyReport.period == period)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_for_group(
    session: AsyncSession,
    group_id: uuid.UUID,
    params: PageParams,
    *,
    period_from: str | None,
    period_to: str | None,
) -> tuple[list[MonthlyReport], str | None]:
    stmt = select(MonthlyReport).where(MonthlyReport.group_id == group_id)
    if period_from:
        stmt = stmt.where(MonthlyReport.period >= period_from)
    if period_to:
        stmt = stmt.where(MonthlyReport.period <= period_to)
    return await keyset_page(session, stmt, params, MonthlyReport.period, MonthlyReport.id)


async def revisions(session: AsyncSession, report_id: uuid.UUID) -> list[ReportRevision]:
    stmt = (
        select(ReportRevision)
        .where(ReportRevision.report_id == report_id)
        .order_by(ReportRevision.amendment_no)
    )
    return list((await session.execute(stmt)).scalars())


async def contributions_of_report(session: AsyncSession, report_id: uuid.UUID) -> list[DashatContribution]:
    stmt = (
        select(DashatContribution)
        .where(DashatContribution.report_id == report_id)
        .order_by(DashatContribution.created_at, DashatContribution.id)
    )
    return list((await session.execute(stmt)).scalars())


async def list_contributions(
    session: AsyncSession, group_id: uuid.UUID, params: PageParams
) -> tuple[list[DashatContribution], str | None]:
    stmt = select(DashatContribution).where(DashatContribution.group_id == group_id)
    return await keyset_page(session, stmt, params, DashatContribution.created_at, DashatContribution.id)


async def reports_in_range(
    session: AsyncSession, group_id: uuid.UUID, first: str, last: str
) -> list[MonthlyReport]:
    stmt = (
        select(MonthlyReport)
        .where(
            MonthlyReport.group_id == group_id, MonthlyReport.period >= first, MonthlyReport.period <= last
        )
        .order_by(MonthlyReport.period)
    )
    return list((await session.execute(stmt)).scalars())
