"""Pure rules: MKJP, KB status consistency, catin risk, maternal risk (KEK, anaemia), expected delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from registry import rules
from shared import ages
from shared.events.vocab import MKJP_METHODS

Anaemia = Literal["none", "mild", "moderate", "severe"]

# Who can use a method: a woman's body (AKDR/IUD, implant, tubektomi/MOW, suntik, pil, MAL while breastfeeding),
# a man's (vasektomi/MOP); kondom and traditional methods are either partner's.
WOMEN_METHODS: Final = frozenset({"iud", "implant", "mow", "suntik", "pil", "mal"})
MEN_METHODS: Final = frozenset({"mop"})


def is_mkjp(method: str | None) -> bool:
    """Long-term methods (Metode Kontrasepsi Jangka Panjang): IUD, implant, MOW, MOP."""
    return method in MKJP_METHODS


def kb_status_errors(
    *, method: str | None, reason_non_use: str | None, since: date, today: date, sex: str, birth_date: date
) -> list[dict[str, Any]]:
    """A user has a method and no non-use reason; a non-user has a reason; the method fits the person.

    The method must be one the person can use: the woman's methods only for women, MOP only for men (kondom
    and traditional methods are the couple's: BKKBN records them on either partner, often the wife), and only
    from `rules.KB_MIN_AGE` completed years at `since`; `since` lies between the birth and today.
    """
    errors: list[dict[str, Any]] = []
    if method is None and reason_non_use is None:
        errors.append(
            {
                "field": "body.reason_non_use",
                "rule": "kb.reason_required",
                "message": "a non-user needs a reason for non-use",
            }
        )
    if method is not None and reason_non_use is not None:
        errors.append(
            {
                "field": "body.reason_non_use",
                "rule": "kb.reason_for_user",
                "message": "a KB user has no reason for non-use",
            }
        )
    if since > today:
        errors.append(
            {"field": "body.since", "rule": "kb.since_future", "message": "since lies in the future"}
        )
    if since < birth_date:
        errors.append(
            {"field": "body.since", "rule": "kb.since_before_birth", "message": "since lies before the birth"}
        )
    if method in WOMEN_METHODS and sex != "P":
        errors.append(
            {
                "field": "body.method",
                "rule": "kb.method_sex",
                "message": f"{method} is a woman's method (IUD, implant, MOW, suntik, pil, MAL)",
            }
        )
    if method in MEN_METHODS and sex != "L":
        errors.append({"field": "body.method", "rule": "kb.method_sex", "message": "MOP is a man's method"})
    if (
        method is not None
        and since >= birth_date
        and ages.completed_years(birth_date, since) < rules.KB_MIN_AGE
    ):
        errors.append(
            {
                "field": "body.method",
                "rule": "kb.method_age",
                "message": f"a KB method is recorded from {rules.KB_MIN_AGE} completed years of age at `since`",
            }
        )
    return errors


class KbRecord(Protocol):
    """What the placement of a new KB status needs of a recorded one."""

    method: str | None
    mkjp: bool
    since: date
    created_at: datetime


@dataclass(frozen=True)
class KbPlacement:
    """Where a new KB status falls in the person's history."""

    previous: KbRecord | None  # the status in force before the new one's `since`
    current: bool  # the new status is the person's latest (no status recorded with a later `since`)
    first_record: bool  # nothing was recorded of this person before


def place_kb_status(history: Sequence[KbRecord], since: date) -> KbPlacement:
    """Place a new status by its effective date, not by when it was typed.

    `previous` is the latest status effective strictly before `since`: a status recorded again for the same
    `since` corrects that entry (it is not a change from it), and a late entry of an older change is compared
    with what held before it, not with the current status. This is what the event's `previous_method` carries
    for new acceptors (a user whose previous status was none or non-use) and MKJP switchers.
    """
    ordered = sorted(history, key=lambda r: (r.since, r.created_at))
    earlier = [r for r in ordered if r.since < since]
    return KbPlacement(
        previous=earlier[-1] if earlier else None,
        current=all(r.since <= since for r in ordered),
        first_record=not ordered,
    )


def bmi(weight_kg: float | None, height_cm: float | None) -> float | None:
    """Body-mass index rounded to 1 decimal."""
    if weight_kg is None or height_cm is None:
        return None
    return round(weight_kg / (height_cm / 100) ** 2, 1)


def kek(lila_cm: float | None) -> bool:
    """Chronic energy deficiency: upper-arm circumference below 23.5 cm."""
    return lila_cm is not None and lila_cm < rules.KEK_LILA_CM


def pregnancy_anaemia(hb_g_dl: float | None) -> Anaemia | None:
    """Anaemia grade in pregnancy; None when Hb was not measured."""
    if hb_g_dl is None:
        return None
    if hb_g_dl < rules.PREGNANCY_ANAEMIA_SEVERE_HB:
        return "severe"
    if hb_g_dl < rules.PREGNANCY_ANAEMIA_MODERATE_HB:
        return "moderate"
    if hb_g_dl < rules.PREGNANCY_ANAEMIA_HB:
        return "mild"
    return "none"


@dataclass(frozen=True)
class CatinRisk:
    bmi: float | None
    at_risk: bool
    risks: list[str]
    rule_version: str = rules.RULES_VERSION


def catin_risk(
    *,
    sex: str,
    weight_kg: float | None,
    height_cm: float | None,
    lila_cm: float | None,
    hb_g_dl: float | None,
    age_at_marriage: int | None = None,
) -> CatinRisk:
    """Catin screening: underweight (BMI), KEK (LiLA, brides), anaemia (Hb, sex-specific), too young (< 19 at the
    planned wedding)."""
    value = bmi(weight_kg, height_cm)
    risks: list[str] = []
    if value is not None and value < rules.CATIN_UNDERWEIGHT_BMI:
        risks.append("underweight")
    if sex == "P" and kek(lila_cm):
        risks.append("kek")
    limit = rules.CATIN_ANAEMIA_HB_WOMEN if sex == "P" else rules.CATIN_ANAEMIA_HB_MEN
    if hb_g_dl is not None and hb_g_dl < limit:
        risks.append("anaemia")
    if age_at_marriage is not None and age_at_marriage < rules.CATIN_MIN_AGE:
        risks.append("too_young")
    return CatinRisk(value, bool(risks), risks)


def expected_delivery(lmp: date) -> date:
    """Naegele's rule: LMP + 280 days."""
    return lmp + timedelta(days=rules.GESTATION_DAYS)


def pregnancy_errors(
    *, lmp: date | None, expected: date | None, today: date, sex: str, age: int
) -> list[dict[str, Any]]:
    """A pregnancy needs LMP or expected delivery, an LMP not in the future nor too long ago, and a woman."""
    errors: list[dict[str, Any]] = []
    if sex != "P":
        errors.append(
            {
                "field": "body.person_id",
                "rule": "pregnancy.not_a_woman",
                "message": "only a woman can be registered as pregnant",
            }
        )
    elif not 10 <= age <= 55:
        errors.append(
            {
                "field": "body.person_id",
                "rule": "pregnancy.age",
                "message": "mother's age must be 10-55 years",
            }
        )
    if lmp is None and expected is None:
        errors.append(
            {
                "field": "body.lmp",
                "rule": "pregnancy.date_required",
                "message": "give lmp or expected_delivery",
            }
        )
    if lmp is not None:
        if lmp > today:
            errors.append(
                {"field": "body.lmp", "rule": "pregnancy.lmp_future", "message": "LMP lies in the future"}
            )
        elif (today - lmp).days > rules.MAX_PREGNANCY_DAYS:
            errors.append(
                {
                    "field": "body.lmp",
                    "rule": "pregnancy.lmp_too_old",
                    "message": "LMP lies more than 44 weeks back",
                }
            )
    if expected is not None and lmp is None:
        # Without an LMP the expected delivery stands for it (LMP = expected - 280 days): the same window.
        implied = expected - timedelta(days=rules.GESTATION_DAYS)
        if implied > today or (today - implied).days > rules.MAX_PREGNANCY_DAYS:
            errors.append(
                {
                    "field": "body.expected_delivery",
                    "rule": "pregnancy.expected_delivery_out_of_range",
                    "message": "an ongoing pregnancy is expected within 280 days from today and at most "
                    f"{rules.MAX_PREGNANCY_DAYS - rules.GESTATION_DAYS} days back",
                }
            )
    return errors


def pregnancy_began(lmp: date | None, expected: date) -> date:
    """The first day of the pregnancy: the LMP, or the expected delivery - 280 days without it."""
    return lmp if lmp is not None else expected - timedelta(days=rules.GESTATION_DAYS)
