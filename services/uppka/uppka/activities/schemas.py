"""API models of PEK programme activities."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from uppka.activities.service import HeldActivity

ActivityType = Literal["kie_distribution", "socialisation", "orientation", "facilitation", "pek_stunting"]


class ActivityCreate(ApiInput):
    activity_type: ActivityType = Field(
        description="The five PEK activities: KIE materials, socialisation, orientation, facilitation, "
        "PEK development for stunting prevention"
    )
    held_on: ApiDate
    facilitator: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=2000)
    attendee_member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)


class ActivityRead(ApiOutput):
    id: uuid.UUID
    group_id: uuid.UUID
    activity_type: ActivityType
    held_on: date
    facilitator: str | None
    notes: str | None
    attendance: int
    attendee_member_ids: list[uuid.UUID] = Field(default_factory=list)

    @classmethod
    def from_domain(cls, held: HeldActivity) -> Self:
        return cls.from_row(held.activity, attendee_member_ids=held.attendee_member_ids)
