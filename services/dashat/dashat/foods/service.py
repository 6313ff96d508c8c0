"""Foods, menus and rotation plans."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.foods import domain
from dashat.foods import repository as repo
from dashat.foods.models import Food, Menu, MenuItem, RotationSlot
from dashat.foods.schemas import FoodCreate, MenuCreate, RotationPlan
from dashat.kitchens import service as kitchens
from shared.auth import Principal
from shared.db import new_id
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.web.pagination import PageParams


async def list_foods(
    session: AsyncSession, params: PageParams, *, q: str | None = None
) -> tuple[list[Food], str | None]:
    """One page of foods (by code) and the next cursor."""
    async with session.begin():
        return await repo.page_foods(session, params, q=q)


async def get_food(session: AsyncSession, food_id: uuid.UUID) -> Food:
    async with session.begin():
        food = await repo.get_food(session, food_id)
    if food is None:
        raise NotFound("food not found")
    return food


async def create_food(session: AsyncSession, body: FoodCreate, principal: Principal) -> Food:
    food = Food(id=new_id(), **body.model_dump(), seeded=False, created_by=principal.sub)
    try:
        async with session.begin():
            if await repo.food_code_taken(session, body.code):
                raise Conflict(f"a food with code {body.code} exists", rule="food.code_taken")
            session.add(food)
    except IntegrityError as exc:
        raise Conflict(f"a food with code {body.code} exists", rule="food.code_taken") from exc
    return food


async def _visible_kitchen(session: AsyncSession, kitchen_id: uuid.UUID | None, principal: Principal) -> None:
    # No kitchen: a shared menu, everyone's to use.
    if kitchen_id is not None:
        await kitchens.visible(session, kitchen_id, principal)


@dataclass(frozen=True)
class MenuNutrition:
    """A menu, its foods with their grams, and what one portion gives against the category's targets (the API
    model is made at the edge: `MenuRead.from_domain`)."""

    menu: Menu
    items: list[tuple[MenuItem, Food]]
    totals: dict[str, float]
    shortfalls: list[dict[str, object]]


async def _nutrition(session: AsyncSession, menu: Menu) -> MenuNutrition:
    rows = await repo.menu_items(session, menu.id)
    pairs = [
        (domain.FoodNutrients(f.energy_kcal, f.protein_g, f.fat_g, f.carbohydrate_g, f.iron_mg), i.grams)
        for i, f in rows
    ]
    totals = domain.totals(pairs)
    return MenuNutrition(menu, rows, totals, domain.shortfalls(menu.category, totals))


async def create_menu(session: AsyncSession, body: MenuCreate, principal: Principal) -> MenuNutrition:
    async with session.begin():
        await _visible_kitchen(session, body.kitchen_id, principal)
        ids = [i.food_id for i in body.items]
        seen: set[uuid.UUID] = set()
        for n, food_id in enumerate(ids):
            if food_id in seen:
                raise ValidationFailed(
                    "a food is listed twice", field=f"body.items.{n}.food_id", rule="menu.food_duplicate"
                )
            seen.add(food_id)
        known = await repo.known_food_ids(session, ids)
        unknown = [
            {
                "field": f"body.items.{n}.food_id",
                "rule": "menu.food_unknown",
                "message": f"unknown food {fid}",
            }
            for n, fid in enumerate(ids)
            if fid not in known
        ]
        if unknown:
            raise ValidationFailed("the menu names unknown foods", errors=unknown)
        menu = Menu(
            id=new_id(),
            name=body.name,
            category=body.category,
            kitchen_id=body.kitchen_id,
            created_by=principal.sub,
        )
        session.add(menu)
        await session.flush()
        session.add_all(MenuItem(menu_id=menu.id, food_id=i.food_id, grams=i.grams) for i in body.items)
        await session.flush()
        nutrition = await _nutrition(session, menu)
    return nutrition


async def list_menus(
    session: AsyncSession, params: PageParams, principal: Principal, *, kitchen_id: uuid.UUID | None = None
) -> tuple[list[MenuNutrition], str | None]:
    """One page of the menus the caller sees (shared ones, their region's kitchens') and the next cursor."""
    async with session.begin():
        items, cursor = await repo.page_menus(session, params, region=principal.region, kitchen_id=kitchen_id)
        out = [await _nutrition(session, m) for m in items]
    return out, cursor


async def get_menu(session: AsyncSession, menu_id: uuid.UUID, principal: Principal) -> MenuNutrition:
    async with session.begin():
        menu = await repo.get_menu(session, menu_id)
        if menu is None:
            raise NotFound("menu not found")
        await _visible_kitchen(session, menu.kitchen_id, principal)
        return await _nutrition(session, menu)


def _check_month(month: str) -> tuple[int, int]:
    try:
        year, mon = (int(x) for x in month.split("-"))
        if not (2000 <= year <= 2100 and 1 <= mon <= 12) or len(month) != 7:
            raise ValueError(month)
    except ValueError as exc:
        raise ValidationFailed("month must be YYYY-MM", field="path.month", rule="rotation.month") from exc
    return year, mon


async def put_rotation(
    session: AsyncSession, kitchen_id: uuid.UUID, month: str, body: RotationPlan, principal: Principal
) -> list[dict[str, object]]:
    year, mon = _check_month(month)
    last_day = calendar.monthrange(year, mon)[1]
    async with session.begin():
        await _visible_kitchen(session, kitchen_id, principal)
        seen: set[tuple[int, str]] = set()
        for n, s in enumerate(body.slots):
            if s.day > last_day:
                raise ValidationFailed(
                    f"{month} has {last_day} days",
                    field=f"body.slots.{n}.day",
                    rule="rotation.day_outside_month",
                )
            if (s.day, s.slot) in seen:
                raise ValidationFailed(
                    "a day and slot is planned twice", field=f"body.slots.{n}", rule="rotation.duplicate"
                )
            seen.add((s.day, s.slot))
        menu_ids = {s.menu_id for s in body.slots}
        menus = await repo.menus_by_id(session, menu_ids)
        for n, s in enumerate(body.slots):
            m = menus.get(s.menu_id)
            if m is None or (m.kitchen_id is not None and m.kitchen_id != kitchen_id):
                raise ValidationFailed(
                    "unknown menu", field=f"body.slots.{n}.menu_id", rule="rotation.menu_unknown"
                )
        await repo.delete_rotation(session, kitchen_id, month)
        session.add_all(
            RotationSlot(
                id=new_id(), kitchen_id=kitchen_id, month=month, day=s.day, slot=s.slot, menu_id=s.menu_id
            )
            for s in body.slots
        )
    return [s.model_dump(mode="json") for s in sorted(body.slots, key=lambda s: (s.day, s.slot))]


async def get_rotation(
    session: AsyncSession, kitchen_id: uuid.UUID, month: str, principal: Principal
) -> list[dict[str, object]]:
    _check_month(month)
    async with session.begin():
        await _visible_kitchen(session, kitchen_id, principal)
        rows = await repo.rotation(session, kitchen_id, month)
        return [{"day": r.day, "slot": r.slot, "menu_id": str(r.menu_id)} for r in rows]
