"""Meals-served routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response

from dashat.meals import service
from dashat.meals.schemas import MealsCreate, MealsRead
from shared.auth import Principal, require_scopes
from shared.web.deps import PageDep, SessionDep
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/kitchens/{kitchen_id}/meals", tags=["meals"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Write = Annotated[Principal, require_scopes("dashat:write")]


@router.post("", status_code=201, summary="Record a batch of meals served (a replay answers 200)")
async def record_meals(
    kitchen_id: uuid.UUID, body: MealsCreate, session: SessionDep, principal: Write, response: Response
) -> MealsRead:
    recorded = await service.record(session, kitchen_id, body, principal)
    if recorded.replayed:
        response.status_code = 200
    return MealsRead.from_domain(recorded)


@router.get("", summary="Meal batches of a kitchen")
async def list_meals(
    kitchen_id: uuid.UUID, session: SessionDep, page: PageDep, principal: Read
) -> Page[MealsRead]:
    items, cursor = await service.page(session, kitchen_id, page, principal)
    return Page(items=[MealsRead.from_domain(b) for b in items], next_cursor=cursor)
