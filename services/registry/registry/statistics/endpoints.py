"""`GET /v1/statistics`: the registry's own counts of the figures reporting publishes (read-only)."""

from __future__ import annotations

from fastapi import APIRouter

from registry.common import READ
from registry.statistics import service
from shared.auth import Principal, require_scopes
from shared.statistics import FromQuery, RegionQuery, StatisticsRead, ToQuery, window
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/statistics", tags=["statistics"], responses=PROBLEM_RESPONSES)

DESCRIPTION = """
Counts of the registry's own records for a region and window, for checking reporting
(`kencana reporting verify`; definitions in docs/indicators.md). Aggregates only, no personal data.

Stocks are as at the end of `to` (records created by then, the KB status in effect then):
- `families_registered`, `krs_families` (families at risk of stunting);
- `pus`: couples whose wife is married, alive, in the registry and 15-49 in completed years (shared/ages);
- `kb_users`: PUS couples where either partner uses a method: the wife any method, the husband MOP or a condom
  (BKKBN counts per couple, peserta KB aktif); `kb_users_modern`: a modern method (mCPR: MOW, MOP, IUD, implant,
  injectable, pill, condom, MAL); `mkjp_users`: a long-term method (IUD, implant, MOW, MOP);
- `non_users_iat`, `non_users_tial`: PUS couples using nothing whose wife wants a child later / no more children
  (unmet need).

Flows over `from`..`to`: `baduta_measured` / `balita_measured`: children measured while under 24 / 60 completed
months (valid HAZ: not flagged, not corrected or retracted), each child once; `baduta_stunted` /
`balita_stunted`: of those, the ones whose latest such measurement in the window has HAZ < -2 (Permenkes 2/2020).
"""


@router.get(
    "", summary="Recount of the registry's figures", response_model=StatisticsRead, description=DESCRIPTION
)
async def statistics(
    session: SessionDep,
    first: FromQuery,
    last: ToQuery,
    region: RegionQuery = None,
    principal: Principal = require_scopes(READ),
) -> StatisticsRead:
    return StatisticsRead.from_domain(
        await service.statistics(session, window(principal, region, first, last))
    )
