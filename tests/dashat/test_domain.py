"""Pure rules of DASHAT: enrolment decisions, kitchens, money, nutrition, outcomes (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from dashat.enrolment import rules
from dashat.foods import domain as foods
from dashat.funds import domain as funds
from dashat.kitchens import domain as kitchens
from dashat.outcomes import domain as outcomes

TODAY = date(2026, 11, 29)
GIRL = rules.PersonFacts(sex="P", birth_date=date(2026, 3, 1), welfare_decile=2, krs=True)


@pytest.mark.parametrize(
    ("birth", "age", "decision"),
    # Born 30 Nov 2024: 23 completed months on 29 Nov 2026 (a baduta, enrolled); born 29 Nov 2024: 24 (not).
    [(date(2024, 11, 30), 23, "baduta_stunting"), (date(2024, 11, 29), 24, "aged_out")],
)
def test_baduta_is_under_24_completed_months_as_in_shared_ages(birth: date, age: int, decision: str) -> None:
    d = rules.decide_baduta_stunting(
        person=GIRL, birth_date=birth, haz=-2.5, severity="stunted", case_id="c", today=TODAY
    )
    assert (
        (d.category, d.facts["age_months"]) == (decision, age)
        if isinstance(d, rules.Decision)
        else (d.reason == decision)
    )


def test_priority_poorest_then_krs_then_unknown() -> None:
    order = sorted(
        [(None, False), (5, False), (1, False), (1, True), (5, True)], key=lambda d: rules.priority(*d)
    )
    assert order == [(1, True), (1, False), (5, True), (5, False), (None, False)]


def _baduta(person: rules.PersonFacts = GIRL, birth: date = date(2026, 3, 1), **kw: Any) -> object:
    return rules.decide_baduta_stunting(
        person=person,
        birth_date=birth,
        haz=-2.4,
        severity="stunted",
        case_id="c1",
        today=TODAY,
        **kw,
    )


def test_baduta_stunting_enrols_with_facts() -> None:
    d = _baduta()
    assert isinstance(d, rules.Decision)
    assert (d.category, d.rule_id, d.rule_version, d.planned_days) == (
        "baduta_stunting",
        rules.RULE_BADUTA_STUNTING,
        rules.RULES_VERSION,
        90,
    )
    assert d.facts["case_id"] == "c1" and d.facts["age_months"] == 8 and d.priority == 3


def test_baduta_refused_when_dead_moved_or_aged_out() -> None:
    assert _baduta(replace(GIRL, alive=False)) == rules.Refusal(rules.RULE_BADUTA_STUNTING, "person_died")
    assert _baduta(replace(GIRL, moved_out=True)) == rules.Refusal(
        rules.RULE_BADUTA_STUNTING, "person_moved_out"
    )
    assert _baduta(birth=date(2024, 11, 1)) == rules.Refusal(rules.RULE_BADUTA_STUNTING, "aged_out")


def test_balita_rule_is_configurable() -> None:
    config = rules.RuleConfig(continue_as_balita=True)
    d = _baduta(birth=date(2024, 6, 1), config=config)
    assert isinstance(d, rules.Decision) and d.category == "balita_stunting"
    assert _baduta(birth=date(2021, 6, 1), config=config) == rules.Refusal(
        rules.RULE_BADUTA_STUNTING, "aged_out"
    )


def _pregnancy(**kw: Any) -> object:
    values: dict[str, Any] = {
        "person": GIRL,
        "pregnancy_id": "p1",
        "krs": False,
        "welfare_decile": 8,
        "kek": False,
        "anaemia": "none",
        "expected_delivery": date(2027, 3, 1),
        "today": TODAY,
    }
    values.update(kw)
    return rules.decide_pregnancy(**values)


@pytest.mark.parametrize(
    ("kw", "reasons"),
    [
        ({"krs": True}, ["krs"]),
        ({"welfare_decile": 4}, ["decile_le_4"]),
        ({"kek": True}, ["kek"]),
        ({"anaemia": "moderate"}, ["anaemia_moderate"]),
        ({"krs": True, "kek": True, "welfare_decile": 1}, ["krs", "decile_le_4", "kek"]),
    ],
)
def test_pregnancy_targets(kw: dict[str, object], reasons: list[str]) -> None:
    d = _pregnancy(**kw)
    assert isinstance(d, rules.Decision) and d.category == "ibu_hamil" and d.facts["reasons"] == reasons
    assert d.planned_days == 120


def test_pregnancy_refusals_and_configurable_decile() -> None:
    assert _pregnancy() == rules.Refusal(rules.RULE_PREGNANCY, "no_risk")
    assert _pregnancy(welfare_decile=5) == rules.Refusal(rules.RULE_PREGNANCY, "no_risk")
    assert isinstance(
        _pregnancy(welfare_decile=5, config=rules.RuleConfig(pregnancy_max_decile=5)), rules.Decision
    )
    assert _pregnancy(kek=True, person=replace(GIRL, sex="L")) == rules.Refusal(
        rules.RULE_PREGNANCY, "person_is_male"
    )
    assert _pregnancy(kek=True, expected_delivery=date(2026, 1, 1)) == rules.Refusal(
        rules.RULE_PREGNANCY, "expected_delivery_passed"
    )


def test_catin_and_birth_rules() -> None:
    d = rules.decide_catin(person=GIRL, catin_id="c", at_risk=True, risks=["kek"], welfare_decile=3)
    assert isinstance(d, rules.Decision) and d.category == "catin" and d.facts["risks"] == ["kek"]
    assert rules.decide_catin(
        person=GIRL, catin_id="c", at_risk=False, risks=[], welfare_decile=3
    ) == rules.Refusal(rules.RULE_CATIN, "no_risk")
    kw: dict[str, Any] = {"person": GIRL, "pregnancy_id": "p", "ended_on": TODAY, "child_person_id": None}
    b = rules.decide_after_birth(was_target=True, **kw)
    assert isinstance(b, rules.Decision) and b.category == "ibu_menyusui"
    assert rules.decide_after_birth(was_target=False, **kw) == rules.Refusal(
        rules.RULE_BIRTH, "mother_was_not_a_target"
    )
    off = rules.RuleConfig(enrol_ibu_menyusui_after_birth=False)
    assert isinstance(rules.decide_after_birth(was_target=True, config=off, **kw), rules.Refusal)


def test_continuation_after_a_move() -> None:
    kw: dict[str, Any] = {
        "category": "baduta_stunting",
        "previous_enrolment_id": "e1",
        "previous_kitchen_id": "k1",
        "previous_rule_id": rules.RULE_BADUTA_STUNTING,
        "previous_facts": {"haz": -2.5, "case_id": "c"},
        "today": TODAY,
    }
    d = rules.decide_after_move(person=GIRL, planned_end_date=date(2026, 12, 29), **kw)
    assert isinstance(d, rules.Decision)
    assert (d.category, d.rule_id, d.planned_days, d.priority) == ("baduta_stunting", rules.RULE_MOVED, 30, 3)
    assert d.facts["haz"] == -2.5 and d.facts["continues_enrolment_id"] == "e1"
    assert rules.decide_after_move(person=GIRL, planned_end_date=TODAY, **kw) == rules.Refusal(
        rules.RULE_MOVED, "planned_end_reached"
    )
    old = replace(GIRL, birth_date=date(2024, 11, 1))
    assert rules.decide_after_move(person=old, planned_end_date=date(2027, 1, 1), **kw) == rules.Refusal(
        rules.RULE_MOVED, "aged_out"
    )
    gone = replace(GIRL, moved_out=True)
    assert rules.decide_after_move(person=gone, planned_end_date=date(2027, 1, 1), **kw) == rules.Refusal(
        rules.RULE_MOVED, "person_moved_out"
    )


def test_contradictions() -> None:
    man = rules.PersonFacts(sex="L", birth_date=date(1990, 1, 1))
    assert [c.rule for c in rules.contradictions("ibu_hamil", man, TODAY)] == ["category.ibu_hamil.sex"]
    assert rules.contradictions("catin", man, TODAY) == []
    old_child = rules.PersonFacts(sex="L", birth_date=date(2023, 1, 1))
    assert [c.rule for c in rules.contradictions("baduta_stunting", old_child, TODAY)] == [
        "category.baduta_stunting.age"
    ]
    assert rules.contradictions("balita_stunting", old_child, TODAY) == []
    assert [c.rule for c in rules.contradictions("baduta_stunting", rules.PersonFacts(), TODAY)] == [
        "person.birth_date_unknown"
    ]
    dead = rules.PersonFacts(sex="P", alive=False)
    assert [c.rule for c in rules.contradictions("ibu_menyusui", dead, TODAY)] == ["person.died"]


def test_child_exit_date_and_planned_end() -> None:
    assert rules.child_exit_date(date(2025, 1, 31), "baduta_stunting") == date(2027, 1, 31)
    assert rules.child_exit_date(date(2025, 1, 31), "balita_stunting") == date(2030, 1, 31)
    assert rules.planned_end(TODAY, "ibu_hamil") == date(2027, 3, 29)


def test_kitchen_serves_and_picks() -> None:
    assert kitchens.serves("33.01.01.2001", [], "33.01.01.2001", None)
    assert kitchens.serves("33.01.01.2001", ["001", "2"], "33.01.01.2001", "02")
    assert not kitchens.serves("33.01.01.2001", ["001"], "33.01.01.2001", "003")
    assert not kitchens.serves("33.01.01.2001", ["001"], "33.01.01.2001", None)
    assert not kitchens.serves("33.01.01.2001", [], "33.01.01.2002", "001")
    assert kitchens.free_places(10, 12) == 0
    assert kitchens.pick_kitchen([("a", 0), ("b", 2), ("c", 5), ("d", 5)]) == "c"
    assert kitchens.pick_kitchen([("a", 0)]) is None


def test_sustainability_figures() -> None:
    s = funds.sustainability(
        income=3_000_000, expenses=1_000_000, expenses_last_window=600_000, portions_served=60
    )
    assert (s.balance, s.cost_per_portion, s.burn_per_day, s.runway_days) == (
        2_000_000,
        16_667,
        20_000.0,
        100,
    )
    idle = funds.sustainability(income=10, expenses=0, expenses_last_window=0, portions_served=0)
    assert (idle.cost_per_portion, idle.runway_days) == (None, None)
    assert funds.expense_allowed(100, 100) and not funds.expense_allowed(100, 101)


def test_menu_totals_and_shortfalls() -> None:
    egg = foods.FoodNutrients(154, 12.4, 10.8, 0.7, 2.7)
    rice = foods.FoodNutrients(180, 3.0, 0.3, 39.8, 0.4)
    total = foods.totals([(egg, 50), (rice, 100)])
    assert total == {
        "energy_kcal": 257.0,
        "protein_g": 9.2,
        "fat_g": 5.7,
        "carbohydrate_g": 40.1,
        "iron_mg": 1.8,
    }
    warnings = foods.shortfalls("baduta_stunting", total)
    assert {w["nutrient"] for w in warnings} == {"energy_kcal", "iron_mg"}
    assert foods.shortfalls("baduta_stunting", {"energy_kcal": 400, "protein_g": 9, "iron_mg": 3}) == []


def test_outcome_trajectory_and_flag() -> None:
    pts = [outcomes.Point(date(2026, 3, 1), -2.5), outcomes.Point(date(2026, 1, 1), -2.6)]
    t = outcomes.trajectory(-2.6, pts)
    assert (t.latest, t.change, t.improved) == (-2.5, 0.1, True)
    flat = outcomes.trajectory(-2.6, [outcomes.Point(date(2026, 3, 1), -2.7)])
    assert flat.improved is False
    assert outcomes.should_flag(flat, date(2026, 3, 1), date(2026, 3, 1), already_flagged=False)
    assert not outcomes.should_flag(flat, date(2026, 3, 2), date(2026, 3, 1), already_flagged=False)
    assert not outcomes.should_flag(flat, date(2026, 3, 1), date(2026, 3, 1), already_flagged=True)
    assert outcomes.trajectory(-2.6, []).improved is None


def _r(day: int, haz: float | None, flagged: bool = False) -> rules.HazReading:
    return rules.HazReading(date(2026, 1, 1) + timedelta(days=day), haz, flagged)


@pytest.mark.parametrize(
    ("readings", "confirmed_day"),
    [
        ([_r(0, -2.5), _r(10, -1.5)], None),  # one normal: may be noise
        ([_r(0, -2.5), _r(10, -1.5), _r(40, -1.9)], 40),  # two, 30 days apart
        ([_r(0, -2.5), _r(10, -1.5), _r(39, -1.9)], None),  # 29 days apart: not yet
        ([_r(10, -1.5), _r(25, -2.1), _r(45, -1.2)], None),  # stunted in between resets
        ([_r(10, -1.5), _r(25, -2.1), _r(45, -1.2), _r(75, -1.0)], 75),
        ([_r(10, -1.5), _r(25, 1.0, flagged=True), _r(40, None), _r(41, -1.8)], 41),  # unusable ones skipped
        ([_r(10, -1.5), _r(45, -8.0, flagged=True)], None),  # a flagged stunted value resets nothing...
        ([_r(10, -2.0), _r(40, -2.0)], 40),  # -2.0 is not below -2 SD: not stunted (WHO)
        ([_r(40, -1.9), _r(10, -1.5)], 40),  # order of arrival does not matter
    ],
)
def test_recovery_needs_confirmation(readings: list[rules.HazReading], confirmed_day: int | None) -> None:
    expected = None if confirmed_day is None else date(2026, 1, 1) + timedelta(days=confirmed_day)
    assert rules.recovery_confirmed_on(readings) == expected


def test_recovery_rule_is_configurable() -> None:
    three = rules.RuleConfig(recovery_confirmations=3, recovery_min_interval_days=60)
    readings = [_r(0, -1.5), _r(30, -1.4), _r(60, -1.3)]
    assert rules.recovery_confirmed_on(readings[:2], three) is None
    assert rules.recovery_confirmed_on(readings, three) == date(2026, 3, 2)
    one = rules.RuleConfig(recovery_confirmations=1, recovery_min_interval_days=0)
    assert rules.recovery_confirmed_on(readings[:1], one) == date(2026, 1, 1)


def test_registry_breastfeeding_decision() -> None:
    mother = rules.PersonFacts(sex="P", birth_date=date(1996, 2, 2), welfare_decile=3, krs=False)
    born = date(2026, 9, 30)
    d = rules.decide_registry_breastfeeding(
        mother=mother, baby_person_id="b", baby_birth_date=born, evidence="child_registered", today=TODAY
    )
    # Six months from 30 Sep is 30 Mar 2027: 121 days after 29 Nov 2026.
    assert isinstance(d, rules.Decision)
    assert (d.category, d.planned_days, d.priority, d.rule_version) == (
        "ibu_menyusui",
        121,
        6,
        rules.RULES_VERSION,
    )
    assert rules.breastfeeding_exit_date(d.facts) == date(2027, 3, 30)
    for kw, reason in [
        ({"baby_birth_date": date(2026, 5, 29)}, "baby_not_under_age_limit"),  # 6 completed months on 29 Nov
        ({"baby_birth_date": date(2026, 12, 1)}, "baby_not_under_age_limit"),  # not born yet
        ({"mother": replace(mother, alive=False)}, "person_died"),
        ({"mother": replace(mother, sex="L")}, "person_is_male"),
        ({"config": rules.RuleConfig(enrol_registry_ibu_menyusui=False)}, "disabled_by_configuration"),
    ]:
        args: dict[str, Any] = {
            "mother": mother,
            "baby_person_id": "b",
            "baby_birth_date": born,
            "evidence": "child_registered",
            "today": TODAY,
            **kw,
        }
        refusal = rules.decide_registry_breastfeeding(**args)
        assert isinstance(refusal, rules.Refusal) and refusal.reason == reason
    longer = rules.RuleConfig(ibu_menyusui_baby_months=12)
    assert rules.breastfeeding_exit_date({"child_birth_date": "2026-09-30"}, longer) == date(2027, 9, 30)


def test_after_birth_ends_with_the_baby_age_limit() -> None:
    mother = rules.PersonFacts(sex="P")
    d = rules.decide_after_birth(
        person=mother, pregnancy_id="p", was_target=True, ended_on=TODAY, child_person_id=None, today=TODAY
    )
    assert isinstance(d, rules.Decision) and d.planned_days == 90
    # Birth recorded late: 90 planned days would outlast the baby's six months (15 Jan 2027: 47 days on).
    late = rules.decide_after_birth(
        person=mother,
        pregnancy_id="p",
        was_target=True,
        ended_on=date(2026, 7, 15),
        child_person_id=None,
        today=TODAY,
    )
    assert isinstance(late, rules.Decision) and late.planned_days == 47


def test_rule_config_round_trips_and_fills_new_fields_from_the_code() -> None:
    config = rules.RuleConfig(version="v", planned_days={**rules.DEFAULT_PLANNED_DAYS, "catin": 30})
    assert rules.RuleConfig.from_json("v", config.to_json()) == config
    # A version stored before a field existed keeps the code default for it.
    old = rules.RuleConfig.from_json(
        "old", {"planned_days": {"catin": 45}, "pregnancy_anaemia_levels": ["severe"]}
    )
    assert old.planned_days["catin"] == 45 and old.planned_days["ibu_hamil"] == 120
    assert old.pregnancy_anaemia_levels == frozenset({"severe"}) and old.recovery_confirmations == 2


def test_rule_version_picking() -> None:
    from dashat.ruleversions import domain as versions

    v = versions.StoredVersion
    day = date(2027, 1, 1)
    stored = [
        v("national-2027", None, day, {}),
        v("jateng", "33", date(2026, 12, 1), {}),
        v("kab-33-01-late", "33.01", date(2027, 2, 1), {}),
        v("desa", "33.01.01.2001", date(2027, 1, 15), {}),
    ]
    assert versions.pick(stored, "33.01.01.2001", date(2026, 11, 30)).version == rules.RULES_VERSION
    assert versions.pick(stored, "33.01.01.2001", day).version == "jateng"
    assert versions.pick(stored, "33.01.01.2001", date(2027, 1, 15)).version == "desa"
    assert versions.pick(stored, "33.01.01.2002", date(2027, 2, 1)).version == "kab-33-01-late"
    assert versions.pick(stored, "15.71.01.1001", day).version == "national-2027"
    # "33.0" is not a prefix of 33.01 by segments.
    assert versions.pick([v("x", "33.0", day, {})], "33.01.01.2001", day).version == rules.RULES_VERSION
