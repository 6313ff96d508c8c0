"""Kitchen routes (thin: parse, authorise, call the service)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from dashat.kitchens import service
from dashat.kitchens.schemas import KitchenClose, KitchenCreate, KitchenRead, KitchenStatus, KitchenUpdate
from shared.auth import Principal, require_scopes
from shared.regions import CODE_SCHEMA
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import IfMatch, set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/kitchens", tags=["kitchens"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Write = Annotated[Principal, require_scopes("dashat:write")]


@router.get("", summary="Kitchens in the caller's region")
async def list_kitchens(
    session: SessionDep,
    page: PageDep,
    principal: Read,
    region: Annotated[
        str | None,
        Query(
            description="Region code prefix (province, regency, district or village), inside the caller's region",
            json_schema_extra=CODE_SCHEMA,
        ),
    ] = None,
    village_code: Annotated[
        str | None, Query(description="Exactly this village (Kemendagri code)", json_schema_extra=CODE_SCHEMA)
    ] = None,
    rw: Annotated[
        str | None,
        Query(
            description="With village_code: only the kitchens serving this RW (those listing it, and those "
            "serving the whole village)",
            examples=["3"],
        ),
    ] = None,
    status: KitchenStatus | None = None,
) -> Page[KitchenRead]:
    items, cursor = await service.list_kitchens(
        session, page, principal, region=region, village_code=village_code, rw=rw, status=status
    )
    return Page(items=[KitchenRead.model_validate(k) for k in items], next_cursor=cursor)


@router.post("", status_code=201, summary="Open a kitchen")
async def create_kitchen(
    body: KitchenCreate, session: SessionDep, principal: Write, response: Response
) -> KitchenRead:
    kitchen = await service.create(session, body, principal)
    set_etag(response, kitchen.version)
    response.headers["Location"] = f"/v1/kitchens/{kitchen.id}"
    return KitchenRead.model_validate(kitchen)


@router.get("/{kitchen_id}", summary="One kitchen (ETag = version)")
async def get_kitchen(
    kitchen_id: uuid.UUID, session: SessionDep, principal: Read, response: Response
) -> KitchenRead:
    kitchen = await service.get_visible(session, kitchen_id, principal)
    set_etag(response, kitchen.version)
    return KitchenRead.model_validate(kitchen)


@router.patch("/{kitchen_id}", summary="Change a kitchen (If-Match required)")
async def update_kitchen(
    kitchen_id: uuid.UUID,
    body: KitchenUpdate,
    if_match: IfMatch,
    session: SessionDep,
    principal: Write,
    response: Response,
) -> KitchenRead:
    kitchen = await service.update(session, kitchen_id, body, if_match, principal)
    set_etag(response, kitchen.version)
    return KitchenRead.model_validate(kitchen)


@router.post("/{kitchen_id}/close", summary="Close a kitchen (If-Match required)")
async def close_kitchen(
    kitchen_id: uuid.UUID,
    body: KitchenClose,
    if_match: IfMatch,
    session: SessionDep,
    principal: Write,
    response: Response,
) -> KitchenRead:
    kitchen = await service.close(session, kitchen_id, body, if_match, principal)
    set_etag(response, kitchen.version)
    return KitchenRead.model_validate(kitchen)
