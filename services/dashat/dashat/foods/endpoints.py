"""Food, menu and rotation routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dashat.foods import service
from dashat.foods.schemas import FoodCreate, FoodRead, MenuCreate, MenuRead, RotationPlan, RotationRead
from shared.auth import Principal, require_scopes
from shared.web.deps import PageDep, SessionDep
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(tags=["food"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Write = Annotated[Principal, require_scopes("dashat:write")]


# The month of a rotation as `service._check_month` reads it: YYYY-MM of 2000..2100.
RotationMonth = Annotated[
    str, Path(json_schema_extra={"pattern": "^(?:20[0-9]{2}|2100)-(?:0[1-9]|1[0-2])$"}, examples=["2026-03"])
]


@router.get("/v1/foods", summary="Local foods with nutrients per 100 g")
async def list_foods(
    session: SessionDep, page: PageDep, _: Read, q: Annotated[str | None, Query(max_length=100)] = None
) -> Page[FoodRead]:
    items, cursor = await service.list_foods(session, page, q=q)
    return Page(items=[FoodRead.model_validate(f) for f in items], next_cursor=cursor)


@router.post("/v1/foods", status_code=201, summary="Add a food")
async def create_food(body: FoodCreate, session: SessionDep, principal: Write) -> FoodRead:
    return FoodRead.model_validate(await service.create_food(session, body, principal))


@router.get("/v1/foods/{food_id}", summary="One food")
async def get_food(food_id: uuid.UUID, session: SessionDep, _: Read) -> FoodRead:
    return FoodRead.model_validate(await service.get_food(session, food_id))


@router.post("/v1/menus", status_code=201, summary="Create a menu (items x grams per portion)")
async def create_menu(body: MenuCreate, session: SessionDep, principal: Write) -> MenuRead:
    return MenuRead.from_domain(await service.create_menu(session, body, principal))


@router.get("/v1/menus", summary="Menus: shared ones and those of kitchens in the caller's region")
async def list_menus(
    session: SessionDep,
    page: PageDep,
    principal: Read,
    kitchen_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[MenuRead]:
    items, cursor = await service.list_menus(session, page, principal, kitchen_id=kitchen_id)
    return Page(items=[MenuRead.from_domain(m) for m in items], next_cursor=cursor)


@router.get("/v1/menus/{menu_id}", summary="One menu with nutrient totals and warnings")
async def get_menu(menu_id: uuid.UUID, session: SessionDep, principal: Read) -> MenuRead:
    return MenuRead.from_domain(await service.get_menu(session, menu_id, principal))


@router.put("/v1/kitchens/{kitchen_id}/rotation/{month}", summary="Set a kitchen's monthly menu rotation")
async def put_rotation(
    kitchen_id: uuid.UUID, month: RotationMonth, body: RotationPlan, session: SessionDep, principal: Write
) -> RotationRead:
    slots = await service.put_rotation(session, kitchen_id, month, body, principal)
    return RotationRead(kitchen_id=kitchen_id, month=month, slots=slots)


@router.get("/v1/kitchens/{kitchen_id}/rotation/{month}", summary="A kitchen's monthly menu rotation")
async def get_rotation(
    kitchen_id: uuid.UUID, month: RotationMonth, session: SessionDep, principal: Read
) -> RotationRead:
    slots = await service.get_rotation(session, kitchen_id, month, principal)
    return RotationRead(kitchen_id=kitchen_id, month=month, slots=slots)
