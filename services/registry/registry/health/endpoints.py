"""`/v1/persons/{id}/kb-status`, `/v1/kb-statuses`, `/v1/catin`, `/v1/pregnancies`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from registry.common import RegionQuery
from registry.deps import IfMatch, Reader, VaultDep, Writer
from registry.health import repository as repo
from registry.health import service
from registry.health.schemas import (
    CatinCreate,
    CatinRead,
    KbStatusCreate,
    KbStatusRead,
    PregnancyCreate,
    PregnancyEnd,
    PregnancyRead,
    PregnancyStatus,
)
from shared.db import read_only
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import set_etag
from shared.web.pagination import Page, UpdatedSince
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


# ------------------------------------------------------------------------------------------ KB


@router.post(
    "/persons/{person_id}/kb-status",
    status_code=201,
    response_model=KbStatusRead,
    tags=["kb"],
    summary="Record a KB status change (history kept, MKJP derived)",
)
async def record_kb_status(
    person_id: uuid.UUID, body: KbStatusCreate, session: SessionDep, principal: Writer
) -> KbStatusRead:
    row = await service.record_kb_status(session, principal, person_id, body)
    return KbStatusRead.from_domain(row)


@router.get(
    "/persons/{person_id}/kb-status",
    response_model=list[KbStatusRead],
    tags=["kb"],
    summary="KB status history",
)
async def kb_history(person_id: uuid.UUID, session: SessionDep, principal: Reader) -> list[KbStatusRead]:
    rows = await service.kb_history(session, principal, person_id)
    return [KbStatusRead.from_domain(r) for r in rows]


@router.get(
    "/kb-statuses",
    response_model=Page[KbStatusRead],
    tags=["kb"],
    summary="Current KB statuses / change feed",
)
async def list_kb(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    kampung_kb_id: uuid.UUID | None = None,
    mkjp: bool | None = None,
    is_user: bool | None = None,
    updated_since: UpdatedSince = None,
) -> Page[KbStatusRead]:
    rows, cursor = await read_only(
        session,
        repo.kb_statuses_page,
        principal,
        page,
        region=region,
        kampung_kb_id=kampung_kb_id,
        mkjp=mkjp,
        is_user=is_user,
        updated_since=updated_since,
    )
    return Page(items=[KbStatusRead.from_domain(r) for r in rows], next_cursor=cursor)


# ------------------------------------------------------------------------------------------ catin


@router.post(
    "/catin", status_code=201, response_model=CatinRead, tags=["catin"], summary="Register and screen a catin"
)
async def create_catin(
    body: CatinCreate, session: SessionDep, response: Response, principal: Writer
) -> CatinRead:
    row = await service.register_catin(session, principal, body)
    set_etag(response, row.version)
    return CatinRead.from_domain(row)


@router.get("/catin", response_model=Page[CatinRead], tags=["catin"], summary="Catin list / change feed")
async def list_catin(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    kampung_kb_id: uuid.UUID | None = None,
    at_risk: bool | None = None,
    updated_since: UpdatedSince = None,
) -> Page[CatinRead]:
    rows, cursor = await read_only(
        session,
        repo.catin_page,
        principal,
        page,
        region=region,
        kampung_kb_id=kampung_kb_id,
        at_risk=at_risk,
        updated_since=updated_since,
    )
    return Page(items=[CatinRead.from_domain(r) for r in rows], next_cursor=cursor)


@router.get("/catin/{catin_id}", response_model=CatinRead, tags=["catin"])
async def get_catin(
    catin_id: uuid.UUID, session: SessionDep, response: Response, principal: Reader
) -> CatinRead:
    row = await service.get_catin(session, principal, catin_id)
    set_etag(response, row.version)
    return CatinRead.from_domain(row)


# ------------------------------------------------------------------------------------------ pregnancies


@router.post(
    "/pregnancies",
    status_code=201,
    response_model=PregnancyRead,
    tags=["pregnancies"],
    summary="Register a pregnancy (KEK and anaemia derived)",
)
async def create_pregnancy(
    body: PregnancyCreate, session: SessionDep, response: Response, principal: Writer
) -> PregnancyRead:
    row = await service.register_pregnancy(session, principal, body)
    set_etag(response, row.version)
    return PregnancyRead.from_domain(row)


@router.get(
    "/pregnancies",
    response_model=Page[PregnancyRead],
    tags=["pregnancies"],
    summary="Pregnancies / change feed",
)
async def list_pregnancies(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    kampung_kb_id: uuid.UUID | None = None,
    status: PregnancyStatus | None = None,
    updated_since: UpdatedSince = None,
) -> Page[PregnancyRead]:
    rows, cursor = await read_only(
        session,
        repo.pregnancies_page,
        principal,
        page,
        region=region,
        kampung_kb_id=kampung_kb_id,
        status=status,
        updated_since=updated_since,
    )
    return Page(items=[PregnancyRead.from_domain(r) for r in rows], next_cursor=cursor)


@router.get("/pregnancies/{pregnancy_id}", response_model=PregnancyRead, tags=["pregnancies"])
async def get_pregnancy(
    pregnancy_id: uuid.UUID, session: SessionDep, response: Response, principal: Reader
) -> PregnancyRead:
    row = await service.get_pregnancy(session, principal, pregnancy_id)
    set_etag(response, row.version)
    return PregnancyRead.from_domain(row)


@router.post(
    "/pregnancies/{pregnancy_id}/end",
    response_model=PregnancyRead,
    tags=["pregnancies"],
    summary="End with a birth (registers the child) or a loss (If-Match)",
)
async def end_pregnancy(
    pregnancy_id: uuid.UUID,
    body: PregnancyEnd,
    expected: IfMatch,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Writer,
) -> PregnancyRead:
    row = await service.end_pregnancy(session, vault, principal, pregnancy_id, body, expected)
    set_etag(response, row.version)
    return PregnancyRead.from_domain(row)
