"""Per-couple family planning in the projection fold, with hand-computed figures (pure, no I/O)."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from reporting.indicators import disclosure
from reporting.indicators import domain as ind
from reporting.projection import domain as proj

V = "15.71.01.1001"
_ids = itertools.count()


def entry(d: str, patch: dict[str, Any], ts: str | None = None) -> dict[str, Any]:
    return {"d": d, "ts": ts or f"{d}T12:00:00+00:00", "id": f"e{next(_ids)}", "p": patch}


def registered(
    d: str, *, sex: str = "P", birth: str = "1990-06-01", relation: str = "istri", marital: str = "kawin"
) -> dict[str, Any]:
    patch = {
        "registered": True,
        "village": V,
        "pus": sex == "P" and marital == "kawin",
        "sex": sex,
        "birth_date": birth,
        "marital_status": marital,
        "relation": relation,
    }
    return entry(d, patch)


def kb(
    since: str,
    method: str | None,
    *,
    mkjp: bool = False,
    reason: str | None = None,
    source: str | None = None,
    prev: str | None = None,
    ts: str | None = None,
) -> dict[str, Any]:
    patch = {
        "village": V,
        "pus": True,
        "is_user": method is not None,
        "method": method,
        "mkjp": mkjp,
        "reason": reason,
        "since": since,
        "source": source,
        "prev_method": prev,
        "prev_mkjp": False,
    }
    return entry(since, patch, ts)


def measures(c: dict[str, int], month: str) -> dict[str, int]:
    """Stock values at the end of `month` (deltas summed up to it) and the month's flows, by measure."""
    out: dict[str, int] = {}
    for k, v in c.items():
        _, grain, start, measure = proj.parse_key(k)
        if grain != "m":
            continue
        m = start.isoformat()[:7]
        if (measure.startswith("s.") and m <= month) or (measure.startswith("f.") and m == month):
            out[measure] = out.get(measure, 0) + v
    return {k: v for k, v in out.items() if v}


def fold(wife: list[dict[str, Any]], *household: list[dict[str, Any]]) -> dict[str, int]:
    return proj.person_contribution(proj.sort_entries(wife), None, [proj.sort_entries(h) for h in household])


def test_a_husbands_vasectomy_makes_the_couple_an_mkjp_user() -> None:
    wife = [registered("2026-01-10")]
    husband = [
        registered("2026-01-10", sex="L", relation="kepala_keluarga"),
        kb("2020-05-01", "mop", mkjp=True),
    ]
    m = measures(fold(wife, husband), "2026-03")
    # One PUS, using through the husband: CPR 1/1, MKJP 1, mCPR 1 (MOP is modern).
    assert m == {
        "s.reg.persons": 1,
        "s.kb.pus": 1,
        "s.kb.users": 1,
        "s.kb.method.mop": 1,
        "s.kb.mkjp_users": 1,
        "s.kb.modern_users": 1,
    }
    # The husband's own fold counts no couple: the couple is counted once, on the wife.
    assert measures(fold(husband, wife), "2026-03") == {"s.reg.persons": 1}


def test_pairing_follows_the_family_card_and_ambiguity_pairs_nobody() -> None:
    head = [registered("2026-01-10", relation="kepala_keluarga")]  # a woman heading the family
    suami = [registered("2026-01-10", sex="L", relation="suami"), kb("2026-01-01", "kondom")]
    assert measures(fold(head, suami), "2026-01")["s.kb.method.kondom"] == 1
    other = [registered("2026-01-10", sex="L", relation="suami"), kb("2026-01-01", "kondom")]
    # Two "suami" on one card: nobody is paired, the wife counts on her own (no) status.
    assert "s.kb.users" not in measures(fold(head, suami, other), "2026-01")
    # A married son is not the husband of the head's wife; a divorced head pairs with nobody.
    son = [registered("2026-01-10", sex="L", relation="anak"), kb("2026-01-01", "kondom")]
    assert "s.kb.users" not in measures(fold([registered("2026-01-10")], son), "2026-01")
    # A married daughter and the son-in-law pair when the card holds one such couple, not with two.
    daughter = [registered("2026-01-10", relation="anak")]
    in_law = [registered("2026-01-10", sex="L", relation="menantu"), kb("2026-01-01", "mop", mkjp=True)]
    assert measures(fold(daughter, in_law), "2026-01")["s.kb.mkjp_users"] == 1
    sister = [registered("2026-01-10", relation="anak")]
    assert "s.kb.users" not in measures(fold(daughter, in_law, sister), "2026-01")
    single = [registered("2026-01-10", sex="L", relation="kepala_keluarga", marital="cerai_hidup")]
    assert "s.kb.users" not in measures(
        fold([registered("2026-01-10")], [*single, kb("2026-01-01", "mop")]), "2026-01"
    )


def test_the_couples_method_prefers_mkjp_then_modern_then_the_wifes() -> None:
    husband = [registered("2026-01-10", sex="L", relation="kepala_keluarga"), kb("2026-01-12", "kondom")]
    both_modern = measures(fold([registered("2026-01-10"), kb("2026-01-11", "pil")], husband), "2026-01")
    assert (both_modern["s.kb.method.pil"], both_modern["s.kb.users"]) == (1, 1)  # the wife's, counted once
    mkjp = measures(fold([registered("2026-01-10"), kb("2026-01-11", "iud", mkjp=True)], husband), "2026-01")
    assert "s.kb.method.kondom" not in mkjp and mkjp["s.kb.mkjp_users"] == 1
    trad = measures(fold([registered("2026-01-10"), kb("2026-01-11", "tradisional")], husband), "2026-01")
    assert trad["s.kb.method.kondom"] == 1 and trad["s.kb.modern_users"] == 1


def test_legacy_mal_tradisional_counts_in_cpr_not_mcpr_and_non_use_reason_is_the_wifes() -> None:
    m = measures(fold([registered("2026-01-10"), kb("2024-01-01", "mal_tradisional")]), "2026-01")
    assert (m["s.kb.users"], m.get("s.kb.modern_users", 0)) == (1, 0)
    husband = [
        registered("2026-01-10", sex="L", relation="kepala_keluarga"),
        kb("2026-01-12", None, reason="hamil"),
    ]
    m = measures(fold([registered("2026-01-10"), kb("2026-01-11", None, reason="tial")], husband), "2026-01")
    assert m["s.kb.nonuse.tial"] == 1 and "s.kb.nonuse.hamil" not in m


def test_a_wife_leaves_pus_in_the_month_she_completes_fifty_and_enters_at_fifteen() -> None:
    wife = [registered("2026-01-10", birth="1976-03-15"), kb("2025-06-01", "suntik", source="swasta")]
    c = fold(wife)
    assert measures(c, "2026-02") == {
        "s.reg.persons": 1,
        "s.kb.pus": 1,
        "s.kb.users": 1,
        "s.kb.method.suntik": 1,
        "s.kb.modern_users": 1,
        "s.kb.mandiri": 1,
    }
    assert measures(c, "2026-03") == {"s.reg.persons": 1}  # 50 on 15 March
    # The registry's sweep repeats her facts on the birthday (pus false): nothing changes, redelivered or late.
    sweep = {**registered("2026-03-15", birth="1976-03-15"), "id": "sweep"}
    sweep["p"]["pus"] = False
    assert fold([*wife, sweep]) == c
    assert fold(proj.add_entry(proj.add_entry(proj.sort_entries(wife), sweep), sweep)) == c
    girl = [registered("2026-01-10", birth="2011-04-20")]  # married at 14, 15 on 20 April 2026
    g = fold(girl)
    assert "s.kb.pus" not in measures(g, "2026-03") and measures(g, "2026-04")["s.kb.pus"] == 1


def test_new_acceptors_and_mkjp_switchers_by_effective_date() -> None:
    # Non-use recorded after registration, then pil from 2 March: a new acceptor in March.
    c = fold([registered("2026-01-10"), kb("2026-01-12", None, reason="iat"), kb("2026-03-02", "pil")])
    assert measures(c, "2026-03")["f.kb.new_acceptors"] == 1
    assert "f.kb.new_acceptors" not in measures(c, "2026-01")
    # A first-ever record of use that began before registration: continuing use, not an acceptance.
    c = fold([registered("2026-01-10"), kb("2025-01-01", "pil"), kb("2026-03-10", "implant", mkjp=True)])
    assert "f.kb.new_acceptors" not in measures(c, "2025-01") | measures(c, "2026-01")
    assert measures(c, "2026-03")["f.kb.mkjp_switchers"] == 1  # pil -> implant
    # A first-ever record of use that began after registration: the registry knew the couple without a method.
    assert (
        measures(fold([registered("2026-01-10"), kb("2026-02-03", "suntik")]), "2026-02")[
            "f.kb.new_acceptors"
        ]
        == 1
    )
    # ... unless its event names a previous method (then only an MKJP one is a switch).
    c = fold([registered("2026-01-10"), kb("2026-02-03", "implant", mkjp=True, prev="pil")])
    assert measures(c, "2026-02").get("f.kb.new_acceptors", 0) == 0
    assert measures(c, "2026-02")["f.kb.mkjp_switchers"] == 1
    # The husband's condom on top of the wife's pill starts nothing: the couple already used a method.
    husband = [registered("2026-01-10", sex="L", relation="kepala_keluarga"), kb("2026-02-01", "kondom")]
    c = fold([registered("2026-01-10"), kb("2025-01-01", "pil")], husband)
    assert "f.kb.new_acceptors" not in measures(c, "2026-02")


def test_kb_lestari_mkjp_is_mkjp_use_begun_before_the_period() -> None:
    old = fold([registered("2026-01-10"), kb("2020-05-01", "iud", mkjp=True)])
    new = fold([registered("2026-01-10"), kb("2025-01-01", "pil"), kb("2026-03-10", "implant", mkjp=True)])
    total: dict[str, int] = {}
    for k, v in itertools.chain(old.items(), new.items()):
        total[k] = total.get(k, 0) + v
    # March: 2 MKJP couples, one of whose use began in March; Q1: the same; April: both continuing.
    for period, lestari in (("2026-03", 1), ("2026-Q1", 1), ("2026-04", 2), ("2026", 1)):
        p = ind.parse_period(period)
        m = resolve(total, p)
        out = ind.compute(m)
        assert out["kb_lestari_mkjp"] == lestari, period
        assert out["kb_lestari_mkjp_share"] == lestari / 2, period


def resolve(c: dict[str, int], p: ind.Period) -> dict[str, int]:
    """What the indicator query reads for a period: stocks at its end, flows over it, distinct at its grain."""
    out: dict[str, int] = {}
    for k, v in c.items():
        _, grain, start, measure = proj.parse_key(k)
        take = (
            (measure.startswith("s.") and grain == "m" and start <= p.last)
            or (measure.startswith("f.") and grain == "m" and p.start <= start <= p.last)
            or (measure.startswith("d.") and grain == p.grain and start == p.start)
        )
        if take:
            out[measure] = out.get(measure, 0) + v
    return out


def test_family_planning_ratios_hand_computed() -> None:
    # 40 PUS couples: 26 users, 22 of them on a modern method, 11 MKJP (3 of them new in the period),
    # 4 from a private service; IAT 5, TIAL 3.
    m = {
        "s.kb.pus": 40,
        "s.kb.users": 26,
        "s.kb.modern_users": 22,
        "s.kb.mkjp_users": 11,
        "d.kb.mkjp_new": 3,
        "s.kb.mandiri": 4,
        "s.kb.nonuse.iat": 5,
        "s.kb.nonuse.tial": 3,
        "f.kb.new_acceptors": 2,
        "f.kb.mkjp_switchers": 1,
    }
    out = ind.compute(m)
    assert (out["cpr"], out["mcpr"], out["unmet_need"]) == (0.65, 0.55, 0.2)
    assert (out["mcpr_numerator"], out["mcpr_denominator"]) == (22, 40)
    assert (out["kb_lestari_mkjp"], out["kb_lestari_mkjp_share"]) == (8, round(8 / 26, 6))
    assert (out["kb_mandiri"], out["kb_mandiri_share"]) == (4, round(4 / 26, 6))
    assert (out["kb_new_acceptors"], out["mkjp_switchers"]) == (2, 1)
    assert set(ind.small_numbers(out)) == set()  # n = 40 and 26
    hidden = disclosure.protect(ind.compute({"s.kb.pus": 30, "s.kb.users": 20, "s.kb.modern_users": 3}))
    assert hidden["mcpr"] is None and hidden["mcpr_numerator"] is None and hidden["cpr"] == round(20 / 30, 6)
    assert all(ind.label(n, "id") != n for n in ("mcpr", "kb_new_acceptors", "kb_lestari_mkjp_share"))


def test_a_members_kb_change_known_after_the_join_survives_the_joins_snapshot() -> None:
    # Joined 10 March (known then) as a non-user; the KB change effective 2 March was learnt on 20 March.
    join = entry(
        "2026-03-10",
        {"active": True, "village": V, "category": "pus", "kb_user": False, "mkjp": False, "method": None},
        "2026-03-10T09:00:00+00:00",
    )
    change = entry(
        "2026-03-02", {"kb_user": True, "mkjp": False, "method": "pil"}, "2026-03-20T09:00:00+00:00"
    )
    c = proj.member_contribution(proj.sort_entries([join, change]))
    assert measures(c, "2026-03") == {
        "s.uppka.members": 1,
        "s.uppka.members.pus": 1,
        "s.uppka.members_kb_users": 1,
        "s.uppka.members_pus_kb_users": 1,
        "s.uppka.members_kb.pil": 1,
    }
    # A change known before the join is what the join's snapshot already reflects: the snapshot wins.
    early = {**change, "ts": "2026-03-03T09:00:00+00:00"}
    c = proj.member_contribution(proj.sort_entries([join, early]))
    assert measures(c, "2026-03") == {"s.uppka.members": 1, "s.uppka.members.pus": 1}
    # Participation is over PUS members: 1 PUS user of 2 PUS members (a remaja member is not counted).
    out = ind.compute({"s.uppka.members": 3, "s.uppka.members.pus": 2, "s.uppka.members_pus_kb_users": 1})
    assert out["uppka_members_kb_participation"] == 0.5
    assert out["uppka_members_kb_participation_denominator"] == 2


def test_settle_refolds_the_wife_when_only_her_husbands_status_changes() -> None:
    wife = proj.Tracked.of("person", "w", "family:f", [registered("2026-01-10")], {})
    wife.contribution = proj.person_contribution(wife.timeline(), None, [])
    husband = proj.Tracked.of(
        "person", "h", "family:f", [registered("2026-01-10", sex="L", relation="kepala_keluarga")], {}
    )
    entities = {("person", "h"): husband}
    proj.apply_steps(
        entities, [proj.Record("person", "h", kb("2026-02-01", "mop", mkjp=True), "family:f")], 4
    )
    assert proj.households(entities) == ["family:f"]
    proj.add_household(entities, {("person", "w"): ("family:f", wife.timeline(), wife.contribution)})
    assert entities[("person", "w")].context and entities[("person", "w")].slot == 4
    deltas, rows = proj.settle(entities, {})
    feb = proj.key(proj.Place(V), "m", date(2026, 2, 1), "s.kb.mkjp_users")
    assert deltas[4][feb] == 1
    assert {t.entity_id for t, _, _ in rows} == {"h", "w"}  # the wife's figures changed: saved


def test_openapi_states_the_definitions() -> None:
    from reporting.config import Settings
    from reporting.main import create_app

    app = create_app(Settings(database_url="postgresql+asyncpg://u:p@127.0.0.1:1/unused"))
    paths = app.openapi()["paths"]
    for path in ("/v1/regions/{code}/summary", "/v1/indicators/{name}/series"):
        text = paths[path]["get"]["description"]
        assert "mcpr = kb_modern_users / pus" in text and "`kb_lestari_mkjp` (count)" in text
        assert "uppka_members_pus_kb_users / uppka_members_pus" in text
