"""Enrolment and waitlist routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from dashat.enrolment import service
from dashat.enrolment.schemas import (
    EnrolmentCreate,
    EnrolmentExit,
    EnrolmentRead,
    EnrolmentStatus,
    OutcomeRead,
    WaitlistRead,
    WaitlistStatus,
)
from shared.auth import Principal, require_scopes
from shared.events.vocab import DashatCategory
from shared.regions import CODE_SCHEMA
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import IfMatch, set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(tags=["enrolment"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Write = Annotated[Principal, require_scopes("dashat:write")]


@router.get("/v1/enrolments", summary="Enrolments (filters: kitchen, category, status, region)")
async def list_enrolments(
    session: SessionDep,
    page: PageDep,
    principal: Read,
    kitchen_id: Annotated[uuid.UUID | None, Query()] = None,
    category: Annotated[DashatCategory | None, Query()] = None,
    status: EnrolmentStatus | None = None,
    region: Annotated[
        str | None,
        Query(description="Region code prefix, inside the caller's region", json_schema_extra=CODE_SCHEMA),
    ] = None,
    person_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[EnrolmentRead]:
    items, cursor = await service.list_enrolments(
        session,
        page,
        principal,
        region=region,
        kitchen_id=kitchen_id,
        category=category,
        status=status,
        person_id=person_id,
    )
    return Page(items=[EnrolmentRead.from_domain(e) for e in items], next_cursor=cursor)


@router.post("/v1/enrolments", status_code=201, summary="Enrol a person manually")
async def create_enrolment(
    body: EnrolmentCreate, session: SessionDep, principal: Write, response: Response
) -> EnrolmentRead:
    enrolment = await service.enrol_manually(session, body, principal)
    set_etag(response, enrolment.version)
    response.headers["Location"] = f"/v1/enrolments/{enrolment.id}"
    return EnrolmentRead.from_domain(enrolment)


@router.get(
    "/v1/enrolments/{enrolment_id}", summary="One enrolment with the rule, version and facts behind it"
)
async def get_enrolment(
    enrolment_id: uuid.UUID, session: SessionDep, principal: Read, response: Response
) -> EnrolmentRead:
    enrolment = await service.get_visible(session, enrolment_id, principal)
    set_etag(response, enrolment.version)
    return EnrolmentRead.from_domain(enrolment)


@router.post("/v1/enrolments/{enrolment_id}/exit", summary="End an enrolment (If-Match required)")
async def exit_enrolment(
    enrolment_id: uuid.UUID,
    body: EnrolmentExit,
    if_match: IfMatch,
    session: SessionDep,
    principal: Write,
    response: Response,
) -> EnrolmentRead:
    enrolment = await service.exit_enrolment(session, enrolment_id, body, if_match, principal)
    set_etag(response, enrolment.version)
    return EnrolmentRead.from_domain(enrolment)


@router.get("/v1/enrolments/{enrolment_id}/outcome", summary="The enrolled child's HAZ trajectory")
async def get_outcome(enrolment_id: uuid.UUID, session: SessionDep, principal: Read) -> OutcomeRead:
    return OutcomeRead.from_domain(await service.outcome(session, enrolment_id, principal))


@router.get("/v1/waitlist", summary="Targets waiting for a place, with the reason")
async def list_waitlist(
    session: SessionDep,
    page: PageDep,
    principal: Read,
    status: WaitlistStatus = "waiting",
    category: Annotated[DashatCategory | None, Query()] = None,
    region: Annotated[str | None, Query(json_schema_extra=CODE_SCHEMA)] = None,
) -> Page[WaitlistRead]:
    items, cursor = await service.list_waitlist(
        session, page, principal, status=status, category=category, region=region
    )
    return Page(items=[WaitlistRead.model_validate(w) for w in items], next_cursor=cursor)
