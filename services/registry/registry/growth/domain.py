"""Pure rules: measurement plausibility, z-scores for a child, and the stunting-case decisions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol, TypeVar

from registry import rules
from registry.anthropometry.domain import MAX_AGE_DAYS, Score, age_in_days, score_one
from shared import ages

Severity = Literal["stunted", "severely_stunted"]


def measurement_errors(
    *,
    birth_date: date,
    measured_on: date,
    today: date,
    weight_kg: float | None,
    lenhei_cm: float | None,
    position: str | None,
    prefix: str = "body",
) -> list[dict[str, Any]]:
    """Hard rules: a measurement lies between birth and 60 months and today, with physiological values."""
    errors: list[dict[str, Any]] = []
    days = age_in_days(birth_date, measured_on)
    if days < 0:
        errors.append(
            {
                "field": f"{prefix}.measured_on",
                "rule": "measurement.before_birth",
                "message": "measured before the child was born",
            }
        )
    elif days > MAX_AGE_DAYS:
        errors.append(
            {
                "field": f"{prefix}.measured_on",
                "rule": "measurement.over_60_months",
                "message": "the child was 60 months or older",
            }
        )
    if measured_on > today:
        errors.append(
            {
                "field": f"{prefix}.measured_on",
                "rule": "measurement.future",
                "message": "measurement date lies in the future",
            }
        )
    if weight_kg is None and lenhei_cm is None:
        errors.append(
            {
                "field": f"{prefix}.weight_kg",
                "rule": "measurement.empty",
                "message": "give a weight, a length/height or both",
            }
        )
    lo, hi = rules.CHILD_WEIGHT_KG
    if weight_kg is not None and not lo <= weight_kg <= hi:
        errors.append(
            {
                "field": f"{prefix}.weight_kg",
                "rule": "measurement.weight_range",
                "message": f"weight must be {lo}-{hi} kg",
            }
        )
    lo, hi = rules.CHILD_LENHEI_CM
    if lenhei_cm is not None and not lo <= lenhei_cm <= hi:
        errors.append(
            {
                "field": f"{prefix}.lenhei_cm",
                "rule": "measurement.length_range",
                "message": f"length/height must be {lo}-{hi} cm",
            }
        )
    if lenhei_cm is not None and position is None:
        errors.append(
            {
                "field": f"{prefix}.position",
                "rule": "measurement.position_required",
                "message": "say whether the child lay (l) or stood (h)",
            }
        )
    return errors


def score_child(
    *,
    sex: str,
    age_days: int,
    weight_kg: float | None,
    lenhei_cm: float | None,
    position: str | None,
    oedema: bool,
) -> Score:
    """WHO z-scores for one child (sex L/P)."""
    return score_one(1 if sex == "L" else 2, age_days, weight_kg, lenhei_cm, position, oedema)


def stunting_severity(
    haz: float | None, flagged: bool, birth_date: date, measured_on: date
) -> Severity | None:
    """Severity when this measurement counts as baduta stunting (non-flagged HAZ < -2, under 24 months).

    Baduta is counted in completed months from the birth date to the measurement date (shared/ages, the one
    definition of every service); the z-score itself keeps WHO's age in days.
    """
    if haz is None or flagged or not ages.is_baduta(birth_date, measured_on) or haz >= rules.STUNTING_HAZ:
        return None
    return "severely_stunted" if haz < rules.SEVERE_STUNTING_HAZ else "stunted"


def counts_as_not_stunted(haz: float | None, flagged: bool) -> bool:
    """A usable measurement that is not stunted (resolves an open case at any age under 60 months)."""
    return haz is not None and not flagged and haz >= rules.STUNTING_HAZ


@dataclass(frozen=True)
class CaseView:
    """What the decisions need to know about an open case."""

    measurement_id: object
    measured_on: date


CaseDecision = Literal["open", "resolve", "none"]


def decide_on_measurement(
    *, severity: Severity | None, not_stunted: bool, measured_on: date, open_case: CaseView | None
) -> CaseDecision:
    """A new measurement opens a case (no open one), resolves the open one (later and not stunted), or neither."""
    if severity is not None and open_case is None:
        return "open"
    if not_stunted and open_case is not None and measured_on >= open_case.measured_on:
        return "resolve"
    return "none"


CorrectionDecision = Literal["repoint", "retract", "none"]


def decide_on_correction(*, caused_case: bool, new_severity: Severity | None) -> CorrectionDecision:
    """When the measurement that caused a case is corrected: keep the case on the new values, or retract it."""
    if not caused_case:
        return "none"
    return "repoint" if new_severity is not None else "retract"


class Corrected(Protocol):
    """A measurement as far as its correction chain goes."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def corrects_measurement_id(self) -> uuid.UUID | None: ...


M = TypeVar("M", bound=Corrected)


def correction_chain(measurements: Sequence[M], measurement_id: uuid.UUID) -> list[M]:
    """The measurement, what it corrected and what corrected it, from the first recording to the last correction.

    A correction is a new measurement naming the one it replaces (`corrects_measurement_id`); the replaced one
    stays as a tombstone. Each measurement is corrected at most once, so the chain is a line.
    """
    by_id = {m.id: m for m in measurements}
    corrected_by = {m.corrects_measurement_id: m for m in measurements if m.corrects_measurement_id}
    first = by_id[measurement_id]
    while first.corrects_measurement_id is not None and first.corrects_measurement_id in by_id:
        first = by_id[first.corrects_measurement_id]
    chain = [first]
    while chain[-1].id in corrected_by and len(chain) <= len(measurements):
        chain.append(corrected_by[chain[-1].id])
    return chain
