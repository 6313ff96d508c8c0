"""Ledger use cases: income and expenses with their events, and a kitchen's sustainability figures."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.common import today
from dashat.funds import domain
from dashat.funds import repository as repo
from dashat.funds.models import LedgerEntry
from dashat.kitchens.models import Kitchen
from dashat.models import outbox
from shared.db import new_id
from shared.errors import ValidationFailed
from shared.events import dashat as ev
from shared.outbox import publish


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
    entry = LedgerEntry(
        id=new_id(),
        kitchen_id=kitchen.id,
        kind="income",
        source=source,
        amount=amount,
        entry_on=on,
        note=note,
        contribution_id=contribution_id,
        group_id=group_id,
        recorded_by=recorded_by,
    )
    session.add(entry)
    await session.flush()
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


async def add_expense(
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
    entry = LedgerEntry(
        id=new_id(),
        kitchen_id=kitchen.id,
        kind="expense",
        category=category,
        amount=amount,
        entry_on=on,
        note=note,
        recorded_by=recorded_by,
    )
    session.add(entry)
    await session.flush()
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


async def sustainability(
    session: AsyncSession, kitchen: Kitchen
) -> tuple[domain.Sustainability, dict[str, object]]:
    since = today() - timedelta(days=domain.BURN_WINDOW_DAYS - 1)
    income, expenses, window = await repo.totals(session, kitchen.id, since)
    portions = await repo.portions_delivered(session, kitchen.id)
    figures = domain.sustainability(
        income=income, expenses=expenses, expenses_last_window=window, portions_served=portions
    )
    extra: dict[str, object] = {
        "income_total": income,
        "expense_total": expenses,
        "portions_delivered": portions,
        "income_by_source": await repo.by_key(session, kitchen.id, LedgerEntry.source),
        "expense_by_category": await repo.by_key(session, kitchen.id, LedgerEntry.category),
    }
    return figures, extra
