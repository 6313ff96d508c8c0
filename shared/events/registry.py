"""Events published by the registry on `kencana.registry` (key = family id).

Payloads carry Kencana ids, region codes, dates, ages, categories and flags: never NIK, KK numbers or names.
Since issue 12 (item 7) they carry only what a consumer of this project needs: `FIELD_NEEDS` names, per
event type and field, who reads it and why (the catalogue shows it; a test fails on a field without an
entry). Fields no consumer needs are deprecated (`deprecated_field`): kept in the v1 schema, published null.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from shared.events.envelope import EventData, deprecated_field
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
    rt: str | None = deprecated_field(description="Rukun Tetangga: no consumer places anyone by RT.")
    kampung_kb_id: uuid.UUID | None = None
    welfare_decile: int | None = Field(default=None, ge=1, le=10, description="DTSEN desil 1-10")
    drinking_water_proper: bool | None = deprecated_field(
        description="Housing fact: the registry derives KRS from it; consumers read `at_risk`/`reasons`."
    )
    latrine_proper: bool | None = deprecated_field(
        description="Housing fact: the registry derives KRS from it; consumers read `at_risk`/`reasons`."
    )


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
    rt: str | None = deprecated_field(description="Rukun Tetangga: no consumer places anyone by RT.")
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
    merged_family_id: uuid.UUID | None = deprecated_field(
        description="The family the merged record belonged to: consumers know it from their replicas."
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
    first_record: bool = deprecated_field(
        False,
        description="Nothing was recorded of this person before (e.g. the first Pendataan Keluarga); no "
        "consumer reads it: reporting counts new acceptors from `previous_method`.",
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
    bmi: float | None = deprecated_field(
        description="Raw screening figure: consumers read `at_risk`/`risks`."
    )
    lila_cm: float | None = deprecated_field(
        description="Raw screening figure: consumers read `at_risk`/`risks` (kek)."
    )
    hb_g_dl: float | None = deprecated_field(
        description="Raw screening figure: consumers read `at_risk`/`risks` (anaemia)."
    )
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
    lmp: date | None = deprecated_field(
        description="Last menstrual period (HPHT): consumers need only `expected_delivery`."
    )
    expected_delivery: date
    lila_cm: float | None = deprecated_field(
        description="Raw mid-upper arm circumference: consumers read `kek` and `lila_measured`."
    )
    hb_g_dl: float | None = deprecated_field(description="Raw haemoglobin: consumers read `anaemia`.")
    lila_measured: bool | None = Field(
        default=None,
        description="LiLA was measured (the denominator of the KEK share). Events before this field carry the "
        "raw `lila_cm` instead: read as `lila_cm is not None` then.",
    )
    kek: bool
    anaemia: Literal["none", "mild", "moderate", "severe"] | None = None
    mother_age_years: int
    welfare_decile: int | None = None
    krs: bool = Field(description="The family is at risk of stunting (KRS) at registration")
    rule_version: str

    @model_validator(mode="before")
    @classmethod
    def _lila_measured(cls, values: object) -> object:
        # The producer sets `lila_cm`, which travels null now; the flag keeps what reporting needs of it.
        # Events written before the flag existed derive it the same way when consumers read them.
        if isinstance(values, dict) and values.get("lila_measured") is None and "lila_cm" in values:
            return {**values, "lila_measured": values["lila_cm"] is not None}
        return values


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
    rw: str | None = deprecated_field(description="No consumer places a measurement by RW.")
    sex: Sex
    measured_on: date
    age_days: int
    weight_kg: float | None = deprecated_field(description="Raw measurement: consumers read z-scores.")
    lenhei_cm: float | None = deprecated_field(description="Raw measurement: consumers read z-scores.")
    position: Position | None = deprecated_field(description="Raw measurement: consumers read z-scores.")
    oedema: bool = deprecated_field(False, description="No consumer reads it (WHZ/WAZ are not used).")
    haz: float | None = None
    waz: float | None = deprecated_field(description="Weight-for-age: no indicator or rule uses it yet.")
    whz: float | None = deprecated_field(description="Weight-for-height: no indicator or rule uses it yet.")
    haz_flag: bool = False
    waz_flag: bool = deprecated_field(False, description="Weight-for-age: no indicator or rule uses it yet.")
    whz_flag: bool = deprecated_field(
        False, description="Weight-for-height: no indicator or rule uses it yet."
    )
    haz_class: HazClass | None = None
    waz_class: WazClass | None = deprecated_field(description="Weight-for-age: no indicator or rule uses it.")
    whz_class: WhzClass | None = deprecated_field(
        description="Weight-for-height: no indicator or rule uses it."
    )
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
    rw: str | None = deprecated_field(description="No consumer places a family's risk by RW.")
    at_risk: bool
    reasons: list[str]
    target: bool | None = Field(
        default=None,
        description="A target family (keluarga sasaran: a PUS wife, a pregnancy or a child under five), the "
        "denominator of the KRS share; a change of it alone is published too. Null in events before this field.",
    )
    welfare_decile: int | None = None
    rule_version: str


# --- who needs which field (issue 12, item 7) --------------------------------------------------------------
# Per event type, per field: the consumers of this project that read it and why. `tests/shared/
# test_event_needs.py` fails on a field with no entry, on an entry naming no consumer, and on a deprecated field
# listed as needed. Three kinds of entry:
#   - a need: "<consumer>: why; <consumer>: why" (consumers: uppka replicas, dashat replicas/enrolment rules,
#     reporting projection);
#   - `DEPRECATED`: published at its default, nobody reads it (see `deprecated_field`);
#   - `V1_REQUIRED`: nobody in the project reads it, but the v1 schema requires it, so it stays until a v2
#     of the type; only fields that are not personal beyond what the same event's needed fields already say.
DEPRECATED = "deprecated: published at its default; no consumer needs it"
V1_REQUIRED = "no consumer reads it; required in v1 (drop in v2); adds nothing personal to the needed fields"
_KEY = "uppka, dashat, reporting: the aggregate the event is about (replica / projection key)"
_FAMILY = "dashat: the family replica (KRS, decile of its members); reporting: household of the figures"
_VILLAGE = "dashat: the kitchens of the village; reporting: village figures (every level sums villages)"
_RW = "dashat: a kitchen serves some RWs of its village; the RW picks the kitchen"
_DECILE = "dashat: enrolment priority (DTSEN desil); reporting: figures by decile"
_RULE = V1_REQUIRED  # the registry's rule set: provenance, nothing about the person
_BIRTH = (
    "uppka: members' age for PUS/KB figures; dashat: baduta (< 24 completed months) and balita by the day "
    "(shared/ages.py); reporting: a wife leaves PUS on her 50th birthday without an event. Ages by the day "
    "need the day: not coarsened"
)
_FAMILY_FACTS = {
    "family_id": "dashat, reporting: " + _FAMILY,
    "village_code": _VILLAGE,
    "rw": _RW,
    "rt": DEPRECATED,
    "kampung_kb_id": "reporting: Kampung KB figures",
    "welfare_decile": _DECILE,
    "drinking_water_proper": DEPRECATED,
    "latrine_proper": DEPRECATED,
}
_PERSON_FACTS = {
    "person_id": _KEY,
    "family_id": "uppka, dashat: the replica's family (moves, KRS); reporting: household (wife and husband)",
    "village_code": "uppka: members outside the group's area; " + _VILLAGE,
    "rw": _RW,
    "sex": "uppka: member categories; dashat: mothers and children rules; reporting: PUS (women)",
    "birth_date": _BIRTH,
    "relation": "dashat: a baby's mother in the family card; reporting: pairs a wife with her husband (MOP/kondom)",
    "marital_status": "uppka: member categories (remaja never married, PUS); reporting: PUS re-derived in the fold",
    "has_nik": V1_REQUIRED,
    "pus": "uppka: members' PUS figures, a PUS flip re-derives the member category; reporting: PUS denominator of CPR/mCPR",
    "rule_version": _RULE,
}
_CASE = {
    "case_id": "dashat: the case row and the enrolment it triggered; reporting: the case's timeline",
    "person_id": "dashat: the child enrolled; reporting: the case's child",
    "family_id": "reporting: the family (Kampung KB placement) of the case",
    "village_code": _VILLAGE,
    "rw": _RW,
    "measurement_id": V1_REQUIRED,
    "measured_on": "dashat: the case row; reporting: the case dated by its measurement",
    "haz": "dashat: the case row and the enrolment rule (HAZ < -2)",
    "age_days": V1_REQUIRED,
    "rule_version": _RULE,
}
FIELD_NEEDS: dict[str, dict[str, str]] = {
    FamilyRegistered.event_type: _FAMILY_FACTS,
    FamilyUpdated.event_type: _FAMILY_FACTS,
    FamilyMoved.event_type: {
        "family_id": _KEY,
        "from_village_code": V1_REQUIRED,
        "village_code": "uppka: members who moved out of the group's area; " + _VILLAGE,
        "rw": _RW,
        "rt": DEPRECATED,
        "moved_on": "uppka: membership ends on the move; reporting: the family counts in its new village from then",
    },
    PersonRegistered.event_type: _PERSON_FACTS,
    PersonUpdated.event_type: _PERSON_FACTS,
    PersonDied.event_type: {
        "person_id": _KEY,
        "family_id": "uppka, dashat: fills a replica that has not heard of the person yet",
        "village_code": "uppka, dashat: fills a replica that has not heard of the person yet",
        "died_on": "uppka: membership ends; dashat: enrolments end; reporting: stops counting from the day",
    },
    PersonMoved.event_type: {
        "person_id": _KEY,
        "from_family_id": V1_REQUIRED,
        "family_id": "uppka, dashat: the replica's new family (null: moved out); reporting: household",
        "from_village_code": V1_REQUIRED,
        "village_code": "uppka: members outside the group's area; " + _VILLAGE,
        "rw": _RW,
        "moved_on": "uppka: membership ends; dashat: enrolment ends; reporting: counts elsewhere from then",
    },
    PersonsMerged.event_type: {
        "person_id": "uppka, dashat: the surviving record the merged one points at",
        "merged_person_id": "uppka, dashat: the duplicate to fold; reporting: stops counting it",
        "family_id": "reporting: the household of the duplicate",
        "merged_family_id": DEPRECATED,
    },
    KbStatusChanged.event_type: {
        "person_id": _KEY,
        "family_id": "uppka: fills a replica; reporting: household (husband's method counts for the wife)",
        "village_code": "uppka: fills a replica; reporting: village figures",
        "method": "uppka: members' KB method; reporting: CPR/mCPR by method",
        "is_user": "uppka: members' KB participation; reporting: CPR",
        "mkjp": "uppka: members' MKJP; reporting: MKJP share",
        "since": "uppka: when the member's status changed; reporting: the status dated",
        "reason_non_use": "reporting: unmet need (IAT/TIAL/hamil)",
        "service_source": "reporting: figures by service source",
        "previous_method": "uppka: ever a KB user; reporting: new acceptors and dropouts",
        "previous_mkjp": "reporting: MKJP dropouts",
        "first_record": DEPRECATED,
        "pus": "uppka: members' PUS; reporting: PUS denominator",
    },
    CatinRegistered.event_type: {
        "catin_id": "dashat: the enrolment's trigger; reporting: the catin counted once",
        "person_id": "dashat: the catin enrolled",
        "family_id": "dashat: the replica's family; reporting: household (Kampung KB placement)",
        "village_code": _VILLAGE,
        "rw": _RW,
        "sex": "dashat: fills a replica that has not heard of the person yet (catin rule)",
        "planned_marriage_date": "dashat: enrolment ends at the wedding; reporting: catin target until then",
        "bmi": DEPRECATED,
        "lila_cm": DEPRECATED,
        "hb_g_dl": DEPRECATED,
        "at_risk": "dashat: catin enrolment rule; reporting: catin at risk",
        "risks": "dashat: which risks (kek, anaemia, ...) the rule weighs",
        "welfare_decile": _DECILE,
        "rule_version": _RULE,
    },
    PregnancyRegistered.event_type: {
        "pregnancy_id": "dashat: the enrolment's trigger; reporting: the pregnancy counted once",
        "person_id": "dashat: the mother enrolled",
        "family_id": "dashat: the replica's family; reporting: household",
        "village_code": _VILLAGE,
        "rw": _RW,
        "lmp": DEPRECATED,
        "expected_delivery": "dashat: the ibu hamil enrolment's planned end",
        "lila_cm": DEPRECATED,
        "hb_g_dl": DEPRECATED,
        "lila_measured": "reporting: the denominator of the KEK share",
        "kek": "dashat: ibu hamil rule; reporting: KEK pregnancies",
        "anaemia": "dashat: ibu hamil rule; reporting: anaemic pregnancies by grade",
        "mother_age_years": V1_REQUIRED,
        "welfare_decile": _DECILE,
        "krs": "dashat: ibu hamil rule (KRS family); reporting: pregnancies in KRS families",
        "rule_version": _RULE,
    },
    PregnancyEnded.event_type: {
        "pregnancy_id": "dashat: ends what the pregnancy started; reporting: the pregnancy's timeline",
        "person_id": "dashat: the mother (ibu hamil ends, ibu menyusui may start)",
        "family_id": "dashat: fills a replica; reporting: household",
        "village_code": _VILLAGE,
        "outcome": "dashat: completed or lost; reporting: a birth starts the breastfeeding target",
        "ended_on": "dashat: the enrolment ends that day; reporting: pregnant stock ends, breastfeeding starts",
        "child_person_id": "dashat: the baby that makes the mother an ibu menyusui, once per baby",
    },
    ChildMeasured.event_type: {
        "measurement_id": "dashat: the child's trajectory (outcomes); reporting: one measurement per child",
        "person_id": "dashat: the child's trajectory; reporting: the child",
        "family_id": "reporting: household (Kampung KB placement)",
        "village_code": "reporting: village figures",
        "rw": DEPRECATED,
        "sex": V1_REQUIRED,
        "measured_on": "dashat: trajectory; reporting: the period measured",
        "age_days": "dashat: trajectory by age; reporting: baduta/balita measured (ages by the day)",
        "weight_kg": DEPRECATED,
        "lenhei_cm": DEPRECATED,
        "position": DEPRECATED,
        "oedema": DEPRECATED,
        "haz": "dashat: no-improvement rule; reporting: stunting prevalence",
        "waz": DEPRECATED,
        "whz": DEPRECATED,
        "haz_flag": "dashat, reporting: a biologically implausible HAZ (WHO flag) is not counted",
        "waz_flag": DEPRECATED,
        "whz_flag": DEPRECATED,
        "haz_class": "reporting: stunted and severely stunted",
        "waz_class": DEPRECATED,
        "whz_class": DEPRECATED,
        "corrects_measurement_id": "dashat, reporting: the corrected measurement stops counting",
        "rule_version": _RULE,
    },
    MeasurementRetracted.event_type: {
        "measurement_id": "dashat, reporting: the measurement that stops counting",
        "person_id": "dashat: the child's trajectory; reporting: the child",
        "family_id": "reporting: household",
        "village_code": V1_REQUIRED,
        "measured_on": "dashat: a retraction that arrives first; reporting: the period it leaves",
        "retracted_on": V1_REQUIRED,
    },
    BadutaStuntingDetected.event_type: {
        **_CASE,
        "severity": "dashat: baduta rule; reporting: stunted and severely stunted cases",
        "sex": "dashat: fills a replica that has not heard of the child yet (baduta rule)",
        "birth_date": "dashat: fills a replica that has not heard of the child yet; " + _BIRTH,
        "welfare_decile": _DECILE,
        "krs": "dashat: enrolment priority when the replica has no KRS yet",
        "reopened": "dashat: a resolved case reopens",
    },
    # Same model as stunting_detected.v1 (the case facts): what dashat reads there travels here too.
    StuntingResolved.event_type: {
        **_CASE,
        "rw": "dashat reads it on stunting_detected.v1 (same case-facts model): " + _RW,
        "haz": "dashat reads it on stunting_detected.v1 (same case-facts model): the enrolment rule",
        "measured_on": "reporting: the case resolved on its measurement's day",
    },
    StuntingCaseRetracted.event_type: {
        "case_id": "dashat: undoes what the case started; reporting: the case's timeline",
        "person_id": "dashat: the child's case and enrolment",
        "family_id": "reporting: household",
        "village_code": "reporting: village figures",
        "measurement_id": V1_REQUIRED,
        "measured_on": V1_REQUIRED,
        "reason": V1_REQUIRED,
        "retracted_on": "reporting: the case leaves the figures from then",
    },
    StuntingRiskChanged.event_type: {
        "family_id": "dashat: the family replica (KRS for enrolment priority); reporting: KRS families",
        "village_code": "dashat: fills a replica; reporting: village figures",
        "rw": DEPRECATED,
        "at_risk": "dashat: enrolment priority; reporting: KRS families",
        "reasons": "dashat: the reasons weighed; reporting: KRS by reason",
        "target": "reporting: the denominator of the KRS share (keluarga sasaran)",
        "welfare_decile": _DECILE,
        "rule_version": _RULE,
    },
}
