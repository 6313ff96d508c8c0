"""The public stream contract: the event types other ministries receive and every field they may carry.

Independent of the internal events (shared/events): a public type names the internal type it is curated from and
how each of its fields is derived, so an internal change is absorbed here instead of breaking a ministry. Version
policy (docs/ministry-streams.md): within a major version (`...v1`, topic `kencana.public.<consumer>.v1`) changes
are additive only (a new optional field, a new event type, a new value of a documented open list); anything else is
a new major version published beside the old one on its own topic until consumers have moved.

Field kinds decide what a profile may select and how a value is coarsened:
- `pseudonym`: a Kencana id, sent only as the consumer's own pseudonym (HMAC of the id under the consumer's key);
- `region`: the village code, coarsened to the profile's level (never RW or RT);
- `age`: completed months (or years) or a band, from shared/ages.py, never a birth date;
- `clinical`: a health measurement or status, only under a legal basis that covers health data;
- `plain`: a programme fact (dates, categories, flags).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

FieldKind = Literal["pseudonym", "region", "age", "clinical", "plain"]
AgeUnit = Literal["months", "years"]

PUBLIC_TYPE_PREFIX = "kencana.public."
MAJOR = 1


@dataclass(frozen=True)
class Ref:
    """An internal id to be pseudonymised: `kind` keeps ids of different things apart (person, family, case...)."""

    kind: str
    value: str


@dataclass(frozen=True)
class AgeOn:
    """A person's age on a day, given as the facts it is computed from (never sent as such)."""

    birth_date: date
    on: date
    unit: AgeUnit


@dataclass(frozen=True)
class YearsOld:
    """An adult's age as the registry sent it: completed years (the birth date does not travel)."""

    years: int | None


@dataclass(frozen=True)
class PublicField:
    name: str
    kind: FieldKind
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class PublicType:
    """One public event type: its source, its subject and its fields (core ones always travel)."""

    name: str
    source: str
    description: str
    subject: str
    core: tuple[str, ...]
    fields: tuple[PublicField, ...]
    extract: Callable[[Mapping[str, Any]], dict[str, Any]] = field(repr=False)

    @property
    def type(self) -> str:
        return f"{PUBLIC_TYPE_PREFIX}{self.name}.v{MAJOR}"

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.name not in self.core)

    def field(self, name: str) -> PublicField | None:
        return next((f for f in self.fields if f.name == name), None)


_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_DATE = {"type": "string", "format": "date"}
_DECILE = {"type": "integer", "minimum": 1, "maximum": 10}
_SEX = {"type": "string", "enum": ["L", "P"]}


def _pseudonym(name: str, what: str) -> PublicField:
    return PublicField(name, "pseudonym", f"Pseudonymous id of the {what} (stable in this stream only)", _ID)


def _region() -> PublicField:
    return PublicField(
        "region_code",
        "region",
        "Kemendagri code at the profile's level (village PP.KK.CC.DDDD, district PP.KK.CC or regency PP.KK)",
        {"type": "string", "pattern": r"^\d{2}\.\d{2}(\.\d{2}(\.\d{4})?)?$"},
    )


def _age(what: str) -> PublicField:
    return PublicField(
        "age",
        "age",
        f"Age of the {what}: `age_months`/`age_years` (completed) or `age_band`, as the profile says",
        {"type": ["integer", "string"]},
    )


def _born(data: Mapping[str, Any], on_field: str) -> date:
    """A child's birth date from the measurement day and its age in days (what the registry computed it from)."""
    return date.fromisoformat(data[on_field]) - timedelta(days=int(data["age_days"]))


def _child_measured(d: Mapping[str, Any]) -> dict[str, Any]:
    corrects = d.get("corrects_measurement_id")
    return {
        "child_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "measured_on": d["measured_on"],
        "measurement_id": Ref("measurement", d["measurement_id"]),
        "family_id": Ref("family", d["family_id"]),
        "sex": d.get("sex"),
        "age": AgeOn(_born(d, "measured_on"), date.fromisoformat(d["measured_on"]), "months"),
        "haz": d.get("haz"),
        "haz_class": d.get("haz_class"),
        "haz_flag": d.get("haz_flag"),
        "corrects_measurement_id": Ref("measurement", corrects) if corrects else None,
    }


def _measurement_retracted(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "child_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "measurement_id": Ref("measurement", d["measurement_id"]),
        "retracted_on": d["retracted_on"],
        "family_id": Ref("family", d["family_id"]),
        "measured_on": d["measured_on"],
    }


def _stunting_detected(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "case_id": Ref("case", d["case_id"]),
        "child_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "measured_on": d["measured_on"],
        "family_id": Ref("family", d["family_id"]),
        "sex": d.get("sex"),
        "age": AgeOn(date.fromisoformat(d["birth_date"]), date.fromisoformat(d["measured_on"]), "months"),
        "severity": d.get("severity"),
        "haz": d.get("haz"),
        "welfare_decile": d.get("welfare_decile"),
        "krs": d.get("krs"),
        "reopened": d.get("reopened"),
    }


def _stunting_resolved(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "case_id": Ref("case", d["case_id"]),
        "child_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "measured_on": d["measured_on"],
        "family_id": Ref("family", d["family_id"]),
        "age": AgeOn(_born(d, "measured_on"), date.fromisoformat(d["measured_on"]), "months"),
        "haz": d.get("haz"),
    }


def _stunting_retracted(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "case_id": Ref("case", d["case_id"]),
        "child_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "retracted_on": d["retracted_on"],
        "family_id": Ref("family", d["family_id"]),
        "reason": d.get("reason"),
    }


def _risk_changed(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "family_id": Ref("family", d["family_id"]),
        "region_code": d["village_code"],
        "at_risk": d.get("at_risk"),
        "reasons": d.get("reasons"),
        "target": d.get("target"),
        "welfare_decile": d.get("welfare_decile"),
    }


def _pregnancy_registered(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "pregnancy_id": Ref("pregnancy", d["pregnancy_id"]),
        "mother_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "family_id": Ref("family", d["family_id"]),
        # The registry sends the mother's completed years, not her birth date: bands are cut from those.
        "age": YearsOld(d.get("mother_age_years")),
        "expected_delivery": d.get("expected_delivery"),
        "kek": d.get("kek"),
        "anaemia": d.get("anaemia"),
        "krs": d.get("krs"),
        "welfare_decile": d.get("welfare_decile"),
    }


def _kb_status_changed(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "acceptor_id": Ref("person", d["person_id"]),
        "region_code": d["village_code"],
        "since": d["since"],
        "family_id": Ref("family", d["family_id"]),
        "pus": d.get("pus"),
        "is_user": d.get("is_user"),
        "method": d.get("method"),
        "mkjp": d.get("mkjp"),
    }


_HAZ = PublicField(
    "haz", "clinical", "Length/height-for-age z-score (WHO 2006)", {"type": ["number", "null"]}
)
_KRS = PublicField("krs", "plain", "The family is at risk of stunting (KRS)", {"type": "boolean"})
_WELFARE = PublicField(
    "welfare_decile", "plain", "DTSEN welfare decile 1-10", {"oneOf": [_DECILE, {"type": "null"}]}
)

PUBLIC_TYPES: tuple[PublicType, ...] = (
    PublicType(
        "child.measured",
        "registry.child.measured.v1",
        "A child's length/height was measured (or a measurement corrected).",
        subject="child_id",
        core=("child_id", "region_code", "measured_on"),
        fields=(
            _pseudonym("child_id", "child"),
            _region(),
            PublicField("measured_on", "plain", "Day of the measurement", _DATE),
            _pseudonym("measurement_id", "measurement"),
            _pseudonym("family_id", "family"),
            PublicField("sex", "plain", "L (male) or P (female)", _SEX),
            _age("child on the measurement day"),
            _HAZ,
            PublicField(
                "haz_class", "clinical", "HAZ class (Permenkes 2/2020)", {"type": ["string", "null"]}
            ),
            PublicField(
                "haz_flag", "clinical", "|HAZ| > 6: implausible, to be re-measured", {"type": "boolean"}
            ),
            PublicField(
                "corrects_measurement_id",
                "pseudonym",
                "The measurement this one corrects",
                {**_ID, "type": ["string", "null"]},
            ),
        ),
        extract=_child_measured,
    ),
    PublicType(
        "child.measurement_retracted",
        "registry.child.measurement_retracted.v1",
        "A child's measurement was withdrawn as wrong.",
        subject="child_id",
        core=("child_id", "region_code", "measurement_id", "retracted_on"),
        fields=(
            _pseudonym("child_id", "child"),
            _region(),
            _pseudonym("measurement_id", "measurement"),
            PublicField("retracted_on", "plain", "Day of the retraction", _DATE),
            _pseudonym("family_id", "family"),
            PublicField("measured_on", "plain", "Day of the withdrawn measurement", _DATE),
        ),
        extract=_measurement_retracted,
    ),
    PublicType(
        "stunting.detected",
        "registry.baduta.stunting_detected.v1",
        "A baduta was found stunted (HAZ < -2): a stunting case opened.",
        subject="child_id",
        core=("case_id", "child_id", "region_code", "measured_on"),
        fields=(
            _pseudonym("case_id", "stunting case"),
            _pseudonym("child_id", "child"),
            _region(),
            PublicField("measured_on", "plain", "Day of the measurement that opened the case", _DATE),
            _pseudonym("family_id", "family"),
            PublicField("sex", "plain", "L (male) or P (female)", _SEX),
            _age("child on the measurement day"),
            PublicField(
                "severity",
                "clinical",
                "stunted (< -2 SD) or severely_stunted (< -3 SD)",
                {"type": "string", "enum": ["stunted", "severely_stunted"]},
            ),
            _HAZ,
            _WELFARE,
            _KRS,
            PublicField("reopened", "plain", "A case of the same child reopened", {"type": "boolean"}),
        ),
        extract=_stunting_detected,
    ),
    PublicType(
        "stunting.resolved",
        "registry.baduta.stunting_resolved.v1",
        "A stunting case closed: the child measured HAZ >= -2.",
        subject="child_id",
        core=("case_id", "child_id", "region_code", "measured_on"),
        fields=(
            _pseudonym("case_id", "stunting case"),
            _pseudonym("child_id", "child"),
            _region(),
            PublicField("measured_on", "plain", "Day of the measurement that closed the case", _DATE),
            _pseudonym("family_id", "family"),
            _age("child on the measurement day"),
            _HAZ,
        ),
        extract=_stunting_resolved,
    ),
    PublicType(
        "stunting.retracted",
        "registry.baduta.stunting_retracted.v1",
        "A stunting case was withdrawn: the measurement that opened it was corrected or retracted.",
        subject="child_id",
        core=("case_id", "child_id", "region_code", "retracted_on"),
        fields=(
            _pseudonym("case_id", "stunting case"),
            _pseudonym("child_id", "child"),
            _region(),
            PublicField("retracted_on", "plain", "Day of the retraction", _DATE),
            _pseudonym("family_id", "family"),
            PublicField(
                "reason",
                "plain",
                "Why the case was withdrawn",
                {"type": "string", "enum": ["measurement_corrected", "measurement_retracted"]},
            ),
        ),
        extract=_stunting_retracted,
    ),
    PublicType(
        "family.stunting_risk_changed",
        "registry.family.stunting_risk_changed.v1",
        "A family's risk of stunting (KRS) changed.",
        subject="family_id",
        core=("family_id", "region_code"),
        fields=(
            _pseudonym("family_id", "family"),
            _region(),
            PublicField("at_risk", "plain", "The family is at risk of stunting (KRS)", {"type": "boolean"}),
            PublicField(
                "reasons",
                "plain",
                "Why (open list: air_minum, jamban, 4_terlalu, ...)",
                {"type": "array", "items": {"type": "string"}},
            ),
            PublicField(
                "target", "plain", "A target family (keluarga sasaran)", {"type": ["boolean", "null"]}
            ),
            _WELFARE,
        ),
        extract=_risk_changed,
    ),
    PublicType(
        "pregnancy.registered",
        "registry.pregnancy.registered.v1",
        "A pregnancy was registered.",
        subject="mother_id",
        core=("pregnancy_id", "mother_id", "region_code"),
        fields=(
            _pseudonym("pregnancy_id", "pregnancy"),
            _pseudonym("mother_id", "mother"),
            _region(),
            _pseudonym("family_id", "family"),
            _age("mother at registration"),
            PublicField("expected_delivery", "plain", "Expected day of delivery", _DATE),
            PublicField("kek", "clinical", "Chronic energy deficiency (LiLA < 23.5 cm)", {"type": "boolean"}),
            PublicField(
                "anaemia",
                "clinical",
                "Pregnancy anaemia by Hb (none, mild, moderate, severe)",
                {"type": ["string", "null"], "enum": ["none", "mild", "moderate", "severe", None]},
            ),
            _KRS,
            _WELFARE,
        ),
        extract=_pregnancy_registered,
    ),
    PublicType(
        "kb.status_changed",
        "registry.kb_status.changed.v1",
        "A person's contraceptive (KB) status changed.",
        subject="acceptor_id",
        core=("acceptor_id", "region_code", "since"),
        fields=(
            _pseudonym("acceptor_id", "person"),
            _region(),
            PublicField("since", "plain", "Day the status took effect", _DATE),
            _pseudonym("family_id", "family"),
            PublicField("pus", "plain", "The person belongs to a PUS couple", {"type": "boolean"}),
            PublicField("is_user", "clinical", "Uses a contraceptive method", {"type": "boolean"}),
            PublicField("method", "clinical", "The method (null: none)", {"type": ["string", "null"]}),
            PublicField(
                "mkjp", "clinical", "A long-term method (IUD, implant, MOW, MOP)", {"type": "boolean"}
            ),
        ),
        extract=_kb_status_changed,
    ),
)

BY_NAME: dict[str, PublicType] = {t.name: t for t in PUBLIC_TYPES}
BY_SOURCE: dict[str, PublicType] = {t.source: t for t in PUBLIC_TYPES}
