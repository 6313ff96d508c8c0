"""HTTP routes of a group's businesses, products and capital."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from shared.web.deps import PageDep, SessionDep
from shared.web.etag import IfMatch, set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES
from uppka.businesses import service
from uppka.businesses.schemas import (
    BusinessCreate,
    BusinessRead,
    BusinessUpdate,
    CapitalIn,
    CapitalRead,
    ProductIn,
    ProductRead,
)
from uppka.deps import Reader, TodayDep, Writer

router = APIRouter(
    prefix="/v1/groups/{group_id}/businesses", tags=["businesses"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=201)
async def create_business(
    group_id: uuid.UUID,
    body: BusinessCreate,
    session: SessionDep,
    principal: Writer,
    today: TodayDep,
    response: Response,
) -> BusinessRead:
    """Register a business with its products and capital; publishes `uppka.business.registered.v1`."""
    out = await service.create(session, group_id, body, principal, today)
    set_etag(response, out.business.version)
    return BusinessRead.from_domain(out)


@router.get("")
async def list_businesses(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    supplies_dashat: bool | None = None,
) -> Page[BusinessRead]:
    items, cursor = await service.list_for_group(session, group_id, page, principal, supplies_dashat)
    return Page(items=[BusinessRead.from_domain(b) for b in items], next_cursor=cursor)


@router.get("/{business_id}")
async def get_business(
    group_id: uuid.UUID, business_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> BusinessRead:
    out = await service.read(session, group_id, business_id, principal)
    set_etag(response, out.business.version)
    return BusinessRead.from_domain(out)


@router.patch("/{business_id}")
async def update_business(
    group_id: uuid.UUID,
    business_id: uuid.UUID,
    body: BusinessUpdate,
    if_match: IfMatch,
    session: SessionDep,
    principal: Writer,
    response: Response,
) -> BusinessRead:
    """Change a business (If-Match required)."""
    out = await service.update(session, group_id, business_id, body, principal, if_match)
    set_etag(response, out.business.version)
    return BusinessRead.from_domain(out)


@router.post("/{business_id}/products", status_code=201)
async def add_product(
    group_id: uuid.UUID, business_id: uuid.UUID, body: ProductIn, session: SessionDep, principal: Writer
) -> ProductRead:
    return ProductRead.from_domain(await service.add_product(session, group_id, business_id, body, principal))


@router.post("/{business_id}/capital", status_code=201)
async def add_capital(
    group_id: uuid.UUID,
    business_id: uuid.UUID,
    body: CapitalIn,
    session: SessionDep,
    principal: Writer,
    today: TodayDep,
) -> CapitalRead:
    return CapitalRead.model_validate(
        await service.add_capital(session, group_id, business_id, body, principal, today)
    )
