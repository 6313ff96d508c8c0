"""Automatic enrolment rules: versioned configuration and pure decisions (no I/O, no clock).

Every enrolment and waitlist entry stores the rule id and RULES_VERSION that produced it; change a threshold
here and bump the version, so old decisions stay explainable by the rules that made them.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal, cast

RULES_VERSION = "dashat-enrolment-2026.1"

Category = Literal["catin", "ibu_hamil", "ibu_menyusui", "baduta_stunting", "balita_stunting"]

RULE_BADUTA_STUNTING = "baduta_stunting_detected"
RULE_PREGNANCY = "pregnancy_at_risk"
RULE_CATIN = "catin_at_risk"
RULE_BIRTH = "birth_breastfeeding"
RULE_MANUAL = "manual"
RULE_MOVED = "moved_continuation"

# A decile we do not know sorts after every known decile (1 = poorest).
UNKNOWN_DECILE = 11


@dataclass(frozen=True)
class RuleConfig:
    """The programme's configurable choices; the defaults follow local practice seen in DASHAT villages."""

    version: str = RULES_VERSION
    planned_days: dict[str, int] = field(
        default_factory=lambda: {
            "baduta_stunting": 90,
            "balita_stunting": 90,
            "ibu_hamil": 120,
            "ibu_menyusui": 90,
            "catin": 90,
        }
    )
    # Pregnancies in families at or below this DTSEN decile are targets even without KRS or a maternal risk.
    pregnancy_max_decile: int = 4
    pregnancy_anaemia_levels: frozenset[str] = frozenset({"mild", "moderate", "severe"})
    enrol_ibu_menyusui_after_birth: bool = True
    # Baduta = 0-23 months: the child leaves at this age unless the balita rule keeps stunted children on.
    baduta_age_out_months: int = 24
    balita_age_out_months: int = 60
    continue_as_balita: bool = False


DEFAULT_CONFIG = RuleConfig()


@dataclass(frozen=True)
class Decision:
    """Enrol (or waitlist) this person in this category, because of this rule and these facts."""

    category: Category
    rule_id: str
    rule_version: str
    planned_days: int
    priority: int
    facts: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """No enrolment, and why (kept in the consumer's log; nothing is enrolled)."""

    rule_id: str
    reason: str


def priority(decile: int | None, krs: bool | None) -> int:
    """Lower is served first: poorest deciles first and, within a decile, KRS families first."""
    d = decile if decile is not None and 1 <= decile <= 10 else UNKNOWN_DECILE
    return d * 2 - (1 if krs else 0)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def age_months(birth_date: date, on: date) -> int:
    """Completed months of age on a day."""
    months = (on.year - birth_date.year) * 12 + (on.month - birth_date.month)
    if add_months(birth_date, months) > on:
        months -= 1
    return months


def child_exit_date(birth_date: date, category: str, config: RuleConfig = DEFAULT_CONFIG) -> date:
    """The day an enrolled child ages out of its category."""
    months = config.baduta_age_out_months if category == "baduta_stunting" else config.balita_age_out_months
    return add_months(birth_date, months)


def planned_end(start: date, category: str, config: RuleConfig = DEFAULT_CONFIG) -> date:
    return start + timedelta(days=config.planned_days[category])


@dataclass(frozen=True)
class PersonFacts:
    """What the replica knows of a person when a decision is made (any field may still be unknown)."""

    sex: str | None = None
    birth_date: date | None = None
    alive: bool = True
    moved_out: bool = False
    welfare_decile: int | None = None
    krs: bool | None = None


def _blocked(person: PersonFacts, rule_id: str) -> Refusal | None:
    if not person.alive:
        return Refusal(rule_id, "person_died")
    if person.moved_out:
        return Refusal(rule_id, "person_moved_out")
    return None


def decide_baduta_stunting(
    *,
    person: PersonFacts,
    birth_date: date,
    haz: float,
    severity: str,
    case_id: str,
    today: date,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """A stunted baduta is enrolled unless already too old (then as balita only if configured)."""
    if (blocked := _blocked(person, RULE_BADUTA_STUNTING)) is not None:
        return blocked
    age = age_months(birth_date, today)
    category: Category = "baduta_stunting"
    if age >= config.baduta_age_out_months:
        if not config.continue_as_balita or age >= config.balita_age_out_months:
            return Refusal(RULE_BADUTA_STUNTING, "aged_out")
        category = "balita_stunting"
    return Decision(
        category=category,
        rule_id=RULE_BADUTA_STUNTING,
        rule_version=config.version,
        planned_days=config.planned_days[category],
        priority=priority(person.welfare_decile, person.krs),
        facts={
            "case_id": case_id,
            "haz": haz,
            "severity": severity,
            "birth_date": birth_date.isoformat(),
            "age_months": age,
            "welfare_decile": person.welfare_decile,
            "krs": person.krs,
        },
    )


def decide_pregnancy(
    *,
    person: PersonFacts,
    pregnancy_id: str,
    krs: bool,
    welfare_decile: int | None,
    kek: bool,
    anaemia: str | None,
    expected_delivery: date,
    today: date,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """A pregnancy in a KRS or poor family, or with KEK or anaemia, is a target."""
    if (blocked := _blocked(person, RULE_PREGNANCY)) is not None:
        return blocked
    if person.sex == "L":
        return Refusal(RULE_PREGNANCY, "person_is_male")
    if expected_delivery < today:
        return Refusal(RULE_PREGNANCY, "expected_delivery_passed")
    reasons = []
    if krs:
        reasons.append("krs")
    if welfare_decile is not None and welfare_decile <= config.pregnancy_max_decile:
        reasons.append(f"decile_le_{config.pregnancy_max_decile}")
    if kek:
        reasons.append("kek")
    if anaemia in config.pregnancy_anaemia_levels:
        reasons.append(f"anaemia_{anaemia}")
    if not reasons:
        return Refusal(RULE_PREGNANCY, "no_risk")
    return Decision(
        category="ibu_hamil",
        rule_id=RULE_PREGNANCY,
        rule_version=config.version,
        planned_days=config.planned_days["ibu_hamil"],
        priority=priority(welfare_decile, krs),
        facts={
            "pregnancy_id": pregnancy_id,
            "reasons": reasons,
            "krs": krs,
            "welfare_decile": welfare_decile,
            "kek": kek,
            "anaemia": anaemia,
            "expected_delivery": expected_delivery.isoformat(),
        },
    )


def decide_catin(
    *,
    person: PersonFacts,
    catin_id: str,
    at_risk: bool,
    risks: list[str],
    welfare_decile: int | None,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """A catin screened at risk (KEK, anaemia, underweight...) is a target."""
    if (blocked := _blocked(person, RULE_CATIN)) is not None:
        return blocked
    if not at_risk:
        return Refusal(RULE_CATIN, "no_risk")
    return Decision(
        category="catin",
        rule_id=RULE_CATIN,
        rule_version=config.version,
        planned_days=config.planned_days["catin"],
        priority=priority(welfare_decile, person.krs),
        facts={"catin_id": catin_id, "risks": list(risks), "welfare_decile": welfare_decile},
    )


def decide_after_birth(
    *,
    person: PersonFacts,
    pregnancy_id: str,
    was_target: bool,
    ended_on: date,
    child_person_id: str | None,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """A mother who was a pregnancy target continues as ibu menyusui after a birth (if configured)."""
    if not config.enrol_ibu_menyusui_after_birth:
        return Refusal(RULE_BIRTH, "disabled_by_configuration")
    if (blocked := _blocked(person, RULE_BIRTH)) is not None:
        return blocked
    if not was_target:
        return Refusal(RULE_BIRTH, "mother_was_not_a_target")
    return Decision(
        category="ibu_menyusui",
        rule_id=RULE_BIRTH,
        rule_version=config.version,
        planned_days=config.planned_days["ibu_menyusui"],
        priority=priority(person.welfare_decile, person.krs),
        facts={
            "pregnancy_id": pregnancy_id,
            "birth_on": ended_on.isoformat(),
            "child_person_id": child_person_id,
        },
    )


def decide_after_move(
    *,
    person: PersonFacts,
    category: str,
    planned_end_date: date,
    previous_enrolment_id: str,
    previous_kitchen_id: str,
    previous_rule_id: str | None,
    previous_facts: dict[str, Any],
    today: date,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """Someone who moved out of their kitchen's area continues, where they now live, for the time they had left."""
    if (blocked := _blocked(person, RULE_MOVED)) is not None:
        return blocked
    if category not in config.planned_days:
        return Refusal(RULE_MOVED, "unknown_category")
    remaining = (planned_end_date - today).days
    if remaining <= 0:
        return Refusal(RULE_MOVED, "planned_end_reached")
    if (
        category in ("baduta_stunting", "balita_stunting")
        and person.birth_date is not None
        and today >= child_exit_date(person.birth_date, category, config)
    ):
        return Refusal(RULE_MOVED, "aged_out")
    return Decision(
        category=cast(Category, category),
        rule_id=RULE_MOVED,
        rule_version=config.version,
        planned_days=remaining,
        priority=priority(person.welfare_decile, person.krs),
        # The earlier facts stay (a child's baseline HAZ, the case or pregnancy id) so outcomes carry over.
        facts={
            **previous_facts,
            "continues_enrolment_id": previous_enrolment_id,
            "previous_kitchen_id": previous_kitchen_id,
            "previous_rule_id": previous_rule_id,
            "planned_end_date": planned_end_date.isoformat(),
        },
    )


@dataclass(frozen=True)
class Contradiction:
    field: str
    rule: str
    message: str


def contradictions(category: str, person: PersonFacts, today: date) -> list[Contradiction]:
    """Why the person's known facts rule out a category for a manual enrolment (empty when none do)."""
    found: list[Contradiction] = []
    if not person.alive:
        found.append(Contradiction("body.person_id", "person.died", "the person has died"))
    if person.moved_out:
        found.append(Contradiction("body.person_id", "person.moved_out", "the person moved away"))
    if category in ("ibu_hamil", "ibu_menyusui") and person.sex == "L":
        found.append(
            Contradiction("body.category", f"category.{category}.sex", f"{category} requires a woman")
        )
    if category in ("baduta_stunting", "balita_stunting"):
        if person.birth_date is None:
            found.append(
                Contradiction(
                    "body.person_id", "person.birth_date_unknown", "the child's birth date is unknown"
                )
            )
        else:
            age = age_months(person.birth_date, today)
            limit = 24 if category == "baduta_stunting" else 60
            if age < 0 or age >= limit:
                found.append(
                    Contradiction(
                        "body.category",
                        f"category.{category}.age",
                        f"{category} requires a child under {limit} months (this one is {age})",
                    )
                )
    if (
        category == "catin"
        and person.birth_date is not None
        and age_months(person.birth_date, today) < 12 * 15
    ):
        found.append(Contradiction("body.category", "category.catin.age", "a catin cannot be a child"))
    return found
