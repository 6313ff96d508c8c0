"""API models of measurements and stunting cases."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import ConfigDict, Field

from shared.events.vocab import Position
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from registry.growth.models import Measurement, StuntingCase

MeasurementStatus = Literal["active", "corrected", "retracted"]
CaseStatus = Literal["open", "resolved", "retracted"]

MEASUREMENT_EXAMPLE: dict[str, Any] = {
    "measured_on": "2026-11-20",
    "weight_kg": 8.1,
    "lenhei_cm": 70.2,
    "position": "l",
    "oedema": False,
}


class MeasurementValues(ApiInput):
    measured_on: ApiDate
    weight_kg: float | None = Field(default=None, description="kg")
    lenhei_cm: float | None = Field(default=None, description="Length (lying) or height (standing), cm")
    position: Position | None = Field(default=None, description="l = lying (length), h = standing (height)")
    oedema: bool = False


class MeasurementCreate(MeasurementValues):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"person_id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11", **MEASUREMENT_EXAMPLE}]
        }
    )

    person_id: uuid.UUID


class MeasurementCorrection(MeasurementValues):
    """The corrected values; the original stays, marked corrected, and points at nothing it caused any more."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**MEASUREMENT_EXAMPLE, "reason": "length misread"}]}
    )

    reason: str = Field(min_length=1, max_length=300)


class MeasurementRetraction(ApiInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "entered for the wrong child"}]})

    reason: str = Field(min_length=1, max_length=300)


class MeasurementRead(ApiOutput):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "9d7c1b2a-0000-4000-8000-000000000001",
                    "person_id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11",
                    "family_id": "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10",
                    **MEASUREMENT_EXAMPLE,
                    "age_days": 301,
                    "haz": -0.81,
                    "waz": -0.35,
                    "whz": 0.12,
                    "haz_flag": False,
                    "waz_flag": False,
                    "whz_flag": False,
                    "standing_under_9_months": False,
                    "haz_class": "normal",
                    "waz_class": "normal",
                    "whz_class": "normal",
                    "rule_version": "who2006-anthro-1",
                    "status": "active",
                    "corrects_measurement_id": None,
                    "version": 1,
                    "updated_at": "2026-11-29T05:00:00Z",
                    "deleted": False,
                }
            ]
        },
    )

    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    measured_on: date
    age_days: int
    weight_kg: float | None
    lenhei_cm: float | None
    position: str | None
    oedema: bool
    haz: float | None
    waz: float | None
    whz: float | None
    haz_flag: bool
    waz_flag: bool
    whz_flag: bool
    standing_under_9_months: bool
    haz_class: str | None
    waz_class: str | None
    whz_class: str | None
    rule_version: str
    status: MeasurementStatus = Field(description="active, corrected (replaced by a correction) or retracted")
    corrects_measurement_id: uuid.UUID | None
    change_reason: str | None = None
    version: int
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, m: Measurement) -> Self:
        # A corrected or retracted measurement is a tombstone in the feed and the history.
        return cls.from_row(m, deleted=m.status != "active")


class StuntingCaseRead(ApiOutput):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    measurement_id: uuid.UUID
    measured_on: date
    haz: float
    age_days: int
    severity: str
    status: CaseStatus = Field(description="open, resolved or retracted")
    resolved_by_measurement_id: uuid.UUID | None
    resolved_on: date | None
    retracted_on: date | None
    retraction_reason: str | None
    rule_version: str
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, case: StuntingCase) -> Self:
        return cls.from_row(case, deleted=case.status == "retracted")


class MeasurementHistory(ApiOutput):
    """A measurement's versions: what was recorded first and each correction, oldest first."""

    measurement_id: uuid.UUID = Field(description="The measurement asked about (any version of the chain)")
    current_measurement_id: uuid.UUID | None = Field(
        description="The version in force (status active); null when the last version was retracted"
    )
    versions: list[MeasurementRead] = Field(
        description="Oldest first. Each correction names the version it replaced (`corrects_measurement_id`); "
        "replaced versions have status `corrected` and `deleted: true`, a retracted one `retracted`."
    )
