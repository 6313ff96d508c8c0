"""API models of meals served."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Self

from pydantic import Field

from dashat.foods.schemas import Slot
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from dashat.meals.service import RecordedBatch


class MealsCreate(ApiInput):
    served_on: ApiDate
    slot: Slot
    menu_id: uuid.UUID | None = None
    portions_cooked: int = Field(ge=0, le=100_000)
    portions_delivered: int = Field(ge=0, le=100_000)
    portions_consumed: int = Field(ge=0, le=100_000)
    served_person_ids: list[uuid.UUID] = Field(max_length=5000, description="Beneficiaries who got a portion")
    absent_person_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5000)
    override: bool = Field(default=False, description="Allow more portions than the kitchen's capacity")


class MealsRead(ApiOutput):
    id: uuid.UUID
    kitchen_id: uuid.UUID
    served_on: date
    slot: str
    menu_id: uuid.UUID | None
    portions_cooked: int
    portions_delivered: int
    portions_consumed: int
    beneficiaries_served: int
    absent_person_ids: list[uuid.UUID]
    by_category: dict[str, int]
    capacity_override: bool
    replayed: bool = False

    @classmethod
    def from_domain(cls, recorded: RecordedBatch) -> Self:
        return cls.from_row(
            recorded.batch,
            beneficiaries_served=sum(recorded.by_category.values()),
            absent_person_ids=list(recorded.batch.absent_person_ids),
            by_category=recorded.by_category,
            replayed=recorded.replayed,
        )
