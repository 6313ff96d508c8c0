"""Pure rules of reports and the derived indicators."""

from __future__ import annotations

from datetime import date

import pytest
from uppka.indicators import domain as ind
from uppka.reports import domain as rep
from uppka.targets.domain import progress

from shared.errors import ValidationFailed


@pytest.mark.parametrize(
    ("period", "submitted", "due_day", "late"),
    [
        ("2025-01", date(2025, 1, 31), 10, False),
        ("2025-01", date(2025, 2, 10), 10, False),
        ("2025-01", date(2025, 2, 11), 10, True),
        ("2024-12", date(2025, 1, 10), 10, False),  # December's report is due in January of the next year
        ("2024-12", date(2025, 1, 11), 10, True),
        ("2025-01", date(2025, 2, 6), 5, True),  # the due day is configurable
    ],
)
def test_lateness(period: str, submitted: date, due_day: int, late: bool) -> None:
    assert rep.is_late(period, submitted, due_day) is late


def test_period_helpers() -> None:
    assert rep.period_end("2024-02") == date(2024, 2, 29)
    assert rep.period_end("2025-12") == date(2025, 12, 31)
    assert rep.due_date("2025-12", 10) == date(2026, 1, 10)
    assert rep.period_of(date(2025, 3, 31)) == "2025-03"
    assert ind.periods_between("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert ind.periods_between("2025-02", "2025-01") == []


def test_future_period_refused_current_allowed() -> None:
    rep.check_period("2025-06", date(2025, 6, 1))
    with pytest.raises(ValidationFailed) as exc:
        rep.check_period("2025-07", date(2025, 6, 30))
    assert exc.value.rule == "report.future_period"


def test_profit_and_figures() -> None:
    assert rep.profit(1_000, 300) == 700 and rep.profit(100, 300) == -200
    rep.check_figures(members_present=5, active_members=5)
    with pytest.raises(ValidationFailed):
        rep.check_figures(members_present=6, active_members=5)


@pytest.mark.parametrize(
    ("reported", "late", "today", "status"),
    [
        (True, False, date(2025, 3, 1), "reported"),
        (True, True, date(2025, 3, 1), "late"),
        (False, False, date(2025, 2, 10), "not_due"),
        (False, False, date(2025, 2, 11), "missing"),
    ],
)
def test_reporting_status(reported: bool, late: bool, today: date, status: str) -> None:
    assert rep.reporting_status("2025-01", reported=reported, late=late, today=today, due_day=10) == status


def _m(
    joined: date = date(2024, 1, 1),
    left: date | None = None,
    *,
    birth: date = date(1990, 1, 1),
    marital: str = "kawin",
    pus: bool = True,
    method: str | None = "implant",
) -> ind.MemberFact:
    return ind.MemberFact(
        joined_on=joined,
        left_on=left,
        birth_date=birth,
        marital_status=marital,
        pus=pus,
        kb_method=method,
        kb_user=method is not None,
        mkjp=method in {"iud", "implant", "mow", "mop"},
    )


def test_group_month_indicators() -> None:
    members = [
        _m(method="implant"),
        _m(method="iud"),
        _m(method="pil"),
        _m(method=None, birth=date(2008, 1, 1), marital="belum_kawin", pus=False),  # remaja
        _m(method=None, birth=date(1950, 1, 1), pus=False),  # lansia
        _m(joined=date(2025, 2, 1)),  # joined after January: not counted
        _m(left=date(2024, 12, 31)),  # left before January: not counted
        _m(left=date(2025, 1, 15), method="suntik"),  # left during January: counted
    ]
    report = ind.ReportFact("2025-01", 5_000_000, 3_000_000, 2_000_000, 4, 5, late=False)
    out = ind.group_month("2025-01", members, report, today=date(2025, 3, 1), due_day=10)
    assert out.members == 6
    assert out.members_by_category == {"remaja": 1, "pus": 4, "lansia": 1, "lainnya": 0}
    assert out.kb_users == 4 and out.kb_by_method == {"implant": 1, "iud": 1, "pil": 1, "suntik": 1}
    assert out.mkjp_users == 2 and out.mkjp_share == 0.5
    assert out.kb_participation == round(4 / 6, 4)
    assert out.attendance_rate == 0.8 and out.reporting_status == "reported"
    assert (out.omzet, out.profit) == (5_000_000, 2_000_000)


def test_group_month_without_members_or_report() -> None:
    out = ind.group_month("2025-01", [], None, today=date(2025, 3, 1), due_day=10)
    assert out.members == 0 and out.mkjp_share is None and out.attendance_rate is None
    assert out.reporting_status == "missing" and out.omzet is None


def test_trend_with_gap() -> None:
    reports = [
        ind.ReportFact("2025-01", 100, 80, 20, 1, 1, False),
        ind.ReportFact("2025-03", 160, 100, 60, 1, 1, False),
    ]
    t = ind.trend(["2025-01", "2025-02", "2025-03"], reports)
    assert [p.omzet for p in t.points] == [100, None, 160]
    assert (
        t.points[2].omzet_change == 60
        and t.points[2].profit_change == 40
        and t.points[0].omzet_change is None
    )
    assert t.direction == "up" and t.total_omzet == 260 and t.total_profit == 80
    assert ind.trend(["2025-01"], reports[:1]).direction == "unknown"
    down = [reports[1], ind.ReportFact("2025-04", 10, 0, 10, 1, 1, False)]
    assert ind.trend(["2025-03", "2025-04"], down).direction == "down"


def test_reporting_rate_per_month_quarter_and_not_due() -> None:
    g = ind.GroupPeriodFact
    active = ((date(2024, 1, 1), "active"),)
    groups = [
        g("15.71.01", date(2024, 1, 1), active, {"2025-01": False, "2025-02": False, "2025-03": False}),
        g("15.71.01", date(2024, 1, 1), active, {"2025-01": True}),  # January late, then nothing
        g("15.71.02", date(2024, 1, 1), active, {}),  # never reports
        g("15.71.02", date(2025, 2, 20), ((date(2025, 2, 20), "active"),), {"2025-02": False}),  # founded Feb
        # dissolved on 20 January: owes nothing from January on (not active at the month's end)
        g("15.71.02", date(2024, 1, 1), ((date(2024, 1, 1), "active"), (date(2025, 1, 20), "dissolved")), {}),
        # inactive from 15 Feb, active again from 3 March: owes January and March, not February
        g(
            "15.71.02",
            date(2024, 1, 1),
            ((date(2024, 1, 1), "active"), (date(2025, 2, 15), "inactive"), (date(2025, 3, 3), "active")),
            {"2025-02": False},
        ),
    ]
    jan = ind.coverage(groups, ["2025-01"], today=date(2025, 5, 1), due_day=10)
    # Due in January: groups 1, 2, 3, 6 (4 not founded, 5 dissolved); on time 1, late 2, missing 3 and 6.
    assert (jan.due, jan.on_time, jan.late, jan.missing, jan.not_due) == (4, 1, 1, 2, 0)
    assert (jan.reporting_rate, jan.completeness) == (0.25, 0.5)
    assert (jan.existing, jan.reporting) == (4, 2)  # 4 not founded yet, 5 dissolved; 1 and 2 reported
    # Quarter: due Jan 4 + Feb 4 (1, 2, 3, 4) + Mar 5 (1, 2, 3, 4, 6) = 13 group-months; on time: 1 x3 and 4's
    # February = 4; late: 2's January = 1 (6's February report was not due: inactive at the month's end).
    q1 = ind.coverage(groups, ind.months_of_period("2025-Q1"), today=date(2025, 5, 1), due_day=10)
    assert (q1.due, q1.on_time, q1.late, q1.missing, q1.not_due) == (13, 4, 1, 8, 0)
    assert q1.reporting_rate == round(4 / 13, 6) and q1.completeness == round(5 / 13, 6)
    assert q1.by_area["15.71.01"].due == 6 and q1.by_area["15.71.01"].reporting_rate == 0.5  # 1's three
    # On 5 April March's report is not due yet (deadline 10 April): 5 group-months not_due, never missing.
    early = ind.coverage(groups, ind.months_of_period("2025-Q1"), today=date(2025, 4, 5), due_day=10)
    assert (early.due, early.on_time, early.not_due) == (8, 3, 5)
    mar = ind.coverage(groups, ["2025-03"], today=date(2025, 4, 10), due_day=10)
    assert (mar.due, mar.not_due, mar.reporting_rate, mar.missing) == (0, 5, None, 0)
    assert ind.coverage([], ["2025-01"], today=date(2025, 3, 1), due_day=10).reporting_rate is None


def test_target_progress() -> None:
    p = progress(1542, 771)
    assert p.progress_pct == 50.0 and not p.reached
    assert progress(10, 12).reached and progress(0, 3).progress_pct is None
