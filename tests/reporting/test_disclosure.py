"""Primary and complementary suppression of public figures: no hidden cell comes back by subtraction."""

from __future__ import annotations

import itertools
import random

from reporting.indicators import disclosure
from reporting.indicators import domain as ind


def _hidden(out: dict[str, ind.Value], values: dict[str, ind.Value]) -> set[str]:
    return {k for k, v in out.items() if v is None and values.get(k) is not None}


def test_small_cells_are_suppressed_with_their_ratios() -> None:
    values = ind.compute(
        {
            "s.kb.pus": 4,
            "s.kb.users": 3,
            "s.reg.families": 12,
            "s.krs.families": 6,
            "s.krs.target_families": 12,
        }
    )
    out = disclosure.protect(values)
    assert (out["pus"], out["kb_users"], out["cpr"]) == (None, None, None)
    assert (out["families_registered"], out["krs_families"], out["krs_share"]) == (12, 6, 0.5)
    assert out["kb_users_iud"] == 0  # zero reveals nobody


def test_a_method_hidden_alone_takes_the_next_smallest_with_it() -> None:
    # 40 couples use KB: 30 pil, 7 suntik, 3 iud. Hiding iud alone would leave 40 - 30 - 7 = 3.
    values = ind.compute(
        {
            "s.kb.pus": 60,
            "s.kb.users": 40,
            "s.kb.method.pil": 30,
            "s.kb.method.suntik": 7,
            "s.kb.method.iud": 3,
            "s.kb.mkjp_users": 3,
        }
    )
    out = disclosure.protect(values)
    assert out["kb_users_iud"] is None and out["kb_users_suntik"] is None and out["kb_users_pil"] == 30
    # mkjp_users (3) is small itself; the MKJP share and its sides go with it.
    assert out["mkjp_users"] is None and out["mkjp_share"] is None and out["mkjp_share_numerator"] is None
    assert out["kb_users"] == 40 and out["cpr"] == round(40 / 60, 6)


def test_unmet_need_numerator_does_not_give_a_hidden_reason_back() -> None:
    values = ind.compute({"s.kb.pus": 50, "s.kb.nonuse.iat": 2, "s.kb.nonuse.tial": 9, "s.kb.users": 30})
    out = disclosure.protect(values)
    assert out["non_users_iat"] is None
    # iat hidden, tial 9 and the numerator 11 visible would give iat = 2: one of them goes too.
    assert out["non_users_tial"] is None or out["unmet_need_numerator"] is None
    assert out["unmet_need"] is None or out["unmet_need_numerator"] is not None


def _consistent(rng: random.Random) -> dict[str, int]:
    """Measures of a village whose totals are the sums of their parts, as the projection writes them."""
    methods = {m: rng.choice([0, 0, 1, 2, 3, 6, 12]) for m in ("iud", "implant", "mop", "pil", "suntik")}
    reasons = {r: rng.choice([0, 1, 4, 8]) for r in ("hamil", "iat", "tial")}
    categories = {c: rng.choice([0, 1, 3, 7]) for c in ("pus", "remaja", "lansia")}
    users = sum(methods.values())
    return {
        "s.kb.users": users,
        "s.kb.mkjp_users": methods["iud"] + methods["implant"] + methods["mop"],
        "s.kb.pus": users + sum(reasons.values()) + rng.choice([0, 0, 2, 5]),
        **{f"s.kb.method.{m}": n for m, n in methods.items()},
        **{f"s.kb.nonuse.{r}": n for r, n in reasons.items()},
        "s.uppka.members": sum(categories.values()),
        **{f"s.uppka.members.{c}": n for c, n in categories.items()},
    }


def test_no_relation_ever_keeps_exactly_one_hidden_member() -> None:
    rng = random.Random(11)
    for _ in range(300):
        measures = _consistent(rng)
        values = ind.compute(measures)
        out = disclosure.protect(values)
        hidden = _hidden(out, values)
        for total, parts in disclosure.relations(values):
            assert sum(m in hidden for m in (total, *parts)) != 1, (total, parts, measures)
        for name in values:
            if ind.unit_of(name) == "ratio" and out[name] is not None:
                assert name + ind.NUMERATOR not in hidden and name + ind.DENOMINATOR not in hidden


def test_a_village_hidden_alone_among_its_siblings_takes_another_with_it() -> None:
    def village(users: int, pregnant: int) -> dict[str, ind.Value]:
        return ind.compute({"s.kb.pus": users + pregnant, "s.kb.users": users, "s.kb.nonuse.hamil": pregnant})

    rows = {
        "15.71.01.1001": village(2, 38),
        "15.71.01.1002": village(20, 30),
        "15.71.01.1003": village(9, 51),
    }
    out = disclosure.protect_siblings(rows)
    # The district shows 31 users: with only 1001 hidden, 31 - 20 - 9 = 2. The smallest other (9) goes too.
    assert out["15.71.01.1001"]["kb_users"] is None
    assert out["15.71.01.1003"]["kb_users"] is None and out["15.71.01.1003"]["cpr"] is None
    assert out["15.71.01.1002"]["kb_users"] == 20 and out["15.71.01.1002"]["cpr"] == 0.4
    # Inside 1001, users + pregnant non-users = PUS: hiding users alone would leave 40 - 38; 38 goes too.
    assert out["15.71.01.1001"]["non_users_hamil"] is None and out["15.71.01.1001"]["pus"] == 40


def test_siblings_never_leave_one_village_alone_hidden() -> None:
    rng = random.Random(5)
    for _ in range(100):
        rows = {f"15.71.01.{1000 + i}": ind.compute(_consistent(rng)) for i in range(rng.randint(2, 6))}
        out = disclosure.protect_siblings(rows)
        for name in ("kb_users", "pus", "cpr_numerator", "cpr_denominator"):
            hidden = [c for c in rows if out[c][name] is None and rows[c][name]]
            visible_nonzero = [c for c in rows if out[c][name]]
            assert len(hidden) != 1 or not visible_nonzero, (name, rows)
        for code, (total, parts) in itertools.product(rows, disclosure.relations(rows[next(iter(rows))])):
            hidden_cells = _hidden(out[code], rows[code])
            assert sum(m in hidden_cells for m in (total, *parts)) != 1


def test_every_ratio_of_the_catalogue_has_its_sides_declared() -> None:
    ratios = {i.name for i in ind.CATALOGUE if i.unit == "ratio"}
    assert ratios <= set(disclosure.RATIO_SIDES), ratios - set(disclosure.RATIO_SIDES)
    for numerator, denominator in disclosure.RATIO_SIDES.values():
        assert all(p in ind.BY_NAME for p in (*numerator, *denominator))
