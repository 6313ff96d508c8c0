"""HTTP routes of PEK programme activities."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.web.deps import PageDep, SessionDep
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES
from uppka.activities import service
from uppka.activities.schemas import ActivityCreate, ActivityRead, ActivityType
from uppka.common import PERIOD_PATTERN
from uppka.deps import Reader, TodayDep, Writer

router = APIRouter(
    prefix="/v1/groups/{group_id}/activities", tags=["activities"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=201)
async def record_activity(
    group_id: uuid.UUID, body: ActivityCreate, session: SessionDep, principal: Writer, today: TodayDep
) -> ActivityRead:
    """Record a PEK activity with its attendance; publishes `uppka.activity.held.v1`."""
    return ActivityRead.from_domain(await service.record(session, group_id, body, principal, today))


@router.get("")
async def list_activities(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    period: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="Only this month (YYYY-MM)")
    ] = None,
    activity_type: ActivityType | None = None,
) -> Page[ActivityRead]:
    items, cursor = await service.list_for_group(
        session, group_id, page, principal, period=period, activity_type=activity_type
    )
    return Page(items=[ActivityRead.from_domain(a) for a in items], next_cursor=cursor)


@router.get("/{activity_id}")
async def get_activity(
    group_id: uuid.UUID, activity_id: uuid.UUID, session: SessionDep, principal: Reader
) -> ActivityRead:
    return ActivityRead.from_domain(await service.read(session, group_id, activity_id, principal))
