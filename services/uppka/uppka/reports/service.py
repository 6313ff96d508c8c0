"""Use cases of monthly reports and DASHAT contributions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import uppka as ev
from shared.outbox import publish
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams
from uppka.common import check_not_future
from uppka.config import Settings
from uppka.groups.models import Group
from uppka.groups.service import load_group
from uppka.models import outbox
from uppka.replicas import repository as replicas
from uppka.reports import domain
from uppka.reports import repository as repo
from uppka.reports.models import DashatContribution, MonthlyReport, ReportRevision
from uppka.reports.schemas import ContributionIn, ReportAmend, ReportCreate, ReportFigures

_FIGURES = (
    "omzet",
    "costs",
    "capital_balance",
    "members_present",
    "active_members",
    "new_kb_acceptors",
    "mkjp_switchers",
    "notes",
)


@dataclass(frozen=True)
class ReportRecord:
    """A monthly report with the contributions recorded with it and its revisions, as one read loads them (the
    API model is made at the edge: `ReportRead.from_domain`)."""

    report: MonthlyReport
    dashat_contributions: list[DashatContribution]
    revisions: list[ReportRevision]


async def read_report(session: AsyncSession, report: MonthlyReport) -> ReportRecord:
    contributions = await repo.contributions_of_report(session, report.id)
    return ReportRecord(report, contributions, await repo.revisions(session, report.id))


def _facts(report: MonthlyReport) -> dict[str, object]:
    return {
        "group_id": report.group_id,
        "report_id": report.id,
        "village_code": report.village_code,
        "period": report.period,
        **{k: getattr(report, k) for k in _FIGURES if k != "notes"},
        "profit": report.profit,
        "submitted_on": report.submitted_on,
        "late": report.late,
    }


def _revision(report: MonthlyReport, figures: ReportFigures, reason: str | None, by: str) -> ReportRevision:
    return ReportRevision(
        id=uuid.uuid4(),
        report_id=report.id,
        amendment_no=report.amendment_no,
        reason=reason,
        recorded_by=by,
        profit=report.profit,
        **figures.model_dump(include=set(_FIGURES)),
    )


async def _contribute(
    session: AsyncSession,
    group: Group,
    body: ContributionIn,
    principal: Principal,
    today: date,
    *,
    report_id: uuid.UUID | None,
    field: str,
) -> DashatContribution:
    """Record a contribution to a kitchen known from DASHAT's events, and publish it."""
    on = body.contributed_on or today
    check_not_future(on, today, field=f"{field}.contributed_on", rule="contribution.in_future")
    if body.kind == "in_kind" and not body.goods:
        raise ValidationFailed(
            "in-kind contributions name the goods", field=f"{field}.goods", rule="contribution.goods_required"
        )
    kitchen = await replicas.get_kitchen(session, body.kitchen_id)
    if kitchen is None or not kitchen.facts_known or not principal.can_access(kitchen.village_code):
        raise ValidationFailed(
            "the kitchen is not known from DASHAT",
            field=f"{field}.kitchen_id",
            rule="contribution.kitchen_unknown",
        )
    if kitchen.closed_on is not None and kitchen.closed_on <= on:
        raise ValidationFailed(
            "the kitchen is closed", field=f"{field}.kitchen_id", rule="contribution.kitchen_closed"
        )
    row = DashatContribution(
        id=uuid.uuid4(),
        group_id=group.id,
        report_id=report_id,
        kitchen_id=kitchen.kitchen_id,
        kind=body.kind,
        amount=body.amount,
        goods=body.goods,
        contributed_on=on,
    )
    session.add(row)
    await publish(
        session,
        outbox,
        ev.DashatContributionMade(
            group_id=group.id,
            contribution_id=row.id,
            kitchen_id=kitchen.kitchen_id,
            village_code=group.village_code,
            kind=body.kind,
            amount=body.amount,
            goods=body.goods,
            contributed_on=on,
        ),
        key=group.id,
    )
    return row


async def submit(
    session: AsyncSession,
    group_id: uuid.UUID,
    body: ReportCreate,
    principal: Principal,
    settings: Settings,
    today: date,
) -> ReportRecord:
    domain.check_period(body.period, today)
    domain.check_figures(members_present=body.members_present, active_members=body.active_members)
    async with session.begin():
        group = await load_group(session, group_id, principal, lock=True)
        if await repo.for_period(session, group.id, body.period) is not None:
            raise Conflict(
                f"the report for {body.period} exists; amend it instead",
                field="body.period",
                rule="report.duplicate_period",
            )
        report = MonthlyReport(
            id=uuid.uuid4(),
            group_id=group.id,
            village_code=group.village_code,
            period=body.period,
            profit=domain.profit(body.omzet, body.costs),
            submitted_on=today,
            late=domain.is_late(body.period, today, settings.report_due_day),
            rule_version=settings.report_rule_version,
            amendment_no=0,
            version=1,
            **body.model_dump(include=set(_FIGURES)),
        )
        session.add(report)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent submission for the same month won
            raise Conflict(
                "the report for this month exists", field="body.period", rule="report.duplicate_period"
            ) from exc
        session.add(_revision(report, body, None, principal.sub))
        await publish(session, outbox, ev.ReportSubmitted(**_facts(report)), key=group.id)
        for i, c in enumerate(body.dashat_contributions):
            await _contribute(
                session,
                group,
                c,
                principal,
                today,
                report_id=report.id,
                field=f"body.dashat_contributions.{i}",
            )
        await session.flush()
        out = await read_report(session, report)
    return out


async def load(
    session: AsyncSession,
    group_id: uuid.UUID,
    report_id: uuid.UUID,
    principal: Principal,
    *,
    lock: bool = False,
) -> MonthlyReport:
    group = await load_group(session, group_id, principal)
    report = await repo.get(session, group.id, report_id, lock=lock)
    if report is None:
        raise NotFound("report not found")
    return report


async def amend(
    session: AsyncSession,
    group_id: uuid.UUID,
    report_id: uuid.UUID,
    body: ReportAmend,
    principal: Principal,
    expected_version: IfMatchCondition,
) -> ReportRecord:
    """Replace a report's figures; the earlier ones stay in its revisions, lateness stays the original's."""
    domain.check_figures(members_present=body.members_present, active_members=body.active_members)
    async with session.begin():
        report = await load(session, group_id, report_id, principal, lock=True)
        check_version(expected_version, report.version)
        for k, v in body.model_dump(include=set(_FIGURES)).items():
            setattr(report, k, v)
        report.profit = domain.profit(body.omzet, body.costs)
        report.amendment_no += 1
        report.version += 1
        session.add(_revision(report, body, body.reason, principal.sub))
        await publish(
            session,
            outbox,
            ev.ReportAmended(**_facts(report), amendment_no=report.amendment_no),
            key=report.group_id,
        )
        await session.flush()
        out = await read_report(session, report)
    return out


async def read(
    session: AsyncSession, group_id: uuid.UUID, report_id: uuid.UUID, principal: Principal
) -> ReportRecord:
    async with session.begin():
        out = await read_report(session, await load(session, group_id, report_id, principal))
    return out


async def list_reports(
    session: AsyncSession,
    group_id: uuid.UUID,
    params: PageParams,
    principal: Principal,
    *,
    period_from: str | None,
    period_to: str | None,
) -> tuple[list[MonthlyReport], str | None]:
    async with session.begin():
        group = await load_group(session, group_id, principal)
        return await repo.list_for_group(
            session, group.id, params, period_from=period_from, period_to=period_to
        )


async def contribute(
    session: AsyncSession, group_id: uuid.UUID, body: ContributionIn, principal: Principal, today: date
) -> DashatContribution:
    async with session.begin():
        group = await load_group(session, group_id, principal, lock=True)
        row = await _contribute(session, group, body, principal, today, report_id=None, field="body")
        await session.flush()
    return row


async def list_contributions(
    session: AsyncSession, group_id: uuid.UUID, params: PageParams, principal: Principal
) -> tuple[list[DashatContribution], str | None]:
    async with session.begin():
        group = await load_group(session, group_id, principal)
        return await repo.list_contributions(session, group.id, params)
