"""Derived indicators of UPPKA groups: pure functions, no I/O, every figure computed, never typed in.

Rule notes: members' KB status is the current one synced from the registry (the registry's events carry no
per-month history to re-derive past months); categories are derived at the end of the month from the
registry's facts; attendance is members present at the monthly meeting over active members, as reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from shared import uppka_reporting
from uppka.groups.domain import is_pus_on, member_category
from uppka.reports.domain import period_end, period_start, reporting_status

INDICATOR_RULE_VERSION = "uppka-indicators-2025.1"


@dataclass(frozen=True)
class MemberFact:
    joined_on: date
    left_on: date | None
    birth_date: date | None
    marital_status: str | None
    pus: bool | None
    kb_method: str | None
    kb_user: bool
    mkjp: bool
    sex: str | None = None


@dataclass(frozen=True)
class ReportFact:
    period: str
    omzet: int
    costs: int
    profit: int
    members_present: int
    active_members: int
    late: bool


@dataclass(frozen=True)
class GroupMonth:
    period: str
    members: int
    members_by_category: dict[str, int]
    kb_users: int
    kb_by_method: dict[str, int]
    mkjp_users: int
    mkjp_share: float | None
    kb_participation: float | None
    attendance_rate: float | None
    reporting_status: str
    omzet: int | None
    profit: int | None
    rule_version: str = INDICATOR_RULE_VERSION


def pus_on(m: MemberFact, on: date) -> bool | None:
    """PUS at a past day: the registry's rule (a married woman of 15-49 completed years) on the person's facts.

    The replica's flag is today's; a woman who turned 50 since was PUS at the end of an earlier month, as
    reporting's member timeline (the join's category, then `category_changed` on her birthday) has it.
    """
    if m.sex is None or m.marital_status is None or m.birth_date is None:
        return m.pus
    return is_pus_on(sex=m.sex, marital_status=m.marital_status, birth_date=m.birth_date, on=on)


def member_during(m: MemberFact, period: str) -> bool:
    """A member at any time in the month: joined by its end, not left before its start."""
    return m.joined_on <= period_end(period) and (m.left_on is None or m.left_on >= period_start(period))


def share(part: int, whole: int) -> float | None:
    """A ratio rounded to four decimals; None (not 0) when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def group_month(
    period: str, members: list[MemberFact], report: ReportFact | None, *, today: date, due_day: int
) -> GroupMonth:
    """Every per-group monthly figure SIGA's UPPKA table asks for."""
    current = [m for m in members if member_during(m, period)]
    end = period_end(period)
    categories = Counter(
        member_category(birth_date=m.birth_date, marital_status=m.marital_status, pus=pus_on(m, end), on=end)
        for m in current
    )
    users = [m for m in current if m.kb_user]
    by_method = Counter(m.kb_method or "unknown" for m in users)
    mkjp = sum(1 for m in users if m.mkjp)
    return GroupMonth(
        period=period,
        members=len(current),
        members_by_category={c: categories.get(c, 0) for c in ("remaja", "pus", "lansia", "lainnya")},
        kb_users=len(users),
        kb_by_method=dict(sorted(by_method.items())),
        mkjp_users=mkjp,
        mkjp_share=share(mkjp, len(users)),
        kb_participation=share(len(users), len(current)),
        attendance_rate=share(report.members_present, report.active_members) if report else None,
        reporting_status=reporting_status(
            period,
            reported=report is not None,
            late=bool(report and report.late),
            today=today,
            due_day=due_day,
        ),
        omzet=report.omzet if report else None,
        profit=report.profit if report else None,
    )


@dataclass(frozen=True)
class TrendPoint:
    period: str
    omzet: int | None
    profit: int | None
    omzet_change: int | None
    profit_change: int | None


@dataclass(frozen=True)
class Trend:
    points: list[TrendPoint]
    direction: str  # up / down / flat / unknown: last reported month against the first reported one
    total_omzet: int
    total_profit: int


def trend(periods: list[str], reports: list[ReportFact]) -> Trend:
    """Omzet and profit month by month (gaps stay None), with month-on-month changes."""
    by_period = {r.period: r for r in reports}
    points: list[TrendPoint] = []
    previous: ReportFact | None = None
    for p in periods:
        r = by_period.get(p)
        points.append(
            TrendPoint(
                period=p,
                omzet=r.omzet if r else None,
                profit=r.profit if r else None,
                omzet_change=r.omzet - previous.omzet if r and previous else None,
                profit_change=r.profit - previous.profit if r and previous else None,
            )
        )
        if r:
            previous = r
    reported = [by_period[p] for p in periods if p in by_period]
    if len(reported) < 2:
        direction = "unknown"
    else:
        delta = reported[-1].omzet - reported[0].omzet
        direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    return Trend(
        points=points,
        direction=direction,
        total_omzet=sum(r.omzet for r in reported),
        total_profit=sum(r.profit for r in reported),
    )


@dataclass(frozen=True)
class GroupPeriodFact:
    """One group as the reporting-rate count sees it: founding, dated statuses, its reports by month."""

    area: str
    started_on: date
    changes: tuple[tuple[date, str], ...]
    reports: dict[str, bool] = field(default_factory=dict)  # YYYY-MM -> late


@dataclass
class Coverage:
    """Groups existing vs reporting (SIGA's figure) and the reporting rate of shared/uppka_reporting.py."""

    existing: int = 0
    reporting: int = 0
    due: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    not_due: int = 0
    reporting_rate: float | None = None
    completeness: float | None = None
    by_area: dict[str, Coverage] = field(default_factory=dict)


def area_of(village_code: str, region: str | None) -> str:
    """The child area of the requested region a village lies in (the next level down)."""
    depth = 1 if not region else region.count(".") + 2
    return ".".join(village_code.split(".")[:depth])


def group_exists_at(g: GroupPeriodFact, day: date) -> bool:
    """Founded by `day` and not dissolved on it."""
    return g.started_on <= day and uppka_reporting.status_on(g.changes, day) != "dissolved"


def coverage(
    groups: list[GroupPeriodFact], months: list[str], *, today: date, due_day: int, by_area: bool = True
) -> Coverage:
    """Reporting rate of an area over one or more months, overall and per sub-area (one rule with reporting).

    Each group-month is due, reported on time / late, missing or not due yet (shared/uppka_reporting.py);
    a quarter or year sums its months' group-months, so the rate never exceeds 1.0. `existing` counts the
    groups existing at the end of the last month, `reporting` those that reported for any of the months.
    """
    out = Coverage()
    end = period_end(months[-1])
    for g in groups:
        rates = [out]
        if by_area:
            rates.append(out.by_area.setdefault(g.area, Coverage()))
        statuses = [
            uppka_reporting.month_status(
                due=uppka_reporting.is_due(g.started_on, g.changes, period_start(m)),
                reported=m in g.reports,
                late=g.reports.get(m, False),
                deadline_has_passed=uppka_reporting.deadline_passed(period_start(m), today, due_day),
            )
            for m in months
        ]
        tally = uppka_reporting.tally(statuses)
        for c in rates:
            c.existing += int(group_exists_at(g, end))
            c.reporting += int(any(m in g.reports for m in months))
            c.due += tally.due
            c.on_time += tally.on_time
            c.late += tally.late
            c.missing += tally.missing
            c.not_due += tally.not_due
    for c in [out, *out.by_area.values()]:
        rate = uppka_reporting.ReportingRate(c.due, c.on_time, c.late, c.missing, c.not_due)
        c.reporting_rate, c.completeness = rate.reporting_rate, rate.completeness
    out.by_area = {
        k: v for k, v in sorted(out.by_area.items()) if v.existing or v.due or v.not_due or v.reporting
    }
    return out


def months_of_period(period: str) -> list[str]:
    """The months of `YYYY-MM`, `YYYY-Qn` or `YYYY`."""
    if "Q" in period:
        year, quarter = int(period[:4]), int(period[-1])
        return periods_between(f"{year:04d}-{3 * quarter - 2:02d}", f"{year:04d}-{3 * quarter:02d}")
    if len(period) == 4:
        return periods_between(f"{period}-01", f"{period}-12")
    return [period]


def periods_between(first: str, last: str) -> list[str]:
    """Every YYYY-MM from first to last inclusive."""
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
