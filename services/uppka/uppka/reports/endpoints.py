"""HTTP routes of monthly reports and DASHAT contributions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shared.web.deps import PageDep, SessionDep
from shared.web.etag import IfMatch, set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES
from uppka.common import PERIOD_PATTERN
from uppka.deps import Reader, SettingsDep, TodayDep, Writer
from uppka.reports import service
from uppka.reports.schemas import ContributionIn, ContributionRead, ReportAmend, ReportCreate, ReportRead

router = APIRouter(prefix="/v1/groups/{group_id}", tags=["reports"], responses=PROBLEM_RESPONSES)


@router.post("/reports", status_code=201)
async def submit_report(
    group_id: uuid.UUID,
    body: ReportCreate,
    session: SessionDep,
    principal: Writer,
    settings: SettingsDep,
    today: TodayDep,
    response: Response,
) -> ReportRead:
    """Submit the month's report (one per group and month: 409 for a second); profit and lateness derived."""
    out = await service.submit(session, group_id, body, principal, settings, today)
    set_etag(response, out.report.version)
    response.headers["Location"] = f"/v1/groups/{group_id}/reports/{out.report.id}"
    return ReportRead.from_domain(out)


@router.get("/reports")
async def list_reports(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    period_from: Annotated[str | None, Query(alias="from", pattern=PERIOD_PATTERN)] = None,
    period_to: Annotated[str | None, Query(alias="to", pattern=PERIOD_PATTERN)] = None,
) -> Page[ReportRead]:
    """A group's reports by period (current figures; the revisions are on the single report)."""
    rows, cursor = await service.list_reports(
        session, group_id, page, principal, period_from=period_from, period_to=period_to
    )
    return Page(items=[ReportRead.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/reports/{report_id}")
async def get_report(
    group_id: uuid.UUID, report_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> ReportRead:
    out = await service.read(session, group_id, report_id, principal)
    set_etag(response, out.report.version)
    return ReportRead.from_domain(out)


@router.post("/reports/{report_id}/amendments")
async def amend_report(
    group_id: uuid.UUID,
    report_id: uuid.UUID,
    body: ReportAmend,
    if_match: IfMatch,
    session: SessionDep,
    principal: Writer,
    response: Response,
) -> ReportRead:
    """Correct a report (If-Match required); the earlier figures stay in `revisions`."""
    out = await service.amend(session, group_id, report_id, body, principal, if_match)
    set_etag(response, out.report.version)
    return ReportRead.from_domain(out)


@router.post("/dashat-contributions", status_code=201)
async def contribute(
    group_id: uuid.UUID, body: ContributionIn, session: SessionDep, principal: Writer, today: TodayDep
) -> ContributionRead:
    """Cash or goods given to a DASHAT kitchen known from DASHAT's events (else 422)."""
    return ContributionRead.model_validate(
        await service.contribute(session, group_id, body, principal, today)
    )


@router.get("/dashat-contributions")
async def list_contributions(
    group_id: uuid.UUID, session: SessionDep, principal: Reader, page: PageDep
) -> Page[ContributionRead]:
    rows, cursor = await service.list_contributions(session, group_id, page, principal)
    return Page(items=[ContributionRead.model_validate(c) for c in rows], next_cursor=cursor)
