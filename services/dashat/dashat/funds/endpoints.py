"""Ledger and summary routes of a kitchen."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter

from dashat.funds import service
from dashat.funds.schemas import KitchenSummary, LedgerEntryCreate, LedgerEntryRead
from shared.auth import Principal, require_scopes
from shared.web.deps import PageDep, SessionDep
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/kitchens/{kitchen_id}", tags=["funds"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Write = Annotated[Principal, require_scopes("dashat:write")]


@router.get("/ledger", summary="Ledger entries of a kitchen")
async def list_ledger(
    kitchen_id: uuid.UUID, session: SessionDep, page: PageDep, principal: Read
) -> Page[LedgerEntryRead]:
    items, cursor = await service.list_ledger(session, kitchen_id, page, principal)
    return Page(items=[LedgerEntryRead.model_validate(e) for e in items], next_cursor=cursor)


@router.post("/ledger", status_code=201, summary="Record income or an expense (whole rupiah)")
async def add_entry(
    kitchen_id: uuid.UUID, body: LedgerEntryCreate, session: SessionDep, principal: Write
) -> LedgerEntryRead:
    return LedgerEntryRead.model_validate(await service.record_entry(session, kitchen_id, body, principal))


@router.get("/summary", summary="Capacity use, money, cost per portion and runway")
async def summary(kitchen_id: uuid.UUID, session: SessionDep, principal: Read) -> KitchenSummary:
    return await service.summary(session, kitchen_id, principal)
