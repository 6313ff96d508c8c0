"""Queries of meal batches and servings."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment
from dashat.meals.models import MealBatch, MealServing
from shared.web.pagination import PageParams, keyset_page


async def batch_at(
    session: AsyncSession, kitchen_id: uuid.UUID, served_on: date, slot: str
) -> MealBatch | None:
    """The batch a kitchen recorded for a date and slot, if any (there is at most one)."""
    stmt = select(MealBatch).where(
        MealBatch.kitchen_id == kitchen_id, MealBatch.served_on == served_on, MealBatch.slot == slot
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def served_by_category(session: AsyncSession, batch_id: uuid.UUID) -> dict[str, int]:
    rows = await session.execute(
        select(MealServing.category, func.count())
        .where(MealServing.batch_id == batch_id)
        .group_by(MealServing.category)
    )
    return {r[0]: int(r[1]) for r in rows}


async def enrolments_at(
    session: AsyncSession, kitchen_id: uuid.UUID, on: date, person_ids: Collection[uuid.UUID]
) -> list[Enrolment]:
    """Active enrolments of these people at the kitchen that had started by `on`."""
    stmt = select(Enrolment).where(
        Enrolment.kitchen_id == kitchen_id,
        Enrolment.status == "active",
        Enrolment.start_date <= on,
        Enrolment.person_id.in_(person_ids),
    )
    return list((await session.execute(stmt)).scalars())


async def already_served(
    session: AsyncSession, person_ids: Collection[uuid.UUID], on: date, slot: str
) -> list[uuid.UUID]:
    """Which of these people had this meal (date and slot) recorded by any kitchen."""
    stmt = select(MealServing.person_id).where(
        MealServing.person_id.in_(person_ids), MealServing.served_on == on, MealServing.slot == slot
    )
    return list((await session.execute(stmt)).scalars())


async def page(
    session: AsyncSession, kitchen_id: uuid.UUID, params: PageParams
) -> tuple[list[MealBatch], str | None]:
    return await keyset_page(
        session, select(MealBatch).where(MealBatch.kitchen_id == kitchen_id), params, MealBatch.id
    )
