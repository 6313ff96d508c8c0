"""The UPPKA reporting rate, defined once for the uppka service and reporting.

BKKBN's monthly recapitulation (SIGA, "kelompok UPPKA yang ada / yang melapor") asks every group that exists and
is active to report each month. Both services count a month's figure the same way:

- a group is **due** a report for month M when it was founded on or before M's last day and its status on that
  day is `active` (the form is filled for the groups on the books when the month closes; inactive and dissolved
  groups owe nothing);
- the report is due by `REPORT_DUE_DAY` of month M+1 (uppka's configurable `UPPKA_REPORT_DUE_DAY` defaults to
  this constant; reporting's `REPORTING_UPPKA_REPORT_DUE_DAY` too); a report received after it is **late**;
- until that deadline has passed a due group-month is **not_due**, never "missing": the rate of a month whose
  deadline has not passed is None, not 0%;
- `reporting_rate` = reports received on time / reports due, over the group-months whose deadline has passed
  (DHIS2's "reporting rate on time"); `completeness` = reports received at all / reports due (DHIS2's
  "reporting rate"). A quarter or a year sums its months' group-months, so neither can exceed 1.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from shared.ages import add_months

REPORT_DUE_DAY: Final = 10  # the 10th of the following month (BKKBN's monthly recording and reporting cycle)
RULE_VERSION: Final = "uppka-reporting-rate-2026.1"

MonthStatus = Literal["not_required", "not_due", "reported", "late", "missing"]


def month_end(month: date) -> date:
    """The last day of the month containing `month`."""
    return add_months(month.replace(day=1), 1) - timedelta(days=1)


def report_due_date(month: date, due_day: int = REPORT_DUE_DAY) -> date:
    """The last on-time day of month M's report: `due_day` of month M+1."""
    return add_months(month.replace(day=1), 1).replace(day=due_day)


def deadline_passed(month: date, today: date, due_day: int = REPORT_DUE_DAY) -> bool:
    """True once the report of `month` can be missing: today is after its due date."""
    return today > report_due_date(month, due_day)


def last_month_past_deadline(today: date, due_day: int = REPORT_DUE_DAY) -> date:
    """The latest month whose report deadline has passed on `today` (first day of that month)."""
    month = add_months(today.replace(day=1), -1)
    return month if deadline_passed(month, today, due_day) else add_months(month, -1)


def status_on(changes: Sequence[tuple[date, str]], day: date) -> str | None:
    """A group's status on a day from its dated status changes (in any order).

    Before its first recorded change a group has its first status (the status it was registered with).
    """
    if not changes:
        return None
    ordered = sorted(changes, key=lambda c: c[0])
    current = ordered[0][1]
    for changed_on, status in ordered:
        if changed_on > day:
            break
        current = status
    return current


def is_due(started_on: date, changes: Sequence[tuple[date, str]], month: date) -> bool:
    """The group owes a report for `month`: founded by its last day and active on that day."""
    end = month_end(month)
    return started_on <= end and status_on(changes, end) == "active"


def month_status(*, due: bool, reported: bool, late: bool, deadline_has_passed: bool) -> MonthStatus:
    """One group-month: not_required (not due), not_due (deadline ahead), reported (on time), late, missing."""
    if not due:
        return "not_required"
    if not deadline_has_passed:
        return "not_due"
    if reported:
        return "late" if late else "reported"
    return "missing"


@dataclass
class ReportingRate:
    """Reports due, received on time and late, missing, and not yet due, over one or more months."""

    due: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    not_due: int = 0

    @property
    def reporting_rate(self) -> float | None:
        return round(self.on_time / self.due, 6) if self.due else None

    @property
    def completeness(self) -> float | None:
        return round((self.on_time + self.late) / self.due, 6) if self.due else None

    def add(self, status: MonthStatus) -> None:
        if status == "not_required":
            return
        if status == "not_due":
            self.not_due += 1
            return
        self.due += 1
        if status == "reported":
            self.on_time += 1
        elif status == "late":
            self.late += 1
        else:
            self.missing += 1


def tally(statuses: Iterable[MonthStatus]) -> ReportingRate:
    """Sum group-month statuses (a quarter or a year is the sum of its months)."""
    out = ReportingRate()
    for s in statuses:
        out.add(s)
    return out
