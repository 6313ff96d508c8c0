"""Pure rules of the reporting service: periods, indicator formulas, suppression, and projection folding."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest
from reporting.indicators import domain as ind
from reporting.projection import domain as proj

from shared.errors import ValidationFailed

# --- periods ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "grain", "start", "last"),
    [
        ("2026-03", "m", date(2026, 3, 1), date(2026, 3, 1)),
        ("2026-Q1", "q", date(2026, 1, 1), date(2026, 3, 1)),
        ("2026-Q4", "q", date(2026, 10, 1), date(2026, 12, 1)),
        ("2026", "y", date(2026, 1, 1), date(2026, 12, 1)),
    ],
)
def test_parse_period(text: str, grain: str, start: date, last: date) -> None:
    p = ind.parse_period(text)
    assert (p.grain, p.start, p.last, p.label) == (grain, start, last, text)


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "26-01", "2026-1", "", "2026-03-01"])
def test_bad_period_names_the_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        ind.parse_period(text)
    assert exc.value.field == "query.period"


def test_periods_between_and_end_day() -> None:
    ps = ind.periods_between(ind.parse_period("2025-11"), ind.parse_period("2026-02"))
    assert [p.label for p in ps] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert ps[-1].end_day == date(2026, 2, 28)
    assert [
        p.label for p in ind.periods_between(ind.parse_period("2025-Q4"), ind.parse_period("2026-Q1"))
    ] == [
        "2025-Q4",
        "2026-Q1",
    ]
    with pytest.raises(ValidationFailed):
        ind.periods_between(ind.parse_period("2026-01"), ind.parse_period("2026"))
    with pytest.raises(ValidationFailed):
        ind.periods_between(ind.parse_period("2026-03"), ind.parse_period("2026-01"))


# --- indicator formulas ----------------------------------------------------------------------------------


def test_family_planning_formulas_hand_computed() -> None:
    # 40 PUS; 26 users (IUD 4, implant 6, MOW 1, suntik 10, pil 5); non-users IAT 5, TIAL 3, hamil 6.
    m = {
        "s.kb.pus": 40,
        "s.kb.users": 26,
        "s.kb.mkjp_users": 11,
        "s.kb.method.iud": 4,
        "s.kb.method.implant": 6,
        "s.kb.method.mow": 1,
        "s.kb.method.suntik": 10,
        "s.kb.method.pil": 5,
        "s.kb.nonuse.iat": 5,
        "s.kb.nonuse.tial": 3,
        "s.kb.nonuse.hamil": 6,
    }
    out = ind.compute(m)
    assert out["cpr"] == 0.65  # 26 / 40
    assert out["mkjp_share"] == round(11 / 26, 6)  # 0.423077
    assert out["unmet_need"] == 0.2  # (5 + 3) / 40
    assert (out["kb_users_iud"], out["kb_users_mop"], out["non_users_hamil"]) == (4, 0, 6)


def test_stunting_uppka_dashat_formulas_hand_computed() -> None:
    m = {
        "d.stunting.measured": 80,
        "d.stunting.stunted": 18,
        "d.stunting.severe": 4,
        "s.reg.families": 200,
        "s.krs.families": 50,
        "s.krs.target_families": 125,
        "s.krs.reason.jamban": 20,
        "s.uppka.groups_existing": 8,
        "s.uppka.groups_active": 6,
        "d.uppka.groups_reporting": 5,
        "s.uppka.groups_active_kkb": 6,
        "w.uppka.due": 16,  # 8 groups due in each of two months whose deadline passed
        "w.uppka.expected": 24,  # and in a third month whose deadline is ahead
        "w.uppka.on_time": 10,
        "w.uppka.late": 2,
        "d.uppka.target_groups": 12,
        "s.uppka.members": 40,
        "s.uppka.members_kb_users": 30,
        "s.uppka.members.pus": 32,  # participation is over PUS members: 24 of 32
        "s.uppka.members_pus_kb_users": 24,
        "s.uppka.members_mkjp": 12,
        "f.uppka.members_present": 33,
        "f.uppka.active_members": 44,
        "f.dashat.portions_delivered": 400,
        "f.dashat.expenses": 7_000_000,
    }
    out = ind.compute(m)
    assert (out["stunting_prevalence"], out["severe_stunting_prevalence"]) == (0.225, 0.05)
    assert (out["krs_share"], out["krs_reason_jamban"]) == (0.4, 20)  # 50 KRS / 125 target families
    assert (out["uppka_reporting_rate"], out["uppka_target_progress"]) == (0.625, 0.5)  # 10 / 16, 6 / 12
    assert (out["uppka_reporting_completeness"], out["uppka_reports_missing"]) == (0.75, 4)  # 12 / 16
    assert out["uppka_reports_not_due"] == 8
    assert (out["uppka_members_kb_participation"], out["uppka_members_mkjp_share"]) == (0.75, 0.4)
    assert out["uppka_attendance_rate"] == 0.75
    assert out["dashat_cost_per_portion"] == 17_500.0


def test_ratios_without_denominator_are_undefined() -> None:
    out = ind.compute({})
    assert (
        out["cpr"] is None and out["stunting_prevalence"] is None and out["dashat_cost_per_portion"] is None
    )
    assert out["uppka_target_groups"] is None and out["pus"] == 0
    assert set(out) >= {i.name for i in ind.CATALOGUE if not i.name.startswith("krs_reason")}


def test_percentile_like_percentile_cont() -> None:
    assert ind.percentile([2.0, 6.0], 0.5) == 4.0
    assert ind.percentile([2.0, 6.0], 0.9) == pytest.approx(5.6)
    assert ind.percentile([1.0, 2.0, 3.0, 4.0, 10.0], 0.9) == pytest.approx(7.6)
    assert ind.percentile([], 0.5) is None


def test_runway() -> None:
    assert ind.runway_days(1_050_000, 1_200_000, 31) == pytest.approx(27.125)
    assert ind.runway_days(100, 0, 31) is None
    assert ind.low_runway([(1_050_000, 1_200_000), (700_000, 300_000), (5, 0), (-10, 100)], 31) == 2


def test_every_ratio_has_its_numerator_and_denominator_and_small_n_is_flagged() -> None:
    values = ind.compute(
        {
            "s.kb.pus": 20,
            "s.kb.users": 20,
            "s.reg.families": 40,
            "s.krs.families": 10,
            "s.krs.target_families": 40,
        }
    )
    ratios = [i.name for i in ind.CATALOGUE if i.unit == "ratio"]
    assert all(f"{r}_numerator" in values and f"{r}_denominator" in values for r in ratios)
    assert (values["cpr"], values["cpr_numerator"], values["cpr_denominator"]) == (1.0, 20, 20)
    # 20 couples is under the DHS 25-case floor: a 100% CPR on them is flagged; 40 families is not.
    flagged = ind.small_numbers(values)
    assert "cpr" in flagged and "unmet_need" in flagged and "krs_share" not in flagged
    assert "stunting_prevalence" not in flagged  # n = 0: undefined, not small


def test_labels() -> None:
    assert ind.label("cpr", "id") == "Angka prevalensi kontrasepsi (CPR)"
    assert ind.label("region", "id") == "kode_wilayah"
    assert ind.label("krs_reason_jamban", "id") == "KRS alasan: jamban"
    assert ind.label("cpr", "en") == "cpr"


# --- projection folding ----------------------------------------------------------------------------------

V = "15.71.01.1001"


def _e(d: str, ts: str, patch: dict[str, object], eid: str | None = None) -> dict[str, Any]:
    return {"d": d, "ts": ts, "id": eid or f"{d}{ts}", "p": patch}


def _by_measure(c: dict[str, int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for k, v in c.items():
        _, grain, start, measure = proj.parse_key(k)
        out[(start.isoformat()[:7] + grain, measure)] = v
    return out


def test_stock_changes_are_monthly_deltas_whatever_the_arrival_order() -> None:
    entries = [
        _e("2026-01-10", "1", {"registered": True, "village": V, "pus": True}),
        _e("2026-01-20", "2", {"is_user": True, "method": "pil", "mkjp": False}),
        _e("2026-03-05", "3", {"is_user": True, "method": "implant", "mkjp": True}),
    ]
    results = set()
    for order in itertools.permutations(entries):
        timeline: list[dict[str, Any]] = []
        for e in order:
            timeline = proj.add_entry(timeline, e)
        results.add(tuple(sorted(proj.contribution("person", timeline, None, None).items())))
    assert len(results) == 1
    c = _by_measure(dict(results.pop()))
    assert c[("2026-01m", "s.kb.users")] == 1 and ("2026-03m", "s.kb.users") not in c
    assert c[("2026-01m", "s.kb.method.pil")] == 1 and c[("2026-03m", "s.kb.method.pil")] == -1
    assert c[("2026-03m", "s.kb.method.implant")] == 1 and c[("2026-03m", "s.kb.mkjp_users")] == 1


def test_redelivered_entry_is_kept_once() -> None:
    e = _e("2026-01-10", "1", {"registered": True, "village": V}, eid="x")
    assert len(proj.add_entry(proj.add_entry([], e), e)) == 1


def test_child_counts_once_per_period_and_honours_corrections() -> None:
    def m(mid: str, on: str, cls: str, **kw: object) -> dict[str, Any]:
        patch = {
            "measured": True,
            "measurement_id": mid,
            "measured_on": on,
            "age_days": 300,
            "has_haz": True,
            "haz_flag": False,
            "haz_class": cls,
            "village": V,
            **kw,
        }
        return _e(on, mid, patch, eid=mid)

    entries = [
        m("a", "2026-02-10", "normal"),
        m("b", "2026-03-03", "stunted"),
        m("c", "2026-03-20", "stunted"),
        m("c2", "2026-03-20", "normal", corrects="c"),
    ]
    c = _by_measure(proj.child_contribution(proj.sort_entries(entries)))
    assert c[("2026-03m", "d.stunting.measured")] == 1 and ("2026-03m", "d.stunting.stunted") not in c
    assert c[("2026-01q", "d.stunting.measured")] == 1 and c[("2026-01y", "d.stunting.measured")] == 1
    retracted = [*entries[:3], _e("2026-03-20", "z", {"inactive": True, "measurement_id": "c"}, eid="r")]
    c = _by_measure(proj.child_contribution(proj.sort_entries(retracted)))
    assert c[("2026-03m", "d.stunting.stunted")] == 1  # b is now the latest in March


def test_report_amendment_replaces_figures() -> None:
    base = {
        "village": V,
        "period": "2026-03",
        "late": False,
        "members_present": 1,
        "active_members": 2,
        "new_kb_acceptors": 0,
        "mkjp_switchers": 0,
        "costs": 0,
    }
    entries = [
        _e("2026-03-01", "2", {**base, "amendment_no": 1, "omzet": 200, "profit": 200}, eid="b"),
        _e("2026-03-01", "1", {**base, "amendment_no": 0, "omzet": 100, "profit": 100}, eid="a"),
    ]
    c = _by_measure(proj.report_contribution(entries))
    assert c[("2026-03m", "f.uppka.omzet")] == 200 and c[("2026-03m", "f.uppka.reports")] == 1


def test_retracted_case_is_neither_new_nor_open() -> None:
    entries = [
        _e("2026-03-05", "1", {"detected": True, "severity": "stunted", "village": V}),
        _e("2026-03-06", "2", {"retracted": True, "village": V}),
    ]
    c = _by_measure(proj.case_contribution(entries))
    assert c == {("2026-03m", "f.stunting.retracted"): 1}


def test_rollup_rows_and_diff() -> None:
    place = proj.Place(V, "k1", "d1")
    assert [r for r, _ in proj.regions_of(place)] == [
        "ID",
        "15",
        "15.71",
        "15.71.01",
        V,
        "kkb:k1",
        "dapur:d1",
    ]
    # The reads find a region's rows by the level the rollup wrote them at (the level leads the fact key).
    assert [proj.level_of(r) for r, _ in proj.regions_of(place)] == [lv for _, lv in proj.regions_of(place)]
    assert [lv for _, lv in proj.regions_of(place)] == [0, 1, 2, 3, 4, 5, 6]
    k = proj.key(place, "m", date(2026, 3, 1), "f.x")
    assert (
        proj.diff({k: 2}, {k: 5}) == {k: 3}
        and proj.diff({k: 2}, {}) == {k: -2}
        and proj.diff({k: 1}, {k: 1}) == {}
    )
    rows = proj.expand({k: 3})
    assert rows[("ID", "m", date(2026, 3, 1), "f.x")] == (0, 3) and rows[
        ("kkb:k1", "m", date(2026, 3, 1), "f.x")
    ] == (5, 3)


def test_haz_change_after_enrolment_is_a_stock_of_the_latest_change() -> None:
    def m(mid: str, on: str, haz: float) -> dict[str, Any]:
        patch = {
            "measured": True,
            "measurement_id": mid,
            "measured_on": on,
            "age_days": 300,
            "has_haz": True,
            "haz": haz,
            "haz_flag": False,
            "haz_class": "stunted",
            "village": V,
        }
        return _e(on, mid, patch, eid=mid)

    enrol = _e(
        "2026-03-05",
        "e",
        {"enrol_start": "2026-03-05", "category": "baduta_stunting", "village": V, "kitchen": "d1"},
        eid="enrolment",
    )
    entries = proj.sort_entries(
        [m("a", "2026-03-03", -2.5), enrol, m("b", "2026-03-28", -2.1), m("c", "2026-05-02", -1.9)]
    )
    c = _by_measure(proj.child_contribution(entries))
    assert (
        c[("2026-03m", "s.dashat.haz_children")] == 1 and c[("2026-03m", "s.dashat.haz_change_milli")] == 400
    )
    assert c[("2026-05m", "s.dashat.haz_change_milli")] == 200  # by the end of May the change is +0.6
    assert ("2026-05m", "s.dashat.haz_children") not in c


def test_kitchen_low_runway_per_period_end() -> None:
    opened = _e("2026-01-01", "o", {"open": True, "village": V, "kkb": None, "capacity": 10})
    ledger = [
        _e(
            "2026-01-01",
            "l1",
            {"ledger_month": "2026-01", "funds": 2_000_000, "spent": 0},
            eid="ledger:2026-01",
        ),
        _e(
            "2026-03-01",
            "l3",
            {"ledger_month": "2026-03", "funds": 250_000, "spent": 1_200_000},
            eid="ledger:2026-03",
        ),
    ]
    c = _by_measure(proj.kitchen_contribution(proj.sort_entries([opened, *ledger]), None, "d1"))
    # End of March: 1,050,000 left at 1,200,000 a month = 27 days; March is also the last month of Q1.
    assert c[("2026-03m", "d.dashat.kitchens_low_runway")] == 1
    assert c[("2026-01q", "d.dashat.kitchens_low_runway")] == 1
    assert ("2026-01y", "d.dashat.kitchens_low_runway") not in c
    closed = _e("2026-03-15", "c", {"open": False})
    c = _by_measure(proj.kitchen_contribution(proj.sort_entries([opened, closed, *ledger]), None, "d1"))
    assert not any(m == "d.dashat.kitchens_low_runway" for _, m in c)


# --- folding a batch --------------------------------------------------------------------------------------


def _entry(eid: str, d: str, **p: Any) -> dict[str, Any]:
    return {"d": d, "ts": f"{d}T09:00:00+00:00", "id": eid, "p": p}


def test_a_batch_accumulates_a_kitchens_ledger_month_and_replaces_a_redelivered_entry() -> None:
    kitchen = proj.Tracked.of("kitchen", "k1", None, [], {})
    entities = {("kitchen", "k1"): kitchen}
    opened = _entry("e1", "2026-01-05", open=True, village="15.71.01.1001", capacity=10)
    proj.apply_steps(entities, [proj.Record("kitchen", "k1", opened)], slot=2003)
    proj.apply_steps(entities, [proj.LedgerAdd("k1", "2026-01", 100, 0, "t1", "a")], slot=2003)
    proj.apply_steps(entities, [proj.LedgerAdd("k1", "2026-01", 0, 40, "t2", "b")], slot=2003)
    proj.apply_steps(
        entities, [proj.Record("kitchen", "k1", {**opened, "p": {**opened["p"], "capacity": 20}})], 2003
    )
    ledger = kitchen.entries["ledger:2026-01"]["p"]
    assert (ledger["funds"], ledger["spent"]) == (100, 40)
    assert len(kitchen.entries) == 2 and kitchen.entries["e1"]["p"]["capacity"] == 20


def test_settle_places_dependants_in_their_owners_final_kampung_kb_and_slot() -> None:
    family = proj.Tracked.of("family", "f1", None, [], {})
    person = proj.Tracked.of("person", "p1", None, [], {})
    entities = {("family", "f1"): family, ("person", "p1"): person}
    village = "15.71.01.1001"
    proj.apply_steps(
        entities,
        [proj.Record("family", "f1", _entry("e1", "2026-01-01", registered=True, village=village, kkb=None))],
        slot=4,
    )
    proj.apply_steps(
        entities,
        [
            proj.Record(
                "person", "p1", _entry("e2", "2026-01-01", registered=True, village=village), "family:f1"
            )
        ],
        slot=4,
    )
    proj.apply_steps(
        entities,
        [proj.Record("family", "f1", _entry("e3", "2026-02-01", registered=True, village=village, kkb="K"))],
        slot=5,
    )
    assert proj.owners_moved(entities) == ["family:f1"]
    deltas, rows = proj.settle(entities, {})
    assert set(deltas) == {4, 5}
    assert any(
        k.startswith(f"{village}|K||") for k in deltas[4]
    )  # the person counts in the family's Kampung KB
    assert {t.kind: new for t, _, new in rows}["person"] == deltas[4]
