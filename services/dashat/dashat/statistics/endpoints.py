"""`GET /v1/statistics`: DASHAT's own counts of the figures reporting publishes (read-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from dashat.statistics import service
from shared.auth import Principal, require_scopes
from shared.statistics import FromQuery, RegionQuery, StatisticsRead, ToQuery, window
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/statistics", tags=["statistics"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]

DESCRIPTION = """
Counts of DASHAT's own records for a region and window, for checking reporting (`kencana reporting verify`;
definitions in docs/indicators.md). Aggregates only, no personal data.
- `dashat_beneficiaries`: enrolments in force at the end of `to` (started, not ended), by where the
  beneficiary lives;
- `dashat_enrolled`: enrolments starting in `from`..`to` (however they ended later);
- `dashat_portions_served`: portions delivered by the kitchens of the region on days in `from`..`to`.
"""


@router.get("", summary="Recount of DASHAT's figures", response_model=StatisticsRead, description=DESCRIPTION)
async def statistics(
    session: SessionDep, principal: Read, first: FromQuery, last: ToQuery, region: RegionQuery = None
) -> StatisticsRead:
    return StatisticsRead.from_domain(
        await service.statistics(session, window(principal, region, first, last))
    )
