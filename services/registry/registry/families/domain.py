"""Pure rules about families and persons: NIK/KK checks as API errors, PUS, legal basis, KRS (stunting risk)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from registry import rules
from registry.identity.domain import KkCheck, NikCheck, Sex, validate_kk, validate_nik
from shared import ages

LegalBasis = Literal["public_service_mandate", "consent"]
ADULT_AGE = 18


def is_pus(sex: str, marital_status: str, birth_date: date, on: date, *, alive: bool = True) -> bool:
    """PUS: a married woman aged 15-49, alive and in the registry."""
    return (
        alive
        and sex == "P"
        and marital_status == "kawin"
        and rules.PUS_MIN_AGE <= ages.completed_years(birth_date, on) <= rules.PUS_MAX_AGE
    )


class StoredPerson(Protocol):
    """What `person_pus` reads of a stored person."""

    sex: str
    marital_status: str
    birth_date: date
    died_on: date | None
    moved_out_on: date | None
    deleted_at: datetime | None


def person_pus(person: StoredPerson, on: date) -> bool:
    """PUS status of a stored person on a day: only someone alive, not moved out and not deleted counts."""
    alive = person.died_on is None and person.moved_out_on is None and person.deleted_at is None
    return is_pus(person.sex, person.marital_status, person.birth_date, on, alive=alive)


@dataclass
class Revealed:
    """Plain numbers the caller may see (after the access was logged), by person id (NIK) and family id (KK)."""

    niks: dict[uuid.UUID, str]
    kks: dict[uuid.UUID, str]


def nik_errors(
    nik: str, *, today: date, birth_date: date | None, sex: Sex | None, field_name: str = "body.nik"
) -> tuple[NikCheck, list[dict[str, Any]]]:
    """Validate a NIK against the person's facts; every broken rule becomes an error naming the field."""
    check = validate_nik(nik, today=today, birth_date=birth_date, sex=sex)
    errors = [{"field": field_name, "rule": e.code, "message": e.message} for e in check.errors]
    return check, errors


def kk_errors(
    kk: str, *, today: date, field_name: str = "body.kk_number"
) -> tuple[KkCheck, list[dict[str, Any]]]:
    """Validate a KK number; every broken rule becomes an error naming the field."""
    check = validate_kk(kk, today=today)
    errors = [{"field": field_name, "rule": e.code, "message": e.message} for e in check.errors]
    return check, errors


def person_errors(
    *,
    birth_date: date,
    today: date,
    legal_basis: str,
    guardian_person_id: object | None,
    died_on: date | None = None,
    prefix: str = "body",
) -> list[dict[str, Any]]:
    """Rules of a person record other than the NIK."""
    errors: list[dict[str, Any]] = []
    if birth_date > today:
        errors.append(
            {
                "field": f"{prefix}.birth_date",
                "rule": "person.birth_date_future",
                "message": "birth date is in the future",
            }
        )
    if (
        legal_basis == "consent"
        and ages.completed_years(birth_date, today) < ADULT_AGE
        and guardian_person_id is None
    ):
        errors.append(
            {
                "field": f"{prefix}.guardian_person_id",
                "rule": "legal_basis.guardian_required",
                "message": "consent for a child (under 18) must name the guardian who gave it",
            }
        )
    if died_on is not None and (died_on < birth_date or died_on > today):
        errors.append(
            {
                "field": f"{prefix}.died_on",
                "rule": "person.death_date_invalid",
                "message": "death date must lie between birth and today",
            }
        )
    return errors


def head_errors(relations: Sequence[str]) -> list[dict[str, Any]]:
    """A family has exactly one head (kepala keluarga)."""
    heads = sum(1 for r in relations if r == "kepala_keluarga")
    if heads == 1:
        return []
    message = "a family needs its head (relation kepala_keluarga)" if heads == 0 else "a family has one head"
    return [
        {
            "field": "body.members",
            "rule": "family.head_required" if heads == 0 else "family.one_head",
            "message": message,
        }
    ]


# ------------------------------------------------------------------------------------------------ KRS


@dataclass(frozen=True)
class MemberFacts:
    """What the KRS rules need to know about one current member."""

    sex: str
    birth_date: date
    relation: str
    marital_status: str
    alive: bool = True


@dataclass(frozen=True)
class FamilyFacts:
    drinking_water_source: str | None
    latrine_type: str | None
    members: Sequence[MemberFacts]
    pregnant: bool = False
    # Birth dates of the wife's children where known beyond the family card (e.g. from pregnancies).
    extra_child_birth_dates: Sequence[date] = field(default_factory=tuple)


@dataclass(frozen=True)
class KrsResult:
    target: bool
    at_risk: bool
    reasons: list[str]
    rule_version: str = rules.RULES_VERSION


def _wife(members: Sequence[MemberFacts], on: date) -> MemberFacts | None:
    wives = [m for m in members if m.alive and is_pus(m.sex, m.marital_status, m.birth_date, on)]
    for relation in ("istri", "kepala_keluarga"):
        for m in wives:
            if m.relation == relation:
                return m
    return wives[0] if wives else None


def evaluate_krs(facts: FamilyFacts, on: date) -> KrsResult:
    """Keluarga Risiko Stunting: a target family (PUS, pregnant, baduta/balita) with any risk factor."""
    wife = _wife(facts.members, on)
    children = [m for m in facts.members if m.alive and m.relation in ("anak", "cucu")]
    has_balita = any(ages.is_balita(c.birth_date, on) for c in children)
    target = wife is not None or facts.pregnant or has_balita
    if not target:
        return KrsResult(False, False, [])
    reasons: list[str] = []
    if (
        facts.drinking_water_source is not None
        and facts.drinking_water_source not in rules.PROPER_WATER_SOURCES
    ):
        reasons.append("drinking_water_improper")
    if facts.latrine_type is not None and facts.latrine_type not in rules.PROPER_LATRINES:
        reasons.append("latrine_improper")
    if wife is not None:
        age = ages.completed_years(wife.birth_date, on)
        if age < rules.WIFE_TOO_YOUNG_BELOW:
            reasons.append("wife_too_young")
        if age >= rules.WIFE_TOO_OLD_FROM:
            reasons.append("wife_too_old")
        births = sorted(
            {c.birth_date for c in facts.members if c.relation == "anak"} | set(facts.extra_child_birth_dates)
        )
        if any(
            ages.completed_months(a, b) < rules.BIRTH_SPACING_MIN_MONTHS
            for a, b in itertools.pairwise(births)
        ):
            reasons.append("births_too_close")
        if len(births) > rules.TOO_MANY_CHILDREN_ABOVE:
            reasons.append("too_many_children")
    return KrsResult(True, bool(reasons), reasons)


def water_proper(source: str | None) -> bool | None:
    return None if source is None else source in rules.PROPER_WATER_SOURCES


def latrine_proper(latrine: str | None) -> bool | None:
    return None if latrine is None else latrine in rules.PROPER_LATRINES
