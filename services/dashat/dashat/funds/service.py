"""Ledger use cases: income and expenses with their events, and a kitchen's sustainability figures."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.funds import domain
from dashat.funds import repository as repo
from dashat.funds.models import LedgerEntry
from dashat.funds.schemas import KitchenSummary, LedgerEntryCreate
from dashat.kitchens import service as kitchens
from dashat.kitchens.models import Kitchen
from dashat.models import outbox
from shared.auth import Principal
from shared.clock import business_today
from shared.db import new_id
from shared.errors import ValidationFailed
from shared.events import dashat as ev
from shared.outbox import publish
from shared.web.pagination import PageParams


async def list_ledger(
    session: AsyncSession, kitchen_id: uuid.UUID, params: PageParams, principal: Principal
) -> tuple[list[LedgerEntry], str | None]:
    """One page of a visible kitchen's ledger and the next cursor."""
    async with session.begin():
        await kitchens.visible(session, kitchen_id, principal)
        return await repo.page(session, kitchen_id, params)


async def record_entry(
    session: AsyncSession, kitchen_id: uuid.UUID, body: LedgerEntryCreate, principal: Principal
) -> LedgerEntry:
    """Record income or an expense entered by hand."""
    if body.kind == "income" and (body.source is None or body.category is not None):
        raise ValidationFailed(
            "income needs a source and no category", field="body.source", rule="ledger.income_source"
        )
    if body.kind == "expense" and (body.category is None or body.source is not None):
        raise ValidationFailed(
            "an expense needs a category and no source", field="body.category", rule="ledger.expense_category"
        )
    async with session.begin():
        # Locked: two expenses recorded at once must not both spend the same balance.
        kitchen = await kitchens.visible(session, kitchen_id, principal, lock=True)
        if body.kind == "income":
            return await add_income(
                session,
                kitchen,
                source=body.source or "",
                amount=body.amount,
                on=body.entry_on,
                note=body.note,
                recorded_by=principal.sub,
            )
        return await _add_expense(
            session,
            kitchen,
            category=body.category or "",
            amount=body.amount,
            on=body.entry_on,
            note=body.note,
            recorded_by=principal.sub,
        )


async def _new_entry(session: AsyncSession, kitchen: Kitchen, **values: Any) -> LedgerEntry:
    entry = LedgerEntry(id=new_id(), kitchen_id=kitchen.id, **values)
    session.add(entry)
    await session.flush()
    return entry


async def add_income(
    session: AsyncSession,
    kitchen: Kitchen,
    *,
    source: str,
    amount: int,
    on: date,
    note: str | None = None,
    contribution_id: uuid.UUID | None = None,
    group_id: uuid.UUID | None = None,
    recorded_by: str | None = None,
    causation_id: str | None = None,
) -> LedgerEntry:
    """Income and its event, inside the caller's transaction (an API use case or a consumer handler)."""
    entry = await _new_entry(
        session,
        kitchen,
        kind="income",
        source=source,
        amount=amount,
        entry_on=on,
        note=note,
        contribution_id=contribution_id,
        group_id=group_id,
        recorded_by=recorded_by,
    )
    await publish(
        session,
        outbox,
        ev.FundsReceived(
            kitchen_id=kitchen.id,
            entry_id=entry.id,
            village_code=kitchen.village_code,
            source=source,
            amount=amount,
            received_on=on,
            contribution_id=contribution_id,
        ),
        key=kitchen.id,
        causation_id=causation_id,
    )
    return entry


async def _add_expense(
    session: AsyncSession,
    kitchen: Kitchen,
    *,
    category: str,
    amount: int,
    on: date,
    note: str | None = None,
    recorded_by: str | None = None,
) -> LedgerEntry:
    income, expenses, _ = await repo.totals(session, kitchen.id, on)
    if not domain.expense_allowed(income - expenses, amount):
        raise ValidationFailed(
            f"the expense of Rp{amount} exceeds the balance of Rp{income - expenses}",
            field="body.amount",
            rule="ledger.balance_negative",
        )
    entry = await _new_entry(
        session,
        kitchen,
        kind="expense",
        category=category,
        amount=amount,
        entry_on=on,
        note=note,
        recorded_by=recorded_by,
    )
    await publish(
        session,
        outbox,
        ev.ExpenseRecorded(
            kitchen_id=kitchen.id,
            entry_id=entry.id,
            village_code=kitchen.village_code,
            category=category,
            amount=amount,
            spent_on=on,
        ),
        key=kitchen.id,
    )
    return entry


async def summary(session: AsyncSession, kitchen_id: uuid.UUID, principal: Principal) -> KitchenSummary:
    """Capacity use, money, cost per portion and runway of a visible kitchen."""
    since = business_today() - timedelta(days=domain.BURN_WINDOW_DAYS - 1)
    async with session.begin():
        kitchen = await kitchens.visible(session, kitchen_id, principal)
        income, expenses, window = await repo.totals(session, kitchen.id, since)
        portions = await repo.portions_delivered(session, kitchen.id)
        income_by_source = await repo.by_key(session, kitchen.id, LedgerEntry.source)
        expense_by_category = await repo.by_key(session, kitchen.id, LedgerEntry.category)
        by_category = await repo.active_enrolments_by_category(session, kitchen.id)
        waiting = await repo.waiting_count(session, kitchen.id)
    figures = domain.sustainability(
        income=income, expenses=expenses, expenses_last_window=window, portions_served=portions
    )
    return KitchenSummary(
        kitchen_id=kitchen.id,
        status=kitchen.status,
        capacity_per_day=kitchen.capacity_per_day,
        active_enrolments=sum(by_category.values()),
        active_by_category=by_category,
        waiting=waiting,
        income_total=income,
        expense_total=expenses,
        income_by_source=income_by_source,
        expense_by_category=expense_by_category,
        balance=figures.balance,
        portions_delivered=portions,
        cost_per_portion=figures.cost_per_portion,
        burn_per_day_last_30=figures.burn_per_day,
        runway_days=figures.runway_days,
    )
