"""An UPPKA member's category changing with age moves the members-by-category stocks in its month."""

from __future__ import annotations

from reporting.indicators import domain as ind
from reporting.projection import domain as proj

from tests.reporting.test_kb_domain import V, entry, measures


def join(d: str, category: str, *, kb: bool, ts: str | None = None) -> dict[str, object]:
    patch = {"active": True, "village": V, "category": category, "kb_user": kb, "mkjp": False}
    return entry(d, {**patch, "method": "pil" if kb else None}, ts)


def test_a_pus_member_turning_50_leaves_the_pus_stocks_in_her_birthday_month() -> None:
    # Joined 10 Jan as PUS using the pill; left PUS on her 50th birthday, 15 March (dated 00:00 WIB that day).
    joined = join("2026-01-10", "pus", kb=True)
    aged = entry("2026-03-15", {"category": "lainnya"}, "2026-03-15T00:00:00+07:00")
    c = proj.member_contribution(proj.sort_entries([joined, aged]))
    feb = {
        "s.uppka.members": 1,
        "s.uppka.members.pus": 1,
        "s.uppka.members_kb_users": 1,
        "s.uppka.members_pus_kb_users": 1,
        "s.uppka.members_kb.pil": 1,
    }
    assert measures(c, "2026-02") == feb
    # End of March: one member, lainnya, still a KB user, no longer in the PUS denominator nor its numerator.
    assert measures(c, "2026-03") == {
        "s.uppka.members": 1,
        "s.uppka.members.lainnya": 1,
        "s.uppka.members_kb_users": 1,
        "s.uppka.members_kb.pil": 1,
    }
    assert ind.compute(measures(c, "2026-02"))["uppka_members_kb_participation"] == 1.0
    assert ind.compute(measures(c, "2026-03"))["uppka_members_kb_participation"] is None  # 0 PUS members


def test_a_category_change_after_a_late_kb_change_keeps_both() -> None:
    # Joined 10 March as a non-user remaja; a KB change effective 2 March learnt on 20 March stands (known
    # when), and her 25th birthday on 25 March (a category change after both) does not bring the join back.
    joined = join("2026-03-10", "remaja", kb=False, ts="2026-03-10T09:00:00+00:00")
    kb = entry("2026-03-02", {"kb_user": True, "mkjp": False, "method": "pil"}, "2026-03-20T09:00:00+00:00")
    aged = entry("2026-03-25", {"category": "lainnya"}, "2026-03-25T00:00:00+07:00")
    c = proj.member_contribution(proj.sort_entries([joined, kb, aged]))
    assert measures(c, "2026-03") == {
        "s.uppka.members": 1,
        "s.uppka.members.lainnya": 1,
        "s.uppka.members_kb_users": 1,
        "s.uppka.members_kb.pil": 1,
    }


def test_a_change_on_the_join_day_known_after_the_join_wins() -> None:
    joined = join("2026-04-01", "pus", kb=False, ts="2026-04-01T09:00:00+00:00")
    same_day = entry("2026-04-01", {"category": "lainnya"}, "2026-04-01T10:00:00+00:00")
    c = proj.member_contribution(proj.sort_entries([same_day, joined]))
    assert measures(c, "2026-04") == {"s.uppka.members": 1, "s.uppka.members.lainnya": 1}
