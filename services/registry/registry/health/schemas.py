"""API models of KB status, catin and pregnancies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal, Self

from pydantic import ConfigDict, Field

from registry.families.schemas import PersonInput
from shared.events.vocab import NonUseReason, Relation, ServiceSource, Sex
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from registry.health.models import Catin, KbStatus, Pregnancy

PregnancyStatus = Literal["ongoing", "ended"]

# The methods a KB status may be recorded with: MAL (modern) and traditional methods apart, as mCPR needs them.
# `mal_tradisional` stays only in the history of earlier records and events (shared/events/vocab.py).
KbMethodInput = Literal["iud", "implant", "mow", "mop", "suntik", "pil", "kondom", "mal", "tradisional"]


class KbStatusCreate(ApiInput):
    """A new KB status; the previous one stays in the history."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"method": "implant", "since": "2026-03-01", "service_source": "pemerintah"},
                {"method": None, "since": "2026-03-01", "reason_non_use": "iat"},
            ]
        }
    )

    method: KbMethodInput | None = Field(
        description="null = not using KB (then give reason_non_use). MAL is lactational amenorrhoea (modern); "
        "`tradisional` is periodic abstinence or withdrawal. IUD, implant, MOW, suntik, pil and MAL are the "
        "woman's, MOP the man's, kondom and tradisional either partner's; from 10 completed years at `since`."
    )
    since: ApiDate
    reason_non_use: NonUseReason | None = None
    service_source: ServiceSource | None = None


class KbStatusRead(ApiOutput):
    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    method: str | None
    is_user: bool
    mkjp: bool
    since: date
    reason_non_use: str | None
    service_source: str | None
    current: bool
    rule_version: str
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, row: KbStatus) -> Self:
        # A KB status is never deleted: a new one replaces it (the feed shows the replaced one, current false).
        return cls.from_row(row, deleted=False)


class CatinCreate(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11",
                    "planned_marriage_date": "2027-03-01",
                    "screened_on": "2026-11-20",
                    "weight_kg": 44.0,
                    "height_cm": 156.0,
                    "lila_cm": 22.8,
                    "hb_g_dl": 11.2,
                }
            ]
        }
    )

    person_id: uuid.UUID
    planned_marriage_date: ApiDate
    screened_on: ApiDate
    weight_kg: float | None = Field(default=None, gt=20, lt=250)
    height_cm: float | None = Field(default=None, gt=100, lt=230)
    lila_cm: float | None = Field(default=None, gt=10, lt=60)
    hb_g_dl: float | None = Field(default=None, gt=2, lt=25)


class CatinRead(ApiOutput):
    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    planned_marriage_date: date
    screened_on: date
    weight_kg: float | None
    height_cm: float | None
    bmi: float | None
    lila_cm: float | None
    hb_g_dl: float | None
    at_risk: bool
    risks: list[str]
    rule_version: str
    version: int
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, row: Catin) -> Self:
        return cls.from_row(row, deleted=row.deleted_at is not None)


class PregnancyCreate(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11",
                    "lmp": "2026-06-01",
                    "lila_cm": 22.5,
                    "hb_g_dl": 10.4,
                }
            ]
        }
    )

    person_id: uuid.UUID
    lmp: ApiDate | None = Field(default=None, description="HPHT, first day of the last menstrual period")
    expected_delivery: ApiDate | None = Field(default=None, description="Default: LMP + 280 days")
    lila_cm: float | None = Field(default=None, gt=10, lt=60)
    hb_g_dl: float | None = Field(default=None, gt=2, lt=25)


class ChildInput(ApiInput):
    """The newborn; becomes a person of the mother's family (NIK usually not yet issued)."""

    nik: str | None = None
    name: str = Field(min_length=1, max_length=200)
    sex: Sex
    relation: Relation = "anak"
    legal_basis: Literal["public_service_mandate", "consent"] = "public_service_mandate"
    guardian_person_id: uuid.UUID | None = None


class PregnancyEnd(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcome": "birth",
                    "ended_on": "2027-03-05",
                    "child": {"name": "Bayi Ny. Siti", "sex": "L"},
                },
                {"outcome": "loss", "ended_on": "2026-08-01"},
            ]
        }
    )

    outcome: Literal["birth", "loss"]
    ended_on: ApiDate
    child: ChildInput | None = Field(default=None, description="Required for a birth")


class PregnancyRead(ApiOutput):
    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    lmp: date | None
    expected_delivery: date
    lila_cm: float | None
    hb_g_dl: float | None
    kek: bool
    anaemia: str | None
    status: PregnancyStatus
    outcome: Literal["birth", "loss"] | None
    ended_on: date | None
    child_person_id: uuid.UUID | None
    rule_version: str
    version: int
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, row: Pregnancy) -> Self:
        return cls.from_row(row, deleted=row.deleted_at is not None)


def child_person(child: ChildInput, birth: date) -> PersonInput:
    return PersonInput(
        nik=child.nik,
        name=child.name,
        sex=child.sex,
        birth_date=birth,
        relation=child.relation,
        marital_status="belum_kawin",
        legal_basis=child.legal_basis,
        guardian_person_id=child.guardian_person_id,
    )
