"""Pure rules of monthly reports: periods, lateness (configurable due day), derived profit."""

from __future__ import annotations

from datetime import date

from shared import uppka_reporting
from shared.errors import ValidationFailed


def period_start(period: str) -> date:
    return date(int(period[:4]), int(period[5:7]), 1)


def next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def period_end(period: str) -> date:
    return date.fromordinal(next_month(period_start(period)).toordinal() - 1)


def period_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def due_date(period: str, due_day: int) -> date:
    """The last on-time day: `due_day` of the month after the period (the rule reporting shares)."""
    return uppka_reporting.report_due_date(period_start(period), due_day)


def is_late(period: str, submitted_on: date, due_day: int) -> bool:
    """Late when submitted after the due day of the following month."""
    return submitted_on > due_date(period, due_day)


def check_period(period: str, today: date, *, field: str = "body.period") -> None:
    """A report covers a month that has started: no future periods."""
    if period_start(period) > today:
        raise ValidationFailed("the period is in the future", field=field, rule="report.future_period")


def profit(omzet: int, costs: int) -> int:
    """Profit is derived, never typed: revenue minus costs (may be negative, a loss)."""
    return omzet - costs


def check_figures(*, members_present: int, active_members: int) -> None:
    if members_present > active_members:
        raise ValidationFailed(
            "members_present exceeds active_members",
            field="body.members_present",
            rule="report.present_exceeds_active",
        )


def reporting_status(period: str, *, reported: bool, late: bool, today: date, due_day: int) -> str:
    """reported / late / missing; a month whose report is not due yet and absent is "not_due"."""
    if reported:
        return "late" if late else "reported"
    return "missing" if today > due_date(period, due_day) else "not_due"
