"""Pure rules of issue 11's programme figures: the UPPKA reporting rate, balita, KRS over target families,
catin, pregnancies, DASHAT coverage and cost per portion. Every expected figure is computed by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from reporting.indicators import disclosure
from reporting.indicators import domain as ind
from reporting.projection import domain as proj

from shared import uppka_reporting as ur

V = "15.71.01.1001"


def _e(d: str, ts: str, patch: dict[str, object], eid: str | None = None) -> dict[str, Any]:
    return {"d": d, "ts": ts, "id": eid or f"{d}{ts}", "p": patch}


def _by_measure(c: dict[str, int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for k, v in c.items():
        _, grain, start, measure = proj.parse_key(k)
        out[(start.isoformat()[:7] + grain, measure)] = v
    return out


# --- the shared reporting-rate rule ----------------------------------------------------------------------


def test_due_dates_and_the_last_month_past_its_deadline() -> None:
    assert ur.report_due_date(date(2026, 1, 1)) == date(2026, 2, 10)
    assert ur.report_due_date(date(2026, 12, 1), 5) == date(2027, 1, 5)
    assert not ur.deadline_passed(date(2026, 1, 1), date(2026, 2, 10))  # the 10th is still on time
    assert ur.deadline_passed(date(2026, 1, 1), date(2026, 2, 11))
    # On 10 March February's report is not due yet: the latest month past its deadline is January.
    assert ur.last_month_past_deadline(date(2026, 3, 10)) == date(2026, 1, 1)
    assert ur.last_month_past_deadline(date(2026, 3, 11)) == date(2026, 2, 1)
    assert ur.last_month_past_deadline(date(2026, 1, 1)) == date(2025, 11, 1)
    assert ur.month_end(date(2024, 2, 1)) == date(2024, 2, 29)


def test_a_group_is_due_when_founded_and_active_at_the_months_end() -> None:
    changes = [(date(2025, 6, 15), "active"), (date(2026, 2, 10), "inactive"), (date(2026, 3, 31), "active")]
    assert not ur.is_due(date(2025, 6, 15), changes, date(2025, 5, 1))  # not founded yet
    assert ur.is_due(date(2025, 6, 15), changes, date(2025, 6, 1))  # founded in the month
    assert ur.is_due(date(2025, 6, 15), changes, date(2026, 1, 1))
    assert not ur.is_due(date(2025, 6, 15), changes, date(2026, 2, 1))  # inactive at February's end
    assert ur.is_due(date(2025, 6, 15), changes, date(2026, 3, 1))  # active again on 31 March
    # A founding date moved earlier than the first recorded status: the first status holds before it.
    assert ur.is_due(date(2025, 1, 1), changes, date(2025, 2, 1))
    rate = ur.tally(["reported", "late", "missing", "not_due", "not_required", "reported"])
    assert (rate.due, rate.on_time, rate.late, rate.missing, rate.not_due) == (4, 2, 1, 1, 1)
    assert (rate.reporting_rate, rate.completeness) == (0.5, 0.75)
    assert ur.tally(["not_due"]).reporting_rate is None


# --- UPPKA groups in the projection ----------------------------------------------------------------------


def _group(
    founded: str | None, registered_on: str, *more: dict[str, Any], kkb: str | None = "k1"
) -> list[dict[str, Any]]:
    reg = _e(
        founded or registered_on,
        "0",
        {"status": "active", "village": V, "kkb": kkb, "founded_on": founded, "registered": True},
        eid="reg",
    )
    return proj.sort_entries([reg, *more])


def test_a_group_counts_from_its_founding_and_only_due_months_reports_count() -> None:
    entries = _group(
        "2025-11-20",
        "2026-03-02",
        _e("2026-02-14", "5", {"status": "inactive"}, eid="s1"),
        _e("2026-01-01", "6", {"reported": "2026-01", "village": V, "late": False}, eid="report:a"),
        _e("2026-02-01", "7", {"reported": "2026-02", "village": V, "late": False}, eid="report:b"),
        _e("2025-12-01", "8", {"reported": "2025-12", "village": V, "late": True}, eid="report:c"),
        _e("2026-01-20", "9", {"contributed": "2026-01-20", "village": V}, eid="contribution:x"),
        _e("2026-01-25", "9", {"contributed": "2026-01-25", "village": V}, eid="contribution:y"),
    )
    c = _by_measure(proj.group_contribution(entries))
    # Founded 20 Nov 2025 (registered only in March 2026): active and existing from November.
    assert c[("2025-11m", "s.uppka.groups_active")] == 1 and c[("2025-11m", "s.uppka.groups_existing")] == 1
    assert c[("2025-11m", "s.uppka.groups_active_kkb")] == 1
    # Inactive from 14 February: no longer active (due), still existing.
    assert c[("2026-02m", "s.uppka.groups_active")] == -1 and ("2026-02m", "s.uppka.groups_existing") not in c
    # December late, January on time; February's report is not counted: the group was not due (inactive).
    assert (
        c[("2025-12m", "f.uppka.due_reports_late")] == 1
        and c[("2026-01m", "f.uppka.due_reports_on_time")] == 1
    )
    assert ("2026-02m", "f.uppka.due_reports_on_time") not in c
    # Groups contributing to DASHAT: once in January although it contributed twice.
    assert c[("2026-01m", "d.uppka.groups_contributing_dashat")] == 1
    assert c[("2026-01q", "d.uppka.groups_contributing_dashat")] == 1


def test_a_group_without_founding_date_counts_from_its_registration() -> None:
    c = _by_measure(proj.group_contribution(_group(None, "2026-03-02", kkb=None)))
    assert c == {("2026-03m", "s.uppka.groups_existing"): 1, ("2026-03m", "s.uppka.groups_active"): 1}


def test_reporting_rate_figures_from_group_months() -> None:
    # A quarter: 3 groups due in each of January and February (deadlines passed), 3 more in March (not yet).
    m = {"w.uppka.due": 6, "w.uppka.expected": 9, "w.uppka.on_time": 4, "w.uppka.late": 1}
    out = ind.uppka_reporting_figures(m)
    assert (out["uppka_groups_due"], out["uppka_reports_on_time"], out["uppka_reports_late"]) == (6, 4, 1)
    assert (out["uppka_reports_missing"], out["uppka_reports_not_due"]) == (1, 3)
    assert out["uppka_reporting_rate"] == round(4 / 6, 6) and out["uppka_reporting_completeness"] == round(
        5 / 6, 6
    )
    assert (out["uppka_reporting_rate_numerator"], out["uppka_reporting_rate_denominator"]) == (4, 6)
    current = ind.uppka_reporting_figures({"w.uppka.expected": 3})
    assert current["uppka_reporting_rate"] is None and current["uppka_reports_not_due"] == 3
    assert current["uppka_reports_missing"] == 0


# --- baduta and balita -----------------------------------------------------------------------------------


def _measured(mid: str, on: str, age_days: int, cls: str, **kw: object) -> dict[str, Any]:
    patch = {
        "measured": True,
        "measurement_id": mid,
        "measured_on": on,
        "age_days": age_days,
        "has_haz": True,
        "haz_flag": False,
        "haz_class": cls,
        "village": V,
        **kw,
    }
    return _e(on, mid, patch, eid=mid)


def test_baduta_ends_on_the_second_birthday_balita_on_the_fifth() -> None:
    # Born 2024-03-15: on 2026-03-14 (729 days) 23 completed months, a baduta; on 2026-03-15 (730 days) not.
    day_before = _by_measure(proj.child_contribution([_measured("a", "2026-03-14", 729, "stunted")]))
    assert day_before[("2026-03m", "d.stunting.measured")] == 1
    assert day_before[("2026-03m", "d.stunting.balita.stunted")] == 1
    birthday = _by_measure(proj.child_contribution([_measured("b", "2026-03-15", 730, "stunted")]))
    assert ("2026-03m", "d.stunting.measured") not in birthday
    assert birthday[("2026-03m", "d.stunting.balita.measured")] == 1
    # Born 2021-03-15: 1825 days on 2026-03-14 (59 months), 1826 on the fifth birthday (60 months).
    assert (
        _by_measure(proj.child_contribution([_measured("c", "2026-03-14", 1825, "normal")]))[
            ("2026-03m", "d.stunting.balita.measured")
        ]
        == 1
    )
    assert proj.child_contribution([_measured("d", "2026-03-15", 1826, "normal")]) == {}


def test_balita_counted_once_per_period_latest_valid_measurement() -> None:
    entries = proj.sort_entries(
        [
            _measured("a", "2026-01-10", 900, "stunted"),
            _measured("b", "2026-02-10", 931, "normal"),
            _measured("c", "2026-02-20", 941, "severely_stunted", haz_flag=True),  # flagged: ignored
        ]
    )
    c = _by_measure(proj.child_contribution(entries))
    assert (
        c[("2026-01q", "d.stunting.balita.measured")] == 1
        and ("2026-01q", "d.stunting.balita.stunted") not in c
    )
    assert c[("2026-01m", "d.stunting.balita.stunted")] == 1 and ("2026-01m", "d.stunting.measured") not in c


def test_balita_and_krs_and_registry_figures_hand_computed() -> None:
    m = {
        "d.stunting.balita.measured": 120,
        "d.stunting.balita.stunted": 30,
        "d.stunting.balita.severe": 6,
        "s.reg.families": 300,
        "s.krs.families": 45,
        "s.krs.target_families": 180,
        "f.reg.catin": 40,
        "f.reg.catin_at_risk": 10,
        "f.reg.pregnancies": 20,
        "f.reg.pregnancies_kek": 3,
        "f.reg.pregnancies_lila_measured": 15,
        "f.reg.pregnancies_hb_measured": 16,
        "f.reg.pregnancies_anaemia": 4,
        "f.reg.pregnancies_anaemia.mild": 3,
        "f.reg.pregnancies_anaemia.severe": 1,
    }
    out = ind.compute(m)
    assert (out["balita_stunting_prevalence"], out["balita_severe_stunting_prevalence"]) == (0.25, 0.05)
    assert (out["krs_share"], out["krs_share_denominator"], out["target_families"]) == (0.25, 180, 180)
    assert (out["catin_screened"], out["catin_at_risk"], out["catin_at_risk_share"]) == (40, 10, 0.25)
    assert (out["pregnancies_kek_share"], out["pregnancies_anaemia_share"]) == (0.2, 0.25)  # 3/15, 4/16
    assert (out["pregnancies_anaemia_mild"], out["pregnancies_anaemia_moderate"]) == (3, 0)
    assert "pregnancies_kek_share" in ind.small_numbers(out)  # 15 pregnancies with LiLA: small n


def test_uppka_programme_figures() -> None:
    m = {
        "f.uppka.activities": 3,
        "f.uppka.activities.socialisation": 2,
        "f.uppka.activities.pek_stunting": 1,
        "f.uppka.activity_attendance.socialisation": 45,
        "s.uppka.businesses": 7,
        "s.uppka.businesses_supplying_dashat": 2,
        "f.uppka.businesses": 1,
        "d.uppka.groups_contributing_dashat": 2,
    }
    out = ind.compute(m)
    assert (
        out["uppka_activities"],
        out["uppka_activities_socialisation"],
        out["uppka_activities_orientation"],
    ) == (
        3,
        2,
        0,
    )
    assert out["uppka_activity_attendance_socialisation"] == 45
    assert (
        out["uppka_businesses"],
        out["uppka_businesses_supplying_dashat"],
        out["uppka_businesses_new"],
    ) == (
        7,
        2,
        1,
    )
    assert out["uppka_groups_contributing_dashat"] == 2


def test_dashat_coverage_and_cost_per_portion_over_the_same_kitchens() -> None:
    eligible = {
        "s.reg.catin_target": 4,
        "s.reg.pregnant": 10,
        "s.reg.breastfeeding": 6,
        "s.stunting.open_cases": 20,
    }
    # Kitchen A: 900,000 for 60 portions; B: 300,000 and no portions (left out); C: 30 portions, nothing spent.
    out = ind.dashat_kitchen_figures(30, eligible, [(900_000, 60), (300_000, 0), (0, 30)])
    assert (out["dashat_eligible_targets"], out["dashat_coverage"]) == (40, 0.75)  # 30 / (4 + 10 + 6 + 20)
    assert (out["dashat_cost_per_portion"], out["dashat_cost_per_portion_denominator"]) == (15_000.0, 60)
    assert ind.dashat_kitchen_figures(0, {}, [])["dashat_coverage"] is None


def test_new_figures_are_catalogued_and_suppressed_for_the_public() -> None:
    names = {i.name for i in ind.CATALOGUE}
    for name in (
        "balita_measured",
        "balita_stunting_prevalence",
        "uppka_reporting_rate",
        "uppka_reports_late",
        "uppka_groups_due",
        "dashat_coverage",
        "catin_at_risk_share",
        "target_families",
        "pregnancies_anaemia",
    ):
        assert name in names and ind.BY_NAME[name].label_id
    values = ind.compute({"d.stunting.balita.measured": 3, "d.stunting.balita.stunted": 1, "w.uppka.due": 30})
    out = disclosure.protect(values)
    assert out["balita_measured"] is None and out["balita_stunting_prevalence"] is None
    assert out["balita_stunting_prevalence_denominator"] is None
    assert out["uppka_groups_due"] == 30 and out["uppka_reporting_rate"] == 0.0
    assert "balita_stunting_prevalence" in ind.definitions_markdown()


@pytest.mark.parametrize("lang", ["en", "id"])
def test_labels_of_new_figures(lang: str) -> None:
    assert ind.label("dashat_coverage", lang) == ("Cakupan DASHAT" if lang == "id" else "dashat_coverage")
