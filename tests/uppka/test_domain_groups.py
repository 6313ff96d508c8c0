"""Pure rules of groups and members."""

from __future__ import annotations

from datetime import date

import pytest
from uppka.groups import domain

from shared.errors import Conflict, ValidationFailed

ON = date(2025, 6, 15)


def born(years: int, *, days_after: int = 0) -> date:
    return date(ON.year - years, ON.month, ON.day + days_after)


@pytest.mark.parametrize(
    ("birth", "marital", "pus", "expected"),
    [
        (born(9), "belum_kawin", False, "lainnya"),
        (born(10), "belum_kawin", False, "remaja"),
        (born(24), "belum_kawin", False, "remaja"),
        (born(25), "belum_kawin", False, "lainnya"),
        (born(25, days_after=1), "belum_kawin", False, "remaja"),  # 24 until the birthday
        (born(20), "kawin", False, "lainnya"),  # married: not remaja
        (born(22), "kawin", True, "pus"),
        (born(59), "kawin", False, "lainnya"),
        (born(60), "kawin", False, "lansia"),
        (born(75), "cerai_mati", False, "lansia"),
        (None, None, None, "lainnya"),
        (None, None, True, "pus"),
    ],
)
def test_member_category(birth: date | None, marital: str | None, pus: bool | None, expected: str) -> None:
    assert domain.member_category(birth_date=birth, marital_status=marital, pus=pus, on=ON) == expected


def test_category_ages_follow_shared_ages_on_a_leap_day() -> None:
    # shared/ages: born 29 February, a year is completed on 28 February in common years (the month's last day).
    leap = date(2000, 2, 29)
    on = {"birth_date": leap, "marital_status": "belum_kawin", "pus": False}
    assert domain.member_category(**on, on=date(2025, 2, 27)) == "remaja"  # type: ignore[arg-type]
    assert domain.member_category(**on, on=date(2025, 2, 28)) == "lainnya"  # type: ignore[arg-type]


def test_category_birthdays_are_the_10th_25th_and_60th() -> None:
    b = date(1990, 3, 31)
    assert domain.category_birthdays(b, date(1990, 1, 1), date(2100, 1, 1)) == [
        date(2000, 3, 31),
        date(2015, 3, 31),
        date(2050, 3, 31),
    ]
    # The window is (after, through]: the day after excluded, the day through included.
    assert domain.category_birthdays(b, date(2015, 3, 31), date(2050, 3, 31)) == [date(2050, 3, 31)]
    assert domain.category_birthdays(b, date(2015, 3, 30), date(2015, 3, 30)) == []


def test_category_changes_from_ageing() -> None:
    single = {"birth_date": date(2000, 7, 1), "marital_status": "belum_kawin", "pus": False}
    # A child of 9 who joined in 2009 becomes remaja at 10 (2010-07-01), lainnya at 25 (2025-07-01).
    assert domain.category_changes(
        **single,
        category="lainnya",
        after=date(2009, 8, 1),
        through=date(2026, 1, 1),  # type: ignore[arg-type]
    ) == [(date(2010, 7, 1), "remaja"), (date(2025, 7, 1), "lainnya")]
    # Married at 20 (lainnya): turning 25 changes nothing; 60 makes her lansia.
    married = {"birth_date": date(1960, 5, 2), "marital_status": "kawin", "pus": False}
    assert domain.category_changes(
        **married,
        category="lainnya",
        after=date(1980, 1, 1),
        through=date(2020, 5, 2),  # type: ignore[arg-type]
    ) == [(date(2020, 5, 2), "lansia")]
    # PUS stays PUS until the registry says otherwise; an unknown birth date never ages.
    assert (
        domain.category_changes(
            birth_date=date(1990, 1, 1),
            marital_status="kawin",
            pus=True,
            category="pus",
            after=date(2010, 1, 1),
            through=date(2060, 1, 1),
        )
        == []
    )
    assert (
        domain.category_changes(
            birth_date=None,
            marital_status=None,
            pus=None,
            category="lainnya",
            after=date(2010, 1, 1),
            through=date(2060, 1, 1),
        )
        == []
    )


def _facts(**kw: object) -> domain.PersonFacts:
    base: dict[str, object] = {
        "known": True,
        "village_code": "15.71.01.1001",
        "died_on": None,
        "moved_out_on": None,
        "merged_into": False,
        "ever_kb_user": True,
        "birth_date": date(1990, 1, 1),
    }
    base.update(kw)
    return domain.PersonFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("person", "role", "joined", "rule"),
    [
        (None, "anggota", ON, "member.person_unknown"),
        (_facts(known=False), "anggota", ON, "member.person_unknown"),
        (_facts(merged_into=True), "anggota", ON, "member.person_unknown"),
        (_facts(died_on=ON), "anggota", ON, "member.person_dead"),
        (_facts(moved_out_on=ON), "anggota", ON, "member.person_outside_group_area"),
        (_facts(village_code="15.71.01.1002"), "anggota", ON, "member.person_outside_group_area"),
        (_facts(village_code=None), "anggota", ON, "member.person_outside_group_area"),
        (_facts(), "anggota", date(2025, 6, 16), "member.joined_in_future"),
        (_facts(), "anggota", date(1989, 1, 1), "member.joined_before_birth"),
        (_facts(ever_kb_user=False), "ketua", ON, "member.leader_not_kb_user"),
    ],
)
def test_cannot_join(person: domain.PersonFacts | None, role: str, joined: date, rule: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        domain.check_can_join(
            person, group_village_code="15.71.01.1001", role=role, joined_on=joined, today=ON
        )  # type: ignore[arg-type]
    assert exc.value.rule == rule


def test_can_join() -> None:
    domain.check_can_join(_facts(), group_village_code="15.71.01.1001", role="ketua", joined_on=ON, today=ON)
    domain.check_can_join(
        _facts(ever_kb_user=False), group_village_code="15.71.01.1001", role="anggota", joined_on=ON, today=ON
    )


def test_member_area_levels() -> None:
    assert domain.member_area("15.71.01.1001") == "15.71.01.1001"
    assert domain.member_area("15.71.01.1001", "district") == "15.71.01"


def test_status_changes() -> None:
    domain.check_status_change("active", "inactive", changed_on=ON, since=date(2024, 1, 1), today=ON)
    domain.check_status_change("inactive", "active", changed_on=ON, since=date(2024, 1, 1), today=ON)
    domain.check_status_change("active", "active", changed_on=ON, since=ON, today=ON)
    with pytest.raises(Conflict):
        domain.check_status_change("dissolved", "active", changed_on=ON, since=ON, today=ON)
    with pytest.raises(ValidationFailed) as exc:
        domain.check_status_change("active", "dissolved", changed_on=date(2025, 7, 1), since=ON, today=ON)
    assert exc.value.rule == "group.status_in_future"
    with pytest.raises(ValidationFailed) as exc:
        domain.check_status_change("active", "dissolved", changed_on=date(2020, 1, 1), since=ON, today=ON)
    assert exc.value.rule == "group.status_before_current"


def test_category_sweep_schedule_in_jakarta_time() -> None:
    from datetime import UTC, datetime

    from shared.daily import due_through, seconds_to_next_run

    # 18:30 UTC on 1 December is 01:30 WIB on 2 December: before 02:00 the sweep is due through the 1st.
    now = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert due_through(now, 2).date() == date(2026, 12, 1)
    assert due_through(now, 1).date() == date(2026, 12, 2)
    assert seconds_to_next_run(now, 2) == 30 * 60
    assert (
        seconds_to_next_run(now, 1) == 3600
    )  # the next 01:00 is a day away: looked at again within the hour
