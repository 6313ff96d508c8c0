"""`/v1/persons/{id}/kb-status`, `/v1/kb-statuses`, `/v1/catin`, `/v1/pregnancies`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import Select, select

from registry.common import WRITE, RegionQuery, UpdatedSince, aware, region_clause, region_filter
from registry.deps import IfMatch, Reader, VaultDep
from registry.families import repository as fam_repo
from registry.families.models import Family, Person
from registry.health import service
from registry.health.models import Catin, KbStatus, Pregnancy
from registry.health.schemas import (
    CatinCreate,
    CatinRead,
    KbStatusCreate,
    KbStatusRead,
    PregnancyCreate,
    PregnancyEnd,
    PregnancyRead,
)
from shared.auth import Principal, require_scopes
from shared.errors import NotFound
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
Writer = Annotated[Principal, require_scopes(WRITE)]


def scoped(model: Any, principal: Principal, region: str | None) -> Select[Any]:
    """Rows of a person-owned table whose person's current family lies in the caller's region."""
    return (
        select(model)
        .join(Person, Person.id == model.person_id)
        .join(Family, Family.id == Person.family_id)
        .where(region_clause(Family.village_code, principal), region_filter(Family.village_code, region))
    )


def view(row: Any, schema: Any, deleted: bool) -> dict[str, Any]:
    return {**{c: getattr(row, c) for c in schema.model_fields if c != "deleted"}, "deleted": deleted}


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
) -> dict[str, Any]:
    row = await service.record_kb_status(session, principal, person_id, body)
    return view(row, KbStatusRead, False)


@router.get(
    "/persons/{person_id}/kb-status",
    response_model=list[KbStatusRead],
    tags=["kb"],
    summary="KB status history",
)
async def kb_history(person_id: uuid.UUID, session: SessionDep, principal: Reader) -> list[dict[str, Any]]:
    async with session.begin():
        await fam_repo.get_person(session, person_id, principal)
        rows = await session.scalars(
            select(KbStatus)
            .where(KbStatus.person_id == person_id)
            .order_by(KbStatus.current, KbStatus.since, KbStatus.created_at)
        )
        return [view(r, KbStatusRead, False) for r in rows]


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
) -> dict[str, Any]:
    stmt = scoped(KbStatus, principal, region)
    if kampung_kb_id is not None:
        stmt = stmt.where(Family.kampung_kb_id == kampung_kb_id)
    if mkjp is not None:
        stmt = stmt.where(KbStatus.mkjp == mkjp)
    if is_user is not None:
        stmt = stmt.where(KbStatus.is_user == is_user)
    async with session.begin():
        rows, cursor = await fam_repo.paged(
            session, stmt, KbStatus, page, aware(updated_since), KbStatus.current
        )
    return {"items": [view(r[0], KbStatusRead, False) for r in rows], "next_cursor": cursor}


# ------------------------------------------------------------------------------------------ catin


@router.post(
    "/catin", status_code=201, response_model=CatinRead, tags=["catin"], summary="Register and screen a catin"
)
async def create_catin(
    body: CatinCreate, session: SessionDep, response: Response, principal: Writer
) -> dict[str, Any]:
    row = await service.register_catin(session, principal, body)
    set_etag(response, row.version)
    return view(row, CatinRead, False)


@router.get("/catin", response_model=Page[CatinRead], tags=["catin"], summary="Catin list / change feed")
async def list_catin(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    kampung_kb_id: uuid.UUID | None = None,
    at_risk: bool | None = None,
    updated_since: UpdatedSince = None,
) -> dict[str, Any]:
    stmt = scoped(Catin, principal, region)
    if kampung_kb_id is not None:
        stmt = stmt.where(Family.kampung_kb_id == kampung_kb_id)
    if at_risk is not None:
        stmt = stmt.where(Catin.at_risk == at_risk)
    async with session.begin():
        rows, cursor = await fam_repo.paged(
            session, stmt, Catin, page, aware(updated_since), Catin.deleted_at.is_(None)
        )
    return {
        "items": [view(r[0], CatinRead, r[0].deleted_at is not None) for r in rows],
        "next_cursor": cursor,
    }


@router.get("/catin/{catin_id}", response_model=CatinRead, tags=["catin"])
async def get_catin(
    catin_id: uuid.UUID, session: SessionDep, response: Response, principal: Reader
) -> dict[str, Any]:
    async with session.begin():
        row = await session.scalar(
            scoped(Catin, principal, None).where(Catin.id == catin_id, Catin.deleted_at.is_(None))
        )
    if row is None:
        raise NotFound("catin not found")
    set_etag(response, row.version)
    return view(row, CatinRead, False)


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
) -> dict[str, Any]:
    row = await service.register_pregnancy(session, principal, body)
    set_etag(response, row.version)
    return view(row, PregnancyRead, False)


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
    status: Annotated[str | None, Query(pattern="^(ongoing|ended)$")] = None,
    updated_since: UpdatedSince = None,
) -> dict[str, Any]:
    stmt = scoped(Pregnancy, principal, region)
    if kampung_kb_id is not None:
        stmt = stmt.where(Family.kampung_kb_id == kampung_kb_id)
    if status is not None:
        stmt = stmt.where(Pregnancy.status == status)
    async with session.begin():
        rows, cursor = await fam_repo.paged(
            session, stmt, Pregnancy, page, aware(updated_since), Pregnancy.deleted_at.is_(None)
        )
    return {
        "items": [view(r[0], PregnancyRead, r[0].deleted_at is not None) for r in rows],
        "next_cursor": cursor,
    }


@router.get("/pregnancies/{pregnancy_id}", response_model=PregnancyRead, tags=["pregnancies"])
async def get_pregnancy(
    pregnancy_id: uuid.UUID, session: SessionDep, response: Response, principal: Reader
) -> dict[str, Any]:
    async with session.begin():
        row = await service.get_pregnancy(session, principal, pregnancy_id)
    set_etag(response, row.version)
    return view(row, PregnancyRead, False)


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
) -> dict[str, Any]:
    row = await service.end_pregnancy(session, vault, principal, pregnancy_id, body, expected)
    set_etag(response, row.version)
    return view(row, PregnancyRead, False)
