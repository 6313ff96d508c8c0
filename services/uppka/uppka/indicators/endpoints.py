"""HTTP routes of the derived indicators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.regions import CODE_SCHEMA
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES
from uppka.common import PERIOD_PATTERN, PERIOD_YEAR, normalize_region_filter
from uppka.deps import Reader, SettingsDep, TodayDep
from uppka.indicators import service
from uppka.indicators.schemas import GroupIndicatorsRead, GroupTrendRead, ReportingRateRead

router = APIRouter(tags=["indicators"], responses=PROBLEM_RESPONSES)
PeriodQuery = Annotated[str | None, Query(pattern=PERIOD_PATTERN, description="YYYY-MM; default this month")]
RatePeriodQuery = Annotated[
    str | None,
    Query(
        pattern=rf"^{PERIOD_YEAR}(-(0[1-9]|1[0-2])|-Q[1-4])?$",
        description="YYYY-MM, YYYY-Qn or YYYY; default this month",
    ),
]


@router.get("/v1/groups/{group_id}/indicators")
async def group_indicators(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    settings: SettingsDep,
    today: TodayDep,
    period: PeriodQuery = None,
) -> GroupIndicatorsRead:
    """Members, members by category, KB participation by method, MKJP share, attendance, reporting status."""
    found = await service.group_month(
        session, group_id, period, principal, today=today, due_day=settings.report_due_day
    )
    return GroupIndicatorsRead.from_domain(found)


@router.get("/v1/groups/{group_id}/indicators/trend")
async def group_trend(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    period_from: Annotated[str, Query(alias="from", pattern=PERIOD_PATTERN)],
    period_to: Annotated[str, Query(alias="to", pattern=PERIOD_PATTERN)],
) -> GroupTrendRead:
    """Omzet and profit month by month, with changes and the overall direction."""
    return GroupTrendRead.from_domain(
        await service.group_trend(session, group_id, period_from, period_to, principal)
    )


@router.get("/v1/indicators/reporting")
async def reporting(
    session: SessionDep,
    principal: Reader,
    settings: SettingsDep,
    today: TodayDep,
    region: Annotated[
        str | None,
        Query(description="Kemendagri code; default the caller's region", json_schema_extra=CODE_SCHEMA),
    ] = None,
    period: RatePeriodQuery = None,
) -> ReportingRateRead:
    """UPPKA reporting rate of an area for a month, quarter or year, with a breakdown by the next level down.

    The same rule as reporting's `uppka_reporting_rate` (shared/uppka_reporting.py): a group is **due** a
    report for a month when it was founded by the month's last day and is active on that day; the report is due
    by the `UPPKA_REPORT_DUE_DAY` (10th) of the next month. `due` = group-months whose deadline has passed,
    `on_time` / `late` = their reports received by / after the deadline, `missing` = neither, `not_due` =
    group-months whose deadline is still ahead (never counted as missing). `reporting_rate` = on_time / due,
    `completeness` = (on_time + late) / due; null when nothing is due yet. A quarter or year sums its months.
    `existing` = groups existing at the period's end, `reporting` = groups that reported for any of its months.
    """
    found = await service.reporting(
        session,
        principal,
        normalize_region_filter(region),
        period,
        today=today,
        due_day=settings.report_due_day,
    )
    return ReportingRateRead.from_domain(found)
