"""Use cases of the indicators: read facts, hand them to the pure functions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from shared import uppka_reporting
from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from uppka.groups.service import load_group
from uppka.indicators import domain
from uppka.indicators import repository as repo
from uppka.reports import repository as reports
from uppka.reports.domain import period_of
from uppka.reports.models import MonthlyReport


@dataclass(frozen=True)
class GroupIndicators:
    """A group's figures for a month (the API model is made at the edge: `GroupIndicatorsRead`)."""

    group_id: uuid.UUID
    month: domain.GroupMonth


@dataclass(frozen=True)
class GroupTrend:
    group_id: uuid.UUID
    trend: domain.Trend


@dataclass(frozen=True)
class AreaReporting:
    """An area's reporting coverage for a period, by the rule version that counted it."""

    region: str | None
    period: str
    rule_version: str
    coverage: domain.Coverage


def _report_fact(r: MonthlyReport) -> domain.ReportFact:
    return domain.ReportFact(
        period=r.period,
        omzet=r.omzet,
        costs=r.costs,
        profit=r.profit,
        members_present=r.members_present,
        active_members=r.active_members,
        late=r.late,
    )


async def group_month(
    session: AsyncSession,
    group_id: uuid.UUID,
    period: str | None,
    principal: Principal,
    *,
    today: date,
    due_day: int,
) -> GroupIndicators:
    """A group's indicators for a month (default this month)."""
    period = period or period_of(today)
    async with session.begin():
        group = await load_group(session, group_id, principal)
        rows = await repo.member_facts(session, group.id)
        report = await reports.for_period(session, group.id, period)
    members = [
        domain.MemberFact(
            joined_on=r.joined_on,
            left_on=r.left_on,
            birth_date=r.birth_date,
            marital_status=r.marital_status,
            pus=r.pus,
            sex=r.sex,
            kb_method=r.kb_method,
            kb_user=r.kb_user,
            mkjp=r.mkjp,
        )
        for r in rows
    ]
    result = domain.group_month(
        period, members, _report_fact(report) if report else None, today=today, due_day=due_day
    )
    return GroupIndicators(group.id, result)


async def group_trend(
    session: AsyncSession, group_id: uuid.UUID, first: str, last: str, principal: Principal
) -> GroupTrend:
    periods = domain.periods_between(first, last)
    if not periods or len(periods) > 120:
        raise ValidationFailed("from..to must span 1 to 120 months", field="query.from", rule="trend.range")
    async with session.begin():
        group = await load_group(session, group_id, principal)
        rows = await reports.reports_in_range(session, group.id, first, last)
    return GroupTrend(group.id, domain.trend(periods, [_report_fact(r) for r in rows]))


async def reporting(
    session: AsyncSession,
    principal: Principal,
    region: str | None,
    period: str | None,
    *,
    today: date,
    due_day: int,
) -> AreaReporting:
    """Reporting rate of an area for a month, quarter or year (default this month), per next level down."""
    period = period or period_of(today)
    if region is not None and not principal.can_access(region):
        raise NotFound("region not found")
    months = domain.months_of_period(period)
    async with session.begin():
        groups = await repo.groups_in_area(session, principal.region, region)
        changes = await repo.status_changes_in_area(session, principal.region, region)
        reports = await repo.reports_in_area(session, principal.region, region, months[0], months[-1])
    history: dict[uuid.UUID, list[tuple[date, str]]] = defaultdict(list)
    for c in changes:
        history[c.group_id].append((c.changed_on, c.status))
    by_group: dict[uuid.UUID, dict[str, bool]] = defaultdict(dict)
    for r in reports:
        by_group[r.group_id][r.period] = bool(r.late)
    facts = [
        domain.GroupPeriodFact(
            area=domain.area_of(g.village_code, region or principal.region),
            started_on=g.started_on,
            changes=tuple(history[g.id]),
            reports=by_group[g.id],
        )
        for g in groups
    ]
    result = domain.coverage(facts, months, today=today, due_day=due_day)
    return AreaReporting(region or principal.region, period, uppka_reporting.RULE_VERSION, result)
