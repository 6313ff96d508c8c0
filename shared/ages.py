"""Ages and the programme's age bands, defined once for every service.

BKKBN and Posyandu count a child's age in completed months ("usia 0-23 bulan"), so a baduta is a child who has not
yet completed 24 months and a balita one who has not completed 60 (SSGI's under-five). A month is completed on the
same day of the month as the birth; when that day does not exist (born on the 31st, or 29 February), on the
month's last day. Adult statuses (PUS 15-49, catin age) use completed years on the same anniversary rule.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Final

BADUTA_MONTHS: Final = 24  # a baduta has completed fewer than this many months
BALITA_MONTHS: Final = 60  # a balita has completed fewer than this many months


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def completed_months(birth_date: date, on: date) -> int:
    """Completed months of age on a day (negative before birth)."""
    months = (on.year - birth_date.year) * 12 + (on.month - birth_date.month)
    if add_months(birth_date, months) > on:
        months -= 1
    return months


def completed_years(birth_date: date, on: date) -> int:
    """Completed years of age on a day."""
    return completed_months(birth_date, on) // 12


def is_baduta(birth_date: date, on: date) -> bool:
    """Under two: born, and fewer than 24 completed months on the day."""
    return 0 <= completed_months(birth_date, on) < BADUTA_MONTHS


def is_balita(birth_date: date, on: date) -> bool:
    """Under five: born, and fewer than 60 completed months on the day."""
    return 0 <= completed_months(birth_date, on) < BALITA_MONTHS


def reaches_age_on(birth_date: date, years: int) -> date:
    """The day a person completes `years` years of age."""
    return add_months(birth_date, 12 * years)


def leaves_baduta_on(birth_date: date) -> date:
    """The first day the child is no longer a baduta."""
    return add_months(birth_date, BADUTA_MONTHS)


def leaves_balita_on(birth_date: date) -> date:
    """The first day the child is no longer a balita."""
    return add_months(birth_date, BALITA_MONTHS)


def births_completing(months: int, day: date) -> tuple[date, date]:
    """The birth dates (an inclusive range, for an index range scan) that complete `months` of age on `day`.

    Normally one date: the same day `months` earlier. When `day` is the last of its month, a birthday on a day
    the month lacks completes on its last day (born 29 February: a year on 28 February), so every later day of
    that earlier month completes on `day` too.
    """
    low = add_months(day, -months)
    if day.day != calendar.monthrange(day.year, day.month)[1]:
        return low, low
    return low, low.replace(day=calendar.monthrange(low.year, low.month)[1])
