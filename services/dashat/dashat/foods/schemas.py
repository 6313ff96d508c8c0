"""API models of foods, menus and rotation plans."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from dashat.foods import domain
from shared.events.vocab import DashatCategory
from shared.web.schemas import ApiInput, ApiOutput

if TYPE_CHECKING:
    from dashat.foods.service import MenuNutrition

Slot = Literal["breakfast", "lunch", "dinner", "snack"]


class FoodCreate(ApiInput):
    code: str = Field(pattern=r"^[a-z0-9_]{2,60}$")
    name: str = Field(min_length=1, max_length=200)
    food_group: str = Field(min_length=1, max_length=60)
    energy_kcal: float = Field(ge=0, le=1000, description="per 100 g")
    protein_g: float = Field(ge=0, le=100)
    fat_g: float = Field(ge=0, le=100)
    carbohydrate_g: float = Field(ge=0, le=100)
    iron_mg: float = Field(ge=0, le=100)
    source: str = Field(min_length=1, max_length=300, description="Where the values come from")


class FoodRead(ApiOutput):
    id: uuid.UUID
    code: str
    name: str
    food_group: str
    energy_kcal: float
    protein_g: float
    fat_g: float
    carbohydrate_g: float
    iron_mg: float
    source: str
    seeded: bool


class MenuItemIn(ApiInput):
    food_id: uuid.UUID
    grams: float = Field(gt=0, le=2000, description="Grams per portion")


class MenuCreate(ApiInput):
    name: str = Field(min_length=1, max_length=200)
    category: DashatCategory = Field(description="The target group whose portion targets apply")
    kitchen_id: uuid.UUID | None = None
    items: list[MenuItemIn] = Field(min_length=1, max_length=30)


class MenuItemRead(ApiOutput):
    food_id: uuid.UUID
    food_name: str
    grams: float


class NutrientWarning(ApiOutput):
    nutrient: str
    target: float
    actual: float
    short_by: float
    message: str


class MenuRead(ApiOutput):
    id: uuid.UUID
    name: str
    category: str
    kitchen_id: uuid.UUID | None
    items: list[MenuItemRead]
    totals: dict[str, float]
    targets: dict[str, float]
    targets_version: str
    warnings: list[NutrientWarning]

    @classmethod
    def from_domain(cls, n: MenuNutrition) -> Self:
        return cls(
            id=n.menu.id,
            name=n.menu.name,
            category=n.menu.category,
            kitchen_id=n.menu.kitchen_id,
            items=[MenuItemRead(food_id=f.id, food_name=f.name, grams=i.grams) for i, f in n.items],
            totals=n.totals,
            targets=domain.PORTION_TARGETS.get(n.menu.category, {}),
            targets_version=domain.TARGETS_VERSION,
            warnings=[NutrientWarning.model_validate(w) for w in n.shortfalls],
        )


class RotationSlotIn(ApiInput):
    day: int = Field(ge=1, le=31)
    slot: Slot
    menu_id: uuid.UUID


class RotationPlan(ApiInput):
    slots: list[RotationSlotIn] = Field(max_length=31 * 4)


class RotationRead(ApiOutput):
    kitchen_id: uuid.UUID
    month: str
    slots: list[dict[str, object]]
