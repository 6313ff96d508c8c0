"""Ledger and summary routes of a kitchen."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.funds import repository as repo
from dashat.funds import service
from dashat.funds.schemas import KitchenSummary, LedgerEntryCreate, LedgerEntryRead
from dashat.kitchens import repository as kitchens
from dashat.kitchens.models import Kitchen
from shared.auth import Principal, require_scopes
from shared.errors import NotFound, ValidationFailed
from shared.web.deps import PageDep, SessionDep
from shared.web.pagination import Page, make_page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/kitchens/{kitchen_id}", tags=["funds"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Write = Annotated[Principal, require_scopes("dashat:write")]


async def _kitchen(
    session: AsyncSession, kitchen_id: uuid.UUID, principal: Principal, lock: bool = False
) -> Kitchen:
    kitchen = await kitchens.get(session, kitchen_id, lock=lock)
    if kitchen is None or not principal.can_access(kitchen.village_code):
        raise NotFound("kitchen not found")
    return kitchen


@router.get("/ledger", summary="Ledger entries of a kitchen")
async def list_ledger(
    kitchen_id: uuid.UUID, session: SessionDep, page: PageDep, principal: Read
) -> Page[LedgerEntryRead]:
    async with session.begin():
        await _kitchen(session, kitchen_id, principal)
        rows = await repo.page(session, kitchen_id, page)
    items, cursor = make_page(rows, page, lambda e: [str(e.id)])
    return Page(items=[LedgerEntryRead.model_validate(e) for e in items], next_cursor=cursor)


@router.post("/ledger", status_code=201, summary="Record income or an expense (whole rupiah)")
async def add_entry(
    kitchen_id: uuid.UUID, body: LedgerEntryCreate, session: SessionDep, principal: Write
) -> LedgerEntryRead:
    if body.kind == "income" and (body.source is None or body.category is not None):
        raise ValidationFailed(
            "income needs a source and no category", field="body.source", rule="ledger.income_source"
        )
    if body.kind == "expense" and (body.category is None or body.source is not None):
        raise ValidationFailed(
            "an expense needs a category and no source", field="body.category", rule="ledger.expense_category"
        )
    async with session.begin():
        kitchen = await _kitchen(session, kitchen_id, principal, lock=True)
        if body.kind == "income":
            entry = await service.add_income(
                session,
                kitchen,
                source=body.source or "",
                amount=body.amount,
                on=body.entry_on,
                note=body.note,
                recorded_by=principal.sub,
            )
        else:
            entry = await service.add_expense(
                session,
                kitchen,
                category=body.category or "",
                amount=body.amount,
                on=body.entry_on,
                note=body.note,
                recorded_by=principal.sub,
            )
    return LedgerEntryRead.model_validate(entry)


@router.get("/summary", summary="Capacity use, money, cost per portion and runway")
async def summary(kitchen_id: uuid.UUID, session: SessionDep, principal: Read) -> KitchenSummary:
    async with session.begin():
        kitchen = await _kitchen(session, kitchen_id, principal)
        figures, extra = await service.sustainability(session, kitchen)
        by_category = {
            r[0]: int(r[1])
            for r in await session.execute(
                select(Enrolment.category, func.count())
                .where(Enrolment.kitchen_id == kitchen.id, Enrolment.status == "active")
                .group_by(Enrolment.category)
            )
        }
        waiting = int(
            (
                await session.execute(
                    select(func.count()).where(
                        WaitlistEntry.kitchen_id == kitchen.id, WaitlistEntry.status == "waiting"
                    )
                )
            ).scalar_one()
        )
    return KitchenSummary(
        kitchen_id=kitchen.id,
        status=kitchen.status,
        capacity_per_day=kitchen.capacity_per_day,
        active_enrolments=sum(by_category.values()),
        active_by_category=by_category,
        waiting=waiting,
        balance=figures.balance,
        cost_per_portion=figures.cost_per_portion,
        burn_per_day_last_30=figures.burn_per_day,
        runway_days=figures.runway_days,
        **extra,
    )
