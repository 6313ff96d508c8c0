"""Queries of foods, menus and rotation plans."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.foods.models import Food, Menu, MenuItem, RotationSlot
from dashat.kitchens.models import Kitchen
from shared.regions.scope import within
from shared.web.pagination import PageParams, keyset_page


async def get_food(session: AsyncSession, food_id: uuid.UUID) -> Food | None:
    return await session.get(Food, food_id)


async def food_code_taken(session: AsyncSession, code: str) -> bool:
    return (await session.execute(select(Food.id).where(Food.code == code))).first() is not None


async def known_food_ids(session: AsyncSession, food_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these ids name a food."""
    return set((await session.execute(select(Food.id).where(Food.id.in_(food_ids)))).scalars())


async def page_foods(
    session: AsyncSession, params: PageParams, *, q: str | None = None
) -> tuple[list[Food], str | None]:
    """One page of foods by code (and the next cursor), those whose name or code contains `q` when given."""
    stmt = select(Food)
    if q:
        stmt = stmt.where(or_(Food.name.ilike(f"%{q}%"), Food.code.ilike(f"%{q}%")))
    return await keyset_page(session, stmt, params, Food.code)


async def get_menu(session: AsyncSession, menu_id: uuid.UUID) -> Menu | None:
    return await session.get(Menu, menu_id)


async def menus_by_id(session: AsyncSession, menu_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Menu]:
    return {m.id: m for m in (await session.execute(select(Menu).where(Menu.id.in_(menu_ids)))).scalars()}


async def page_menus(
    session: AsyncSession, params: PageParams, *, region: str | None, kitchen_id: uuid.UUID | None = None
) -> tuple[list[Menu], str | None]:
    """One page of menus: shared ones and those of kitchens inside the region."""
    visible_kitchens = select(Kitchen.id).where(within(Kitchen.village_code, region))
    stmt = select(Menu).where(or_(Menu.kitchen_id.is_(None), Menu.kitchen_id.in_(visible_kitchens)))
    if kitchen_id:
        stmt = stmt.where(Menu.kitchen_id == kitchen_id)
    return await keyset_page(session, stmt, params, Menu.id)


async def menu_items(session: AsyncSession, menu_id: uuid.UUID) -> list[tuple[MenuItem, Food]]:
    """A menu's items, each with its food."""
    rows = await session.execute(
        select(MenuItem, Food).join(Food, Food.id == MenuItem.food_id).where(MenuItem.menu_id == menu_id)
    )
    return [(item, food) for item, food in rows]


async def delete_rotation(session: AsyncSession, kitchen_id: uuid.UUID, month: str) -> None:
    await session.execute(
        delete(RotationSlot).where(RotationSlot.kitchen_id == kitchen_id, RotationSlot.month == month)
    )


async def rotation(session: AsyncSession, kitchen_id: uuid.UUID, month: str) -> list[RotationSlot]:
    """A kitchen's planned slots of a month, by day and slot."""
    rows = await session.execute(
        select(RotationSlot)
        .where(RotationSlot.kitchen_id == kitchen_id, RotationSlot.month == month)
        .order_by(RotationSlot.day, RotationSlot.slot)
    )
    return list(rows.scalars())
