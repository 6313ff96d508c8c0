"""Pure rules of `kencana reporting verify`: periods, the recounted ratios and the comparison with reporting."""

from __future__ import annotations

from datetime import date

import pytest
from kencana_cli.verify.figures import BY_NAME, Value, compare, current_periods, parse_period, same
from kencana_cli.verify.run import token_region

from shared.auth import issue_dev_token

SOURCES = {
    "registry": {
        "pus": 8,
        "kb_users": 6,
        "kb_users_modern": 5,
        "mkjp_users": 3,
        "non_users_iat": 1,
        "non_users_tial": 0,
        "baduta_measured": 0,
        "baduta_stunted": 0,
    },
    "uppka": {
        "uppka_members": 10,
        "uppka_members_kb_users": 5,
        "uppka_members_pus": 4,
        "uppka_members_pus_kb_users": 3,
    },
}


def test_periods() -> None:
    q = parse_period("2024-Q1")
    assert (q.first, q.last) == (date(2024, 1, 1), date(2024, 3, 31))  # a leap year's February
    assert parse_period("2026-02").last == date(2026, 2, 28)
    assert [p.label for p in current_periods(date(2026, 11, 3))] == ["2026-11", "2026-Q4", "2026"]
    for bad in ("2026-13", "2026-Q5", "26", "2026-1"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_ratios_are_formed_from_the_source_counts() -> None:
    cpr = BY_NAME["cpr"].recount(SOURCES)
    assert cpr == Value(0.75, 6, 8)
    assert BY_NAME["mcpr"].recount(SOURCES) == Value(0.625, 5, 8)
    assert BY_NAME["mkjp_share"].recount(SOURCES) == Value(0.5, 3, 6)
    assert BY_NAME["unmet_need"].recount(SOURCES) == Value(0.125, 1, 8)
    assert BY_NAME["uppka_members_kb_participation"].recount(SOURCES) == Value(0.75, 3, 4)
    assert BY_NAME["stunting_prevalence"].recount(SOURCES) == Value(None, 0, 0)  # nobody measured: undefined
    assert BY_NAME["dashat_beneficiaries"].recount(SOURCES) is None  # DASHAT not asked
    assert BY_NAME["uppka_reporting_rate"].recount(SOURCES) is None  # uppka not asked


def test_the_reporting_rate_is_on_time_over_due_as_uppka_answers_it() -> None:
    # A quarter: 3 groups x 3 months, the last month's deadline still ahead (3 not due): 6 due, 4 on time,
    # 1 late, 1 missing. The rate is on time / due (not "reported at least once / existing", which read 2.0).
    answer = {"uppka_reporting": {"due": 6, "on_time": 4, "late": 1, "not_due": 3}}
    assert BY_NAME["uppka_reporting_rate"].recount(answer) == Value(0.666667, 4, 6)
    nothing_due = {"uppka_reporting": {"due": 0, "on_time": 0, "late": 0, "not_due": 3}}
    assert BY_NAME["uppka_reporting_rate"].recount(nothing_due) == Value(None, 0, 0)  # not 0%


def test_comparison_outcomes() -> None:
    cpr = BY_NAME["cpr"]
    equal = {"cpr": 0.75, "cpr_numerator": 6, "cpr_denominator": 8}
    assert compare(cpr, "15", "2026-11", SOURCES, equal).outcome == "equal"
    # Same ratio on other sides (3/4 is not 6/8): one of the counts is wrong.
    assert compare(
        cpr, "15", "2026-11", SOURCES, {**equal, "cpr_numerator": 3, "cpr_denominator": 4}
    ).outcome == ("differs")
    assert compare(cpr, "15", "2026-11", SOURCES, {**equal, "cpr": 0.750001}).outcome == "differs"
    assert compare(cpr, "15", "2026-11", SOURCES, {"cpr": 0.75}).outcome == "equal"  # no sides published
    assert compare(BY_NAME["mcpr"], "15", "2026-11", SOURCES, equal).outcome == "missing in reporting"
    assert compare(BY_NAME["pus"], "15", "2026-11", SOURCES, {"pus": 9}).outcome == "differs"
    assert compare(BY_NAME["dashat_enrolled"], "15", "2026-11", SOURCES, {}).outcome == "not in source"
    assert not same(Value(None, 0, 0), Value(0.0, 0, 1))
    assert same(Value(None, 0, 0), Value(None, None, None))


def test_token_region_is_read_from_the_claims() -> None:
    assert token_region(issue_dev_token(scopes=["reporting:read"], region="15.71")) == "15.71"
    assert token_region(issue_dev_token(scopes=["reporting:read"])) is None
    assert token_region("not-a-token") is None
