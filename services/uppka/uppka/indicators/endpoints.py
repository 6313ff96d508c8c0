"""HTTP routes of the derived indicators."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES
from uppka.common import PERIOD_PATTERN, normalize_region_filter
from uppka.deps import Reader, SettingsDep, TodayDep
from uppka.indicators import service

router = APIRouter(tags=["indicators"], responses=PROBLEM_RESPONSES)
PeriodQuery = Annotated[str | None, Query(pattern=PERIOD_PATTERN, description="YYYY-MM; default this month")]


@router.get("/v1/groups/{group_id}/indicators")
async def group_indicators(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    settings: SettingsDep,
    today: TodayDep,
    period: PeriodQuery = None,
) -> dict[str, Any]:
    """Members, members by category, KB participation by method, MKJP share, attendance, reporting status."""
    return await service.group_month(
        session, group_id, period, principal, today=today, due_day=settings.report_due_day
    )


@router.get("/v1/groups/{group_id}/indicators/trend")
async def group_trend(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    period_from: Annotated[str, Query(alias="from", pattern=PERIOD_PATTERN)],
    period_to: Annotated[str, Query(alias="to", pattern=PERIOD_PATTERN)],
) -> dict[str, Any]:
    """Omzet and profit month by month, with changes and the overall direction."""
    return await service.group_trend(session, group_id, period_from, period_to, principal)


@router.get("/v1/indicators/reporting")
async def reporting(
    session: SessionDep,
    principal: Reader,
    settings: SettingsDep,
    today: TodayDep,
    region: Annotated[str | None, Query(description="Kemendagri code; default the caller's region")] = None,
    period: PeriodQuery = None,
) -> dict[str, Any]:
    """Groups existing vs reporting in an area for a month, with a breakdown by the next level down."""
    return await service.reporting(
        session,
        principal,
        normalize_region_filter(region),
        period,
        today=today,
        due_day=settings.report_due_day,
    )
