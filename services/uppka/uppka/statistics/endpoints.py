"""`GET /v1/statistics`: uppka's own counts of the figures reporting publishes (read-only)."""

from __future__ import annotations

from fastapi import APIRouter

from shared.statistics import FromQuery, RegionQuery, StatisticsRead, ToQuery, window
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES
from uppka.deps import Reader
from uppka.statistics import service

router = APIRouter(prefix="/v1/statistics", tags=["statistics"], responses=PROBLEM_RESPONSES)

DESCRIPTION = """
Counts of uppka's own records for a region and window, for checking reporting (`kencana reporting verify`;
definitions in docs/indicators.md). Aggregates only, no personal data. Everything is as at the end of `to`:
- `groups_existing`: groups founded (registered, when the founding date is unknown) by then and not dissolved;
- `uppka_members`: members who had joined and not left, by where they live; `uppka_members_kb_users`: of those,
  KB users (the registry's KB facts); `uppka_members_mkjp`: long-term method users;
- `uppka_members_pus`: members in the PUS category, the denominator of members' KB participation (teenagers and
  the elderly are not counted against it); `uppka_members_pus_kb_users`: of those, KB users (its numerator).

The monthly reporting rate is `/v1/indicators/reporting`.
"""


@router.get("", summary="Recount of uppka's figures", response_model=StatisticsRead, description=DESCRIPTION)
async def statistics(
    session: SessionDep, principal: Reader, first: FromQuery, last: ToQuery, region: RegionQuery = None
) -> StatisticsRead:
    return StatisticsRead.from_domain(
        await service.statistics(session, window(principal, region, first, last))
    )
