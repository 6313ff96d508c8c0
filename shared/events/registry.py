"""Events published by the registry on `kencana.registry` (key = family id).

Payloads carry Kencana ids, region codes, dates, ages, categories and flags: never NIK, KK numbers or names.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.envelope import EventData
from shared.events.vocab import (
    HazClass,
    KbMethod,
    MaritalStatus,
    NonUseReason,
    Position,
    Relation,
    ServiceSource,
    Sex,
    WazClass,
    WhzClass,
)


class FamilyFacts(EventData):
    family_id: uuid.UUID
    village_code: str = Field(description="Kemendagri village code, e.g. 15.71.01.1001")
    rw: str | None = None
    rt: str | None = None
    kampung_kb_id: uuid.UUID | None = None
    welfare_decile: int | None = Field(default=None, ge=1, le=10, description="DTSEN desil 1-10")
    drinking_water_proper: bool | None = None
    latrine_proper: bool | None = None


class FamilyRegistered(FamilyFacts):
    """A family (Kartu Keluarga) was registered."""

    event_type: ClassVar[str] = "registry.family.registered.v1"


class FamilyUpdated(FamilyFacts):
    """A family's facts changed (decile, housing, Kampung KB membership, KK number history)."""

    event_type: ClassVar[str] = "registry.family.updated.v1"


class FamilyMoved(EventData):
    """A family moved to another address."""

    event_type: ClassVar[str] = "registry.family.moved.v1"
    family_id: uuid.UUID
    from_village_code: str
    village_code: str
    rw: str | None = None
    rt: str | None = None
    moved_on: date


class PersonFacts(EventData):
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    rw: str | None = None
    sex: Sex
    birth_date: date
    relation: Relation
    marital_status: MaritalStatus
    has_nik: bool
    pus: bool = Field(
        description="A married woman aged 15-49 (Pasangan Usia Subur), as derived by the registry"
    )
    rule_version: str


class PersonRegistered(PersonFacts):
    """A person was registered in a family."""

    event_type: ClassVar[str] = "registry.person.registered.v1"


class PersonUpdated(PersonFacts):
    """A person's facts changed."""

    event_type: ClassVar[str] = "registry.person.updated.v1"


class PersonDied(EventData):
    """A person died."""

    event_type: ClassVar[str] = "registry.person.died.v1"
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    died_on: date


class PersonMoved(EventData):
    """A person moved to another family, or out of the registry's area."""

    event_type: ClassVar[str] = "registry.person.moved.v1"
    person_id: uuid.UUID
    from_family_id: uuid.UUID
    family_id: uuid.UUID | None = Field(description="The new family; null when the person moved out")
    from_village_code: str
    village_code: str | None = None
    rw: str | None = None
    moved_on: date


class PersonsMerged(EventData):
    """Two person records were found to be the same person; `merged_person_id` now points at `person_id`."""

    event_type: ClassVar[str] = "registry.person.merged.v1"
    person_id: uuid.UUID
    merged_person_id: uuid.UUID
    family_id: uuid.UUID
    merged_family_id: uuid.UUID | None = Field(
        default=None, description="The family the merged record belonged to (when different)"
    )


class KbStatusChanged(EventData):
    """A woman's or couple's contraceptive (KB) status changed; MKJP derived."""

    event_type: ClassVar[str] = "registry.kb_status.changed.v1"
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    method: KbMethod | None = Field(description="null = not using KB")
    is_user: bool
    mkjp: bool
    since: date
    reason_non_use: NonUseReason | None = None
    service_source: ServiceSource | None = None
    previous_method: KbMethod | None = Field(
        default=None,
        description="The method in force before `since` (null: none recorded, or not using KB). A status "
        "recorded again for the same `since` corrects that entry, so its previous is what held before it.",
    )
    previous_mkjp: bool = False
    first_record: bool = Field(
        default=False,
        description="Nothing was recorded of this person before (e.g. the first Pendataan Keluarga): the status "
        "found, not a change, so null `previous_method` does not make a new acceptor by itself",
    )
    pus: bool


class CatinRegistered(EventData):
    """A bride/groom-to-be (catin) was registered and screened."""

    event_type: ClassVar[str] = "registry.catin.registered.v1"
    catin_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    rw: str | None = None
    sex: Sex
    planned_marriage_date: date
    bmi: float | None = None
    lila_cm: float | None = None
    hb_g_dl: float | None = None
    at_risk: bool
    risks: list[str] = Field(
        default_factory=list,
        description="e.g. kek, anaemia, underweight, too_young (under 19 on the planned wedding day, UU 16/2019)",
    )
    welfare_decile: int | None = None
    rule_version: str


class PregnancyRegistered(EventData):
    """A pregnancy was registered, with the maternal risk facts."""

    event_type: ClassVar[str] = "registry.pregnancy.registered.v1"
    pregnancy_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    rw: str | None = None
    lmp: date | None = None
    expected_delivery: date
    lila_cm: float | None = None
    hb_g_dl: float | None = None
    kek: bool
    anaemia: Literal["none", "mild", "moderate", "severe"] | None = None
    mother_age_years: int
    welfare_decile: int | None = None
    krs: bool = Field(description="The family is at risk of stunting (KRS) at registration")
    rule_version: str


class PregnancyEnded(EventData):
    """A pregnancy ended in a birth (the child is registered as a person) or a loss."""

    event_type: ClassVar[str] = "registry.pregnancy.ended.v1"
    pregnancy_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    outcome: Literal["birth", "loss"]
    ended_on: date
    child_person_id: uuid.UUID | None = None


class ChildMeasured(EventData):
    """A child's measurement was recorded or corrected, with WHO z-scores, flags and classes."""

    event_type: ClassVar[str] = "registry.child.measured.v1"
    measurement_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    rw: str | None = None
    sex: Sex
    measured_on: date
    age_days: int
    weight_kg: float | None = None
    lenhei_cm: float | None = None
    position: Position | None = None
    oedema: bool = False
    haz: float | None = None
    waz: float | None = None
    whz: float | None = None
    haz_flag: bool = False
    waz_flag: bool = False
    whz_flag: bool = False
    haz_class: HazClass | None = None
    waz_class: WazClass | None = None
    whz_class: WhzClass | None = None
    corrects_measurement_id: uuid.UUID | None = Field(
        default=None, description="Set when this corrects an earlier one"
    )
    rule_version: str


class MeasurementRetracted(EventData):
    """A measurement was retracted (entered in error); what it caused is undone."""

    event_type: ClassVar[str] = "registry.child.measurement_retracted.v1"
    measurement_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    measured_on: date
    retracted_on: date


class StuntingCaseFacts(EventData):
    case_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    rw: str | None = None
    measurement_id: uuid.UUID
    measured_on: date
    haz: float
    age_days: int
    rule_version: str


class BadutaStuntingDetected(StuntingCaseFacts):
    """A child under 24 months was first found stunted (non-flagged HAZ < -2), or became stunted again."""

    event_type: ClassVar[str] = "registry.baduta.stunting_detected.v1"
    severity: Literal["stunted", "severely_stunted"]
    sex: Sex
    birth_date: date
    welfare_decile: int | None = None
    krs: bool = False
    reopened: bool = Field(
        default=False,
        description="The case was resolved, and the measurement that resolved it was corrected or retracted",
    )


class StuntingResolved(StuntingCaseFacts):
    """A stunted child's later measurement is no longer stunted."""

    event_type: ClassVar[str] = "registry.baduta.stunting_resolved.v1"


class StuntingCaseRetracted(EventData):
    """The measurement that caused a stunting case was corrected or retracted; the case no longer stands."""

    event_type: ClassVar[str] = "registry.baduta.stunting_retracted.v1"
    case_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    measurement_id: uuid.UUID
    measured_on: date
    reason: Literal["measurement_corrected", "measurement_retracted"]
    retracted_on: date


class StuntingRiskChanged(EventData):
    """A family's stunting-risk (KRS) status changed, with the reasons."""

    event_type: ClassVar[str] = "registry.family.stunting_risk_changed.v1"
    family_id: uuid.UUID
    village_code: str
    rw: str | None = None
    at_risk: bool
    reasons: list[str]
    target: bool | None = Field(
        default=None,
        description="A target family (keluarga sasaran: a PUS wife, a pregnancy or a child under five), the "
        "denominator of the KRS share; a change of it alone is published too. Null in events before this field.",
    )
    welfare_decile: int | None = None
    rule_version: str
