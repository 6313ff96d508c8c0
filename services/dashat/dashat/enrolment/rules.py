"""Automatic enrolment rules: versioned configuration and pure decisions (no I/O, no clock).

`RuleConfig` is one rule version. The code default (`DEFAULT_CONFIG`, RULES_VERSION) is the seed version;
officers add versions without a deploy (`/v1/rule-versions`, stored in `rule_version`, immutable), each effective
from a date and for a region prefix, and the decision picks the one that applies (see `dashat.ruleversions`).
Every enrolment, waitlist entry and rule-driven exit stores the version that decided it, so old decisions stay
explainable by the rules that made them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any, Literal, cast

from shared.ages import BADUTA_MONTHS, BALITA_MONTHS, add_months, completed_months, completed_years

RULES_VERSION = "dashat-enrolment-2026.1"

Category = Literal["catin", "ibu_hamil", "ibu_menyusui", "baduta_stunting", "balita_stunting"]

RULE_BADUTA_STUNTING = "baduta_stunting_detected"
RULE_PREGNANCY = "pregnancy_at_risk"
RULE_CATIN = "catin_at_risk"
RULE_BIRTH = "birth_breastfeeding"
RULE_MANUAL = "manual"
RULE_MOVED = "moved_continuation"
RULE_REGISTRY_BREASTFEEDING = "registry_breastfeeding"
RULE_RECOVERY_WITHDRAWN = "recovery_withdrawn"

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
    # Baduta = under 24 completed months (shared.ages): the child leaves at this age unless the balita rule
    # keeps stunted children on, until the balita limit (60 completed months).
    baduta_age_out_months: int = BADUTA_MONTHS
    balita_age_out_months: int = BALITA_MONTHS
    continue_as_balita: bool = False
    # Recovery needs confirmation: one normal HAZ may be measurement noise (a length read 1 cm too long moves a
    # 9-month-old's HAZ by ~0.4 SD), so a stunted child leaves as `recovered` only after this many consecutive
    # usable non-stunted measurements spanning at least this many days; otherwise the planned duration runs
    # out (`completed`). 30 days: Posyandu weighs and measures monthly, so two normal months in a row.
    recovery_confirmations: int = 2
    recovery_min_interval_days: int = 30
    # Breastfeeding mothers the registry knows (a baby under this many completed months in her family, or a
    # birth recorded) are targets, not only DASHAT pregnancies; the issue asks for exclusive breastfeeding's
    # six months (WHO), and the mother leaves when the baby reaches it.
    enrol_registry_ibu_menyusui: bool = True
    ibu_menyusui_baby_months: int = 6

    def to_json(self) -> dict[str, Any]:
        """The configuration as stored in a rule version (everything but the version id)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "version":
                continue
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if isinstance(value, frozenset) else value
        return out

    @classmethod
    def from_json(cls, version: str, data: dict[str, Any]) -> RuleConfig:
        """A stored version; a field it does not name (added to the code later) keeps the code default."""
        known = {f.name for f in fields(cls)} - {"version"}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        if "pregnancy_anaemia_levels" in values:
            values["pregnancy_anaemia_levels"] = frozenset(values["pregnancy_anaemia_levels"])
        if "planned_days" in values:
            values["planned_days"] = {**DEFAULT_PLANNED_DAYS, **values["planned_days"]}
        return cls(version=version, **values)


DEFAULT_CONFIG = RuleConfig()
DEFAULT_PLANNED_DAYS: dict[str, int] = dict(DEFAULT_CONFIG.planned_days)


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
    age = completed_months(birth_date, today)
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
    today: date | None = None,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """A mother who was a pregnancy target continues as ibu menyusui after a birth (if configured)."""
    if not config.enrol_ibu_menyusui_after_birth:
        return Refusal(RULE_BIRTH, "disabled_by_configuration")
    if (blocked := _blocked(person, RULE_BIRTH)) is not None:
        return blocked
    if not was_target:
        return Refusal(RULE_BIRTH, "mother_was_not_a_target")
    # She leaves when the baby reaches the breastfeeding age limit, even if planned days remain.
    left = (baby_leaves_on(ended_on, config) - today).days if today is not None else None
    if left is not None and left <= 0:
        return Refusal(RULE_BIRTH, "baby_aged_out")
    planned = config.planned_days["ibu_menyusui"]
    return Decision(
        category="ibu_menyusui",
        rule_id=RULE_BIRTH,
        rule_version=config.version,
        planned_days=min(planned, left) if left is not None else planned,
        priority=priority(person.welfare_decile, person.krs),
        facts={
            "pregnancy_id": pregnancy_id,
            "birth_on": ended_on.isoformat(),
            "child_person_id": child_person_id,
            "child_birth_date": ended_on.isoformat(),
        },
    )


def baby_leaves_on(baby_birth_date: date, config: RuleConfig = DEFAULT_CONFIG) -> date:
    """The day a baby reaches the breastfeeding age limit: its mother's ibu_menyusui enrolment ends."""
    return add_months(baby_birth_date, config.ibu_menyusui_baby_months)


def is_baby(birth_date: date | None, today: date, config: RuleConfig = DEFAULT_CONFIG) -> bool:
    """Born, and younger than the breastfeeding age limit (completed months, shared.ages)."""
    return (
        birth_date is not None and 0 <= completed_months(birth_date, today) < config.ibu_menyusui_baby_months
    )


def decide_registry_breastfeeding(
    *,
    mother: PersonFacts,
    baby_person_id: str | None,
    baby_birth_date: date,
    evidence: str,
    today: date,
    config: RuleConfig = DEFAULT_CONFIG,
) -> Decision | Refusal:
    """A woman the registry knows with a baby under the age limit is a target until the baby reaches it."""
    if not config.enrol_registry_ibu_menyusui:
        return Refusal(RULE_REGISTRY_BREASTFEEDING, "disabled_by_configuration")
    if (blocked := _blocked(mother, RULE_REGISTRY_BREASTFEEDING)) is not None:
        return blocked
    if mother.sex == "L":
        return Refusal(RULE_REGISTRY_BREASTFEEDING, "person_is_male")
    if not is_baby(baby_birth_date, today, config):
        return Refusal(RULE_REGISTRY_BREASTFEEDING, "baby_not_under_age_limit")
    return Decision(
        category="ibu_menyusui",
        rule_id=RULE_REGISTRY_BREASTFEEDING,
        rule_version=config.version,
        planned_days=(baby_leaves_on(baby_birth_date, config) - today).days,
        priority=priority(mother.welfare_decile, mother.krs),
        facts={
            "evidence": evidence,
            "child_person_id": baby_person_id,
            "child_birth_date": baby_birth_date.isoformat(),
            "welfare_decile": mother.welfare_decile,
            "krs": mother.krs,
        },
    )


def breastfeeding_exit_date(facts: dict[str, Any], config: RuleConfig = DEFAULT_CONFIG) -> date | None:
    """When an ibu_menyusui enrolment ages out with the baby (None when the baby's birth is not known)."""
    raw = facts.get("child_birth_date") or facts.get("birth_on")
    if not isinstance(raw, str):
        return None
    try:
        return baby_leaves_on(date.fromisoformat(raw), config)
    except ValueError:
        return None


# WHO 2006: a length/height-for-age z-score below -2 SD is stunted (Permenkes 2/2020).
STUNTED_HAZ = -2.0


@dataclass(frozen=True)
class HazReading:
    """One measurement of a child as the recovery rule sees it."""

    measured_on: date
    haz: float | None
    flagged: bool


def recovery_confirmed_on(readings: list[HazReading], config: RuleConfig = DEFAULT_CONFIG) -> date | None:
    """The day a stunted child's recovery is confirmed, or None (see RuleConfig.recovery_confirmations).

    Readings in date order: a usable (scored, not flagged as implausible) non-stunted one extends the run of
    normal readings; a usable stunted one resets it; an unusable one neither confirms nor resets (it says
    nothing about growth). Confirmed on the reading that gives the run enough readings over enough days.
    """
    run: list[date] = []
    for r in sorted(readings, key=lambda r: r.measured_on):
        if r.haz is None or r.flagged:
            continue
        if r.haz < STUNTED_HAZ:
            run = []
            continue
        run.append(r.measured_on)
        if (
            len(run) >= config.recovery_confirmations
            and (run[-1] - run[0]).days >= config.recovery_min_interval_days
        ):
            return r.measured_on
    return None


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
            age = completed_months(person.birth_date, today)
            limit = BADUTA_MONTHS if category == "baduta_stunting" else BALITA_MONTHS
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
        and completed_years(person.birth_date, today) < 15
    ):
        found.append(Contradiction("body.category", "category.catin.age", "a catin cannot be a child"))
    return found
