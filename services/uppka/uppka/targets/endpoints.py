"""HTTP routes of yearly targets."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shared.web.deps import SessionDep
from shared.web.etag import IfMatch, set_etag
from shared.web.problems import PROBLEM_RESPONSES
from uppka.deps import Reader, Writer
from uppka.targets import service
from uppka.targets.schemas import TargetCreate, TargetRead, TargetSummary, TargetUpdate

router = APIRouter(prefix="/v1/targets", tags=["targets"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201)
async def set_target(
    body: TargetCreate, session: SessionDep, principal: Writer, response: Response
) -> TargetRead:
    """Set a province's yearly target (409 if one exists: update it); publishes `uppka.target.set.v1`."""
    out = await service.create(session, body, principal)
    set_etag(response, out.target.version)
    return TargetRead.from_domain(out)


@router.get("")
async def list_targets(
    session: SessionDep, principal: Reader, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> list[TargetRead]:
    """Targets with progress (groups existing at the end of the year in the province)."""
    return [TargetRead.from_domain(t) for t in await service.list_targets(session, principal, year)]


@router.get("/summary")
async def summary(
    session: SessionDep, principal: Reader, year: Annotated[int, Query(ge=2000, le=2100)]
) -> TargetSummary:
    """National (or the caller's province) totals of one year."""
    return TargetSummary.from_domain(await service.summary(session, principal, year))


@router.get("/{target_id}")
async def get_target(
    target_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> TargetRead:
    out = await service.read(session, target_id, principal)
    set_etag(response, out.target.version)
    return TargetRead.from_domain(out)


@router.patch("/{target_id}")
async def update_target(
    target_id: uuid.UUID,
    body: TargetUpdate,
    if_match: IfMatch,
    session: SessionDep,
    principal: Writer,
    response: Response,
) -> TargetRead:
    """Change a target (If-Match required); publishes `uppka.target.set.v1` again."""
    out = await service.update(session, target_id, body, principal, if_match)
    set_etag(response, out.target.version)
    return TargetRead.from_domain(out)
