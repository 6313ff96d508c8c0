"""Pure rules of the daily age sweep: which birthdays can change a stored status, and the birth dates to scan.

The registry derives PUS (a married woman of 15-49 completed years) and the KRS evaluation (a target family has
a PUS wife, a pregnancy or a balita; "4 Terlalu" wife under 20 or from 35) from ages. Those change on birthdays,
not only on writes, so once a day the sweep re-evaluates exactly the people who complete one of these ages that
day, and their families. Ages are completed months/years of shared/ages (the same anniversary rule everywhere).

A catin's "too young" (under 19, the minimum marriage age of UU 16/2019) is judged at the planned marriage date
(health/domain.py), which does not move with time: it needs no sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from registry import rules
from shared import ages

Who = Literal["wife", "child"]


@dataclass(frozen=True)
class Threshold:
    """An age (in completed months) at which a stored status may change, and whom it concerns."""

    months: int
    who: Who
    why: str


THRESHOLDS: Final = (
    Threshold(12 * rules.PUS_MIN_AGE, "wife", "enters PUS"),
    Threshold(12 * rules.WIFE_TOO_YOUNG_BELOW, "wife", "KRS: no longer too young"),
    Threshold(12 * rules.WIFE_TOO_OLD_FROM, "wife", "KRS: too old"),
    Threshold(12 * (rules.PUS_MAX_AGE + 1), "wife", "leaves PUS"),
    Threshold(ages.BALITA_MONTHS, "child", "KRS: no longer a balita"),
)
# The ages at which PUS itself changes (the others only touch the family's KRS).
PUS_MONTHS: Final = frozenset({12 * rules.PUS_MIN_AGE, 12 * (rules.PUS_MAX_AGE + 1)})
CHILD_RELATIONS: Final = frozenset({"anak", "cucu"})  # the children evaluate_krs looks at


def birth_window(months: int, day: date) -> tuple[date, date]:
    """The birth dates that complete `months` on `day` (an index range scan): shared/ages' rule."""
    return ages.births_completing(months, day)


def completes_on(birth_date: date, months: int, day: date) -> bool:
    """The exact check behind `birth_window`: the person completes `months` of age on `day`."""
    return ages.add_months(birth_date, months) == day


def crossed(birth_date: date, day: date, who: Who) -> list[Threshold]:
    """The thresholds a person of this kind completes on `day`."""
    return [t for t in THRESHOLDS if t.who == who and completes_on(birth_date, t.months, day)]
