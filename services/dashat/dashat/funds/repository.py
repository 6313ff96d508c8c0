"""Queries of the ledger."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.funds.models import LedgerEntry
from dashat.meals.models import MealBatch
from shared.web.pagination import PageParams, keyset_page


async def totals(session: AsyncSession, kitchen_id: uuid.UUID, since: date) -> tuple[int, int, int]:
    """Income, expenses, and expenses on or after `since`."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == "income"), 0),
                func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == "expense"), 0),
                func.coalesce(
                    func.sum(LedgerEntry.amount).filter(
                        LedgerEntry.kind == "expense", LedgerEntry.entry_on >= since
                    ),
                    0,
                ),
            ).where(LedgerEntry.kitchen_id == kitchen_id)
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def by_key(session: AsyncSession, kitchen_id: uuid.UUID, column: Any) -> dict[str, int]:
    rows = await session.execute(
        select(column, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.kitchen_id == kitchen_id, column.is_not(None))
        .group_by(column)
    )
    return {r[0]: int(r[1]) for r in rows}


async def portions_delivered(session: AsyncSession, kitchen_id: uuid.UUID) -> int:
    value = await session.execute(
        select(func.coalesce(func.sum(MealBatch.portions_delivered), 0)).where(
            MealBatch.kitchen_id == kitchen_id
        )
    )
    return int(value.scalar_one())


async def active_enrolments_by_category(session: AsyncSession, kitchen_id: uuid.UUID) -> dict[str, int]:
    rows = await session.execute(
        select(Enrolment.category, func.count())
        .where(Enrolment.kitchen_id == kitchen_id, Enrolment.status == "active")
        .group_by(Enrolment.category)
    )
    return {r[0]: int(r[1]) for r in rows}


async def waiting_count(session: AsyncSession, kitchen_id: uuid.UUID) -> int:
    """How many waiting entries name this kitchen (the one that was full when they were waitlisted)."""
    stmt = select(func.count()).where(
        WaitlistEntry.kitchen_id == kitchen_id, WaitlistEntry.status == "waiting"
    )
    return int((await session.execute(stmt)).scalar_one())


async def by_contribution(session: AsyncSession, contribution_id: uuid.UUID) -> LedgerEntry | None:
    stmt = select(LedgerEntry).where(LedgerEntry.contribution_id == contribution_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, kitchen_id: uuid.UUID, params: PageParams
) -> tuple[list[LedgerEntry], str | None]:
    return await keyset_page(
        session, select(LedgerEntry).where(LedgerEntry.kitchen_id == kitchen_id), params, LedgerEntry.id
    )
