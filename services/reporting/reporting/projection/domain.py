"""Pure projection rules: fold an entity's event timeline into what it contributes to the fact table.

A contribution maps a key (place, grain, period start, measure) to an integer. Measure names carry their kind:
`s.` stocks (stored as monthly deltas: +1 in the month a state begins, -1 in the month it ends), `f.` flows
(summed over the months of a period) and `d.` distinct counts (stored per month, quarter and year). Because the
whole timeline is folded in date order every time, late and out-of-order events land where they belong, and a
replay from the beginning gives the same numbers as incremental application.

Family planning is counted per couple, on the wife's person entity, from her timeline and her husband's: a change
to any person of a family re-folds the family's other persons in the same batch (`households`); a family's
registry events share its partition key, so that fold stays with one consumer.
"""

from __future__ import annotations

import calendar
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from shared import ages, uppka_reporting
from shared.events.vocab import MODERN_METHODS

NATIONAL = "ID"
LEVEL_NATIONAL, LEVEL_KAMPUNG_KB, LEVEL_KITCHEN = 0, 5, 6
# The stocks kept as at each month's end (rep_place_stock) per place level: a kitchen's opening and
# beneficiaries, and the eligible DASHAT targets of a Kampung KB area (indicators.domain.ELIGIBLE_MEASURES).
KITCHEN_STOCKS = ("s.dashat.kitchens_active", "s.dashat.beneficiaries")
AREA_STOCKS = ("s.reg.catin_target", "s.reg.pregnant", "s.reg.breastfeeding", "s.stunting.open_cases")
GRAINS = ("m", "q", "y")
STUNTED_CLASSES = frozenset({"stunted", "severely_stunted"})

Entry = dict[str, Any]
Contribution = dict[str, int]


@dataclass(frozen=True)
class Place:
    """Where a contribution lands: a Kemendagri code (any level) plus an optional Kampung KB and kitchen."""

    code: str
    kampung_kb: str | None = None
    kitchen: str | None = None


def period_start(d: date, grain: str) -> date:
    """First day of the month, quarter or year containing `d`."""
    if grain == "m":
        return d.replace(day=1)
    if grain == "q":
        return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    return date(d.year, 1, 1)


def key(place: Place, grain: str, start: date, measure: str) -> str:
    return "|".join(
        (place.code, place.kampung_kb or "", place.kitchen or "", grain, start.isoformat(), measure)
    )


@functools.lru_cache(maxsize=1 << 16)
def parse_key(k: str) -> tuple[Place, str, date, str]:
    code, kkb, kitchen, grain, start, measure = k.split("|", 5)
    return Place(code, kkb or None, kitchen or None), grain, date.fromisoformat(start), measure


def level_of(region: str) -> int:
    """The level of a fact row's region: the nation, an administrative code (its number of parts), a Kampung KB
    area, a kitchen. What the rollup writes a row at (`regions_of`) and what the reads find it by."""
    if region == NATIONAL:
        return LEVEL_NATIONAL
    if region.startswith("kkb:"):
        return LEVEL_KAMPUNG_KB
    if region.startswith("dapur:"):
        return LEVEL_KITCHEN
    return region.count(".") + 1


@functools.lru_cache(maxsize=1 << 14)
def regions_of(place: Place) -> tuple[tuple[str, int], ...]:
    """The fact rows one place rolls up into: itself, every ancestor, the nation, its Kampung KB and kitchen."""
    parts = place.code.split(".")
    regions = [NATIONAL, *(".".join(parts[:i]) for i in range(1, len(parts) + 1))]
    if place.kampung_kb:
        regions.append(f"kkb:{place.kampung_kb}")
    if place.kitchen:
        regions.append(f"dapur:{place.kitchen}")
    return tuple((region, level_of(region)) for region in regions)


def diff(old: Mapping[str, int], new: Mapping[str, int]) -> dict[str, int]:
    """What to add to the facts to move from `old` to `new` (zero entries dropped)."""
    out: dict[str, int] = {}
    for k in set(old) | set(new):
        delta = new.get(k, 0) - old.get(k, 0)
        if delta:
            out[k] = delta
    return out


def expand(delta: Mapping[str, int]) -> dict[tuple[str, str, date, str], tuple[int, int]]:
    """Per fact row (region, grain, period start, measure): (level, summed delta)."""
    rows: dict[tuple[str, str, date, str], list[int]] = {}
    for k, v in delta.items():
        place, grain, start, measure = parse_key(k)
        for region, level in regions_of(place):
            row = rows.setdefault((region, grain, start, measure), [level, 0])
            row[1] += v
    return {k: (lvl, v) for k, (lvl, v) in rows.items() if v}


def sort_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Timeline order: effective date, then event time, then event id (deterministic for replays)."""
    return sorted(entries, key=lambda e: (e["d"], e["ts"], e["id"]))


def add_entry(entries: list[Entry], entry: Entry) -> list[Entry]:
    """Add an event to a timeline once (a redelivered event id replaces itself)."""
    return sort_entries([e for e in entries if e["id"] != entry["id"]] + [entry])


class _Acc:
    def __init__(self) -> None:
        self.c: defaultdict[str, int] = defaultdict(int)

    def add(self, place: Place, grain: str, d: date, measure: str, value: int = 1) -> None:
        if value:
            self.c[key(place, grain, period_start(d, grain), measure)] += value

    def result(self) -> Contribution:
        return {k: v for k, v in self.c.items() if v}


StateFn = Callable[[dict[str, Any]], tuple[Place | None, list[tuple[str, int]]]]


def _stocks(acc: _Acc, entries: list[Entry], stock_fn: StateFn) -> dict[str, Any]:
    """Fold patches in order; each state's stock measures hold from its date until the next state's date."""
    state: dict[str, Any] = {}
    previous: tuple[Place | None, list[tuple[str, int]], date] | None = None
    for entry in entries:
        state = {**state, **entry["p"]}
        d = date.fromisoformat(entry["d"])
        place, measures = stock_fn(state)
        if previous is not None:
            p_place, p_measures, _ = previous
            if p_place is not None:
                for m, v in p_measures:
                    acc.add(p_place, "m", d, m, -v)
        if place is not None:
            for m, v in measures:
                acc.add(place, "m", d, m, v)
        previous = (place, measures, d)
    return state


def _place(state: Mapping[str, Any], kkb: str | None, kitchen: str | None = None) -> Place | None:
    village = state.get("village")
    return Place(village, kkb, kitchen) if village else None


def family_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """Families registered (stock, new per month) and families at risk of stunting (KRS) with reasons."""
    acc = _Acc()

    def stock(s: dict[str, Any]) -> tuple[Place | None, list[tuple[str, int]]]:
        if not s.get("registered"):
            return None, []
        ms = [("s.reg.families", 1)]
        # Keluarga sasaran (PUS, pregnant, with a baduta/balita), the KRS denominator; a family at risk is one
        # by definition (events from before the registry published `target` say only that).
        if s.get("target") or s.get("at_risk"):
            ms.append(("s.krs.target_families", 1))
        if s.get("at_risk"):
            ms.append(("s.krs.families", 1))
            ms += [(f"s.krs.reason.{r}", 1) for r in sorted(set(s.get("reasons") or []))]
        return _place(s, s.get("kkb")), ms

    _stocks(acc, entries, stock)
    first = next((e for e in entries if e["p"].get("registered")), None)
    if first is not None:
        state: dict[str, Any] = {}
        for e in entries:
            state = {**state, **e["p"]}
            if e is first:
                break
        place = _place(state, state.get("kkb"))
        if place is not None:
            acc.add(place, "m", date.fromisoformat(first["d"]), "f.reg.new_families")
    return acc.result()


def person_contribution(
    entries: list[Entry], kkb: str | None = None, household: Iterable[list[Entry]] = ()
) -> Contribution:
    """Persons registered and, on a wife in PUS, her couple's KB status (`_couple`)."""
    acc = _Acc()

    def stock(s: dict[str, Any]) -> tuple[Place | None, list[tuple[str, int]]]:
        if not s.get("registered") or s.get("dead") or s.get("gone"):
            return None, []
        return _place(s, kkb), [("s.reg.persons", 1)]

    _stocks(acc, entries, stock)
    _couple(acc, entries, list(household), kkb)
    return acc.result()


def _born_on(m: Mapping[str, Any]) -> date:
    """A measured child's birth date: the measurement day minus its age in days (as the registry computed it)."""
    return date.fromisoformat(m["measured_on"]) - timedelta(days=int(m["age_days"]))


# --- the couple (PUS) as the unit of family planning -------------------------------------------------------
#
# BKKBN counts a PUS (a married couple with the wife aged 15-49) as a KB participant (peserta KB aktif) when
# either partner uses a method: MOP and condoms are usually the husband's. The couple is counted once, on the
# wife's person entity; her husband's timeline comes in as one of the `household` timelines (the other persons
# of her family, all keyed by the family and so folded by the same consumer).

PUS_MIN_YEARS = 15  # BKKBN: PUS = married couple with the wife aged 15-49 (the registry's rules.PUS_*_AGE)
PUS_MAX_YEARS = 49


@dataclass(frozen=True)
class CoupleState:
    """What a wife's couple counts as on one day (`place` None: she is not counted anywhere)."""

    place: Place | None
    pus: bool
    user: bool
    method: str | None = None
    mkjp: bool = False
    modern: bool = False
    mandiri: bool = False
    reason: str | None = None
    known: bool = False  # the wife is registered (the registry knows the couple)
    recorded: bool = False  # a KB status of the wife or her husband is on record
    since: date | None = None  # when the couple's method began (its KB status's effective date)
    previous_method: str | None = None  # as the method's KB event states it
    previous_mkjp: bool = False
    mkjp_since: date | None = None  # when the couple's current run of MKJP use began

    def measures(self) -> list[tuple[str, int]]:
        if self.place is None or not self.pus:
            return []
        ms = [("s.kb.pus", 1)]
        if self.user:
            ms.append(("s.kb.users", 1))
            if self.method:
                ms.append((f"s.kb.method.{self.method}", 1))
            if self.mkjp:
                ms.append(("s.kb.mkjp_users", 1))
            if self.modern:
                ms.append(("s.kb.modern_users", 1))
            if self.mandiri:
                ms.append(("s.kb.mandiri", 1))
        elif self.reason:
            ms.append((f"s.kb.nonuse.{self.reason}", 1))
        return ms


def _states(entries: list[Entry]) -> list[tuple[date, dict[str, Any]]]:
    """A person's state after each day of its timeline (entries in timeline order)."""
    out: list[tuple[date, dict[str, Any]]] = []
    state: dict[str, Any] = {}
    for e in entries:
        state = {**state, **e["p"]}
        d = date.fromisoformat(e["d"])
        if out and out[-1][0] == d:
            out[-1] = (d, state)
        else:
            out.append((d, state))
    return out


def _at(states: list[tuple[date, dict[str, Any]]], day: date) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for d, s in states:
        if d > day:
            break
        state = s
    return state


def _present(s: Mapping[str, Any]) -> bool:
    return bool(s.get("registered")) and not s.get("dead") and not s.get("gone")


def is_pus(s: Mapping[str, Any], day: date) -> bool:
    """A married woman aged 15-49 on the day (completed years, shared/ages), alive and in the registry.

    Derived from the person's facts, so a wife leaves PUS in the month she completes 50 (and a married girl
    enters at 15) without an event saying so; the registry's daily sweep says the same, and as the facts it
    repeats do not change, a redelivered or late sweep event changes nothing. A timeline without the facts
    (a KB status seen before the person's registration) keeps the registry's `pus` flag.
    """
    if not _present(s):
        return False
    birth = s.get("birth_date")
    if birth is None or s.get("marital_status") is None:
        return bool(s.get("pus"))
    age = ages.completed_years(date.fromisoformat(birth), day)
    return s.get("sex") == "P" and s["marital_status"] == "kawin" and PUS_MIN_YEARS <= age <= PUS_MAX_YEARS


# The family card (KK) names each person's relation to the head, not who is married to whom: a wife's husband
# is read from her relation. `istri` is the head's wife (several istri all pair with the head); a woman who
# heads the family pairs with the `suami`; a married daughter (`anak`) pairs with the son-in-law (`menantu`)
# and a daughter-in-law with the son, when the card holds exactly one such married woman and one such man.
_HUSBAND_RELATION = {
    "istri": "kepala_keluarga",
    "kepala_keluarga": "suami",
    "anak": "menantu",
    "menantu": "anak",
}
_ONE_COUPLE_RELATIONS = frozenset({"anak", "menantu"})


def _married(s: Mapping[str, Any], sex: str, relation: str) -> bool:
    return (
        _present(s)
        and s.get("sex") == sex
        and s.get("marital_status") == "kawin"
        and s.get("relation") == relation
    )


def husband_of(wife: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The wife's husband among the other persons of her family on one day, None when none or ambiguous.

    Only a married (`kawin`) man present in the family qualifies. Two candidates (two `suami`; two married
    sons-in-law, or two married daughters, so who is whose is unknown) pair with nobody: the wife then counts
    on her own KB status, as before this rule. Other relations (cucu, famili_lain, ...) are not paired.
    """
    relation = str(wife.get("relation"))
    partner = _HUSBAND_RELATION.get(relation)
    if partner is None:
        return None
    others = list(others)
    found = [o for o in others if _married(o, "L", partner)]
    if relation in _ONE_COUPLE_RELATIONS and any(_married(o, "P", relation) for o in others):
        return None  # another married woman of the same relation: which couple is whose is unknown
    return found[0] if len(found) == 1 else None


def _rank(s: Mapping[str, Any]) -> tuple[int, int]:
    method = s.get("method")
    return (int(bool(s.get("mkjp"))), int(method in MODERN_METHODS))


def couple_state(
    wife: Mapping[str, Any], husband: Mapping[str, Any] | None, day: date, kkb: str | None
) -> CoupleState:
    """The couple's KB status on a day: a user when either partner uses a method.

    The couple's method is the MKJP one when either uses MKJP, else a modern one over a traditional one, else
    the wife's (so mCPR counts a couple whenever either partner uses a modern method); KB Mandiri follows the
    chosen method's service source; the reason for non-use is the wife's when neither uses a method.
    """
    users = [s for s in (wife, husband) if s is not None and s.get("is_user")]
    recorded = any(s is not None and "is_user" in s for s in (wife, husband))
    place = _place(wife, kkb) if _present(wife) else None
    pus = is_pus(wife, day)
    if not users:
        return CoupleState(
            place, pus, False, reason=wife.get("reason"), known=_present(wife), recorded=recorded
        )
    chosen = max(users, key=_rank)  # max keeps the first (the wife's) of equal rank
    method = chosen.get("method")
    return CoupleState(
        place,
        pus,
        True,
        method=method,
        mkjp=bool(chosen.get("mkjp")),
        modern=method in MODERN_METHODS,
        mandiri=chosen.get("source") == "swasta",
        known=_present(wife),
        recorded=True,
        since=date.fromisoformat(chosen["since"]) if chosen.get("since") else None,
        previous_method=chosen.get("prev_method"),
        previous_mkjp=bool(chosen.get("prev_mkjp")),
    )


def _couple(acc: _Acc, entries: list[Entry], household: list[list[Entry]], kkb: str | None) -> None:
    """The couple's stocks (PUS, users by method, MKJP, modern, mandiri, non-use by reason) and flows.

    Evaluated on every day either partner's timeline changes and on the wife's 15th and 50th birthdays.
    Flows are dated by the KB status's `since` (its effective date) and counted only when the wife is in PUS:
    - `f.kb.new_acceptors` (peserta KB baru): the couple starts a method after not using one: after a
      recorded non-use status, or, for a first-ever record, when its `since` lies after the wife's
      registration (the registry knew the couple without a method). A first record whose `since` is on or
      before the registration is a record of continuing use, not an acceptance; so is a first record whose
      event names a previous method.
    - `f.kb.mkjp_switchers`: the couple goes from a non-MKJP method to an MKJP one (for a first record in the
      timeline: its event names a previous non-MKJP method).
    - `d.kb.mkjp_new` (per month, quarter, year): a couple whose MKJP use began in the period and who still
      counts as MKJP at its end; KB Lestari MKJP (continuing MKJP use, begun before the period) is the MKJP
      stock at the period's end less this.
    """
    wife_states = _states(entries)
    if not any(_may_be_wife(s) for _, s in wife_states):
        return  # a man, or a woman never married in her timeline (or no timeline): no couple to count
    others = [_states(h) for h in household if h]
    # Only a man's timeline (a possible husband) changes the couple; a woman's only decides ambiguity.
    days = {d for d, _ in wife_states} | {
        d for o in others if any(s.get("sex") == "L" for _, s in o) for d, _ in o
    }
    birth = wife_states[-1][1].get("birth_date")
    if birth is not None:
        born = date.fromisoformat(birth)
        days |= {ages.reaches_age_on(born, PUS_MIN_YEARS), ages.reaches_age_on(born, PUS_MAX_YEARS + 1)}
    timeline: list[tuple[date, CoupleState]] = []
    previous: CoupleState | None = None
    for day in sorted(days):
        wife = _at(wife_states, day)
        if not wife:
            continue
        state = couple_state(wife, husband_of(wife, [_at(o, day) for o in others]), day, kkb)
        if state.mkjp:
            run = previous.mkjp_since if previous is not None and previous.mkjp else state.since
            state = replace(state, mkjp_since=run or day)
        measures = state.measures()
        if previous is None or previous.place != state.place or previous.measures() != measures:
            if previous is not None and previous.place is not None:
                for m, v in previous.measures():
                    acc.add(previous.place, "m", day, m, -v)
            if state.place is not None:
                for m, v in measures:
                    acc.add(state.place, "m", day, m, v)
        if state.place is not None and state.pus and state.user and state.since == day:
            if not (previous is not None and previous.user) and _new_acceptor(previous, state):
                acc.add(state.place, "m", day, "f.kb.new_acceptors")
            if state.mkjp and _switched(previous, state):
                acc.add(state.place, "m", day, "f.kb.mkjp_switchers")
        timeline.append((day, state))
        previous = state
    runs = sorted({s.mkjp_since for _, s in timeline if s.mkjp_since is not None})
    counted: set[tuple[str, date]] = set()
    for start in runs:
        for grain in GRAINS:
            first, end = period_start(start, grain), _period_end(start, grain)
            held = _state_on(timeline, end)
            if (
                held is not None
                and held.place is not None
                and held.pus
                and held.mkjp_since is not None
                and first <= held.mkjp_since <= end
                and (grain, first) not in counted
            ):
                counted.add((grain, first))
                acc.add(held.place, grain, first, "d.kb.mkjp_new")


def _may_be_wife(s: Mapping[str, Any]) -> bool:
    return s.get("sex") != "L" and s.get("marital_status") in (None, "kawin")


def _new_acceptor(previous: CoupleState | None, state: CoupleState) -> bool:
    if previous is None or not previous.known:
        return False  # started before the registry knew the couple: continuing use
    if previous.recorded:
        return True  # after a recorded non-use status
    return state.previous_method is None  # a first-ever record: new unless its event names an earlier method


def _switched(previous: CoupleState | None, state: CoupleState) -> bool:
    if previous is not None and previous.user:
        return not previous.mkjp
    if previous is not None and previous.recorded:
        return False  # from non-use: an acceptor, not a switcher
    return state.previous_method is not None and not state.previous_mkjp


def _period_end(d: date, grain: str) -> date:
    start = period_start(d, grain)
    last = ages.add_months(start, {"m": 1, "q": 3, "y": 12}[grain] - 1)
    return last.replace(day=calendar.monthrange(last.year, last.month)[1])


def _state_on(timeline: list[tuple[date, CoupleState]], day: date) -> CoupleState | None:
    found = None
    for d, s in timeline:
        if d > day:
            break
        found = s
    return found


def child_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """Baduta and balita measured / stunted / severely stunted, each child once per month, quarter and year.

    Only active (not corrected, not retracted), non-flagged measurements count; the latest measurement in the
    period decides the child's status. Baduta (< 24 completed months) and balita (< 60, SSGI's under-five
    headline) use the one definition of shared/ages.py on the measurement day.
    """
    acc = _Acc()
    inactive = {e["p"]["measurement_id"] for e in entries if e["p"].get("inactive")}
    inactive |= {e["p"]["corrects"] for e in entries if e["p"].get("corrects")}
    valid = [
        e["p"]
        for e in entries
        if e["p"].get("measured")
        and e["p"]["measurement_id"] not in inactive
        and e["p"].get("has_haz")
        and not e["p"].get("haz_flag")
    ]
    bands = (
        (
            "d.stunting",
            [m for m in valid if ages.is_baduta(_born_on(m), date.fromisoformat(m["measured_on"]))],
        ),
        (
            "d.stunting.balita",
            [m for m in valid if ages.is_balita(_born_on(m), date.fromisoformat(m["measured_on"]))],
        ),
    )
    for prefix, measurements in bands:
        for grain in GRAINS:
            latest: dict[date, dict[str, Any]] = {}
            for m in measurements:  # entries are in date order, so the last one wins
                latest[period_start(date.fromisoformat(m["measured_on"]), grain)] = m
            for start, m in latest.items():
                place = Place(m["village"], kkb)
                acc.add(place, grain, start, f"{prefix}.measured")
                if m.get("haz_class") in STUNTED_CLASSES:
                    acc.add(place, grain, start, f"{prefix}.stunted")
                if m.get("haz_class") == "severely_stunted":
                    acc.add(place, grain, start, f"{prefix}.severe")
    _haz_follow_up(acc, entries, inactive, kkb)
    return acc.result()


HAZ_CATEGORIES = frozenset({"baduta_stunting", "balita_stunting"})


def _haz_follow_up(acc: _Acc, entries: list[Entry], inactive: set[str], kkb: str | None) -> None:
    """HAZ change of a child enrolled at a DASHAT kitchen, as a stock: latest HAZ minus HAZ at enrolment.

    Baseline = the latest valid measurement on or before the enrolment start; each later measurement moves the
    child's change (in thousandths of a z-score) in its month, so a period's value is the change by its end.
    """
    enrolment = next(
        (e["p"] for e in entries if e["p"].get("enrol_start") and e["p"].get("category") in HAZ_CATEGORIES),
        None,
    )
    if enrolment is None:
        return
    valid = [
        e["p"]
        for e in entries
        if e["p"].get("measured")
        and e["p"]["measurement_id"] not in inactive
        and e["p"].get("haz") is not None
        and not e["p"].get("haz_flag")
    ]
    start = enrolment["enrol_start"]
    before = [m for m in valid if m["measured_on"] <= start]
    if not before:
        return
    baseline = float(before[-1]["haz"])
    place = Place(enrolment["village"], kkb, enrolment.get("kitchen"))
    previous: int | None = None
    for m in (m for m in valid if m["measured_on"] > start):
        change = round((float(m["haz"]) - baseline) * 1000)
        d = date.fromisoformat(m["measured_on"])
        if previous is None:
            acc.add(place, "m", d, "s.dashat.haz_children")
        acc.add(place, "m", d, "s.dashat.haz_change_milli", change - (previous or 0))
        previous = change


def case_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """New stunting cases, resolutions and retractions; a retracted case never counts as new or open."""
    acc = _Acc()
    detected = next((e for e in entries if e["p"].get("detected")), None)
    resolved = next((e for e in entries if e["p"].get("resolved")), None)
    retracted = next((e for e in entries if e["p"].get("retracted")), None)
    if retracted is not None:
        acc.add(
            Place(retracted["p"]["village"], kkb),
            "m",
            date.fromisoformat(retracted["d"]),
            "f.stunting.retracted",
        )
        return acc.result()
    if detected is not None:
        place = Place(detected["p"]["village"], kkb)
        d = date.fromisoformat(detected["d"])
        acc.add(place, "m", d, "f.stunting.new_cases")
        acc.add(place, "m", d, f"f.stunting.new_cases.{detected['p']['severity']}")
        acc.add(place, "m", d, "s.stunting.open_cases")
        if resolved is not None:
            acc.add(place, "m", date.fromisoformat(resolved["d"]), "s.stunting.open_cases", -1)
    if resolved is not None:
        acc.add(
            Place(resolved["p"]["village"], kkb),
            "m",
            date.fromisoformat(resolved["d"]),
            "f.stunting.resolved",
        )
    return acc.result()


def group_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """UPPKA groups existing, active (due a report) and reporting, from the day they were founded.

    A group counts from its `founded_on` (else the day it was registered), not from when its event arrived, so
    groups founded before the reporting window fill the past months. Its reports for the months it was due
    (shared/uppka_reporting.py: founded and active at the month's end) are counted on time or late in their
    month; groups due are `s.uppka.groups_active`, integrated over a period's months by the reader.
    """
    acc = _Acc()

    def stock(s: dict[str, Any]) -> tuple[Place | None, list[tuple[str, int]]]:
        status = s.get("status")
        if status is None:
            return None, []
        ms: list[tuple[str, int]] = []
        if status != "dissolved":
            ms.append(("s.uppka.groups_existing", 1))
        if status == "active":
            ms.append(("s.uppka.groups_active", 1))
            if s.get("kkb"):
                # The yearly target (1,542 groups) is for Kampung KB groups: its progress counts only those.
                ms.append(("s.uppka.groups_active_kkb", 1))
        return _place(s, s.get("kkb")), ms

    facts = [e for e in entries if not e["p"].get("reported") and not e["p"].get("contributed")]
    started = group_started_on(facts)
    timeline = sort_entries(
        {**e, "d": started.isoformat()} if e["p"].get("registered") and started else e for e in facts
    )
    state = _stocks(acc, timeline, stock)
    reports = [e["p"] for e in entries if e["p"].get("reported")]
    village = state.get("village") or next(
        (e["p"]["village"] for e in entries if e["p"].get("village")), None
    )
    if village:
        place = Place(village, state.get("kkb"))
        months = sorted({p["reported"] for p in reports})
        for grain in GRAINS:
            for start in sorted({period_start(date.fromisoformat(m + "-01"), grain) for m in months}):
                acc.add(place, grain, start, "d.uppka.groups_reporting")
        contributed = {e["p"]["contributed"] for e in entries if e["p"].get("contributed")}
        for grain in GRAINS:
            for start in sorted({period_start(date.fromisoformat(d), grain) for d in contributed}):
                acc.add(place, grain, start, "d.uppka.groups_contributing_dashat")
        changes = [
            (date.fromisoformat(e["d"]), str(e["p"]["status"])) for e in timeline if e["p"].get("status")
        ]
        for p in reports:
            month = date.fromisoformat(p["reported"] + "-01")
            if started is None or not uppka_reporting.is_due(started, changes, month):
                continue
            acc.add(
                place,
                "m",
                month,
                "f.uppka.due_reports_late" if p.get("late") else "f.uppka.due_reports_on_time",
            )
    return acc.result()


def group_started_on(entries: list[Entry]) -> date | None:
    """The day a group counts from: its latest known `founded_on`, else the day it was registered."""
    founded: str | None = None
    registered: str | None = None
    for e in sorted(entries, key=lambda e: (e["ts"], e["id"])):
        if "founded_on" in e["p"]:
            founded = e["p"]["founded_on"]
        if e["p"].get("registered") and registered is None:
            registered = e["d"]
    if founded:
        return date.fromisoformat(founded)
    return date.fromisoformat(registered) if registered else None


MEMBER_KB_FIELDS = ("kb_user", "mkjp", "method")


def known_when(
    entries: list[Entry], fields: Iterable[str], is_snapshot: Callable[[Mapping[str, Any]], bool]
) -> list[Entry]:
    """Fold by what was known when: a snapshot does not override facts learnt after it was taken.

    A snapshot (an UPPKA member's join, which copies the KB status the group knew then) is dated by its
    effective date like every entry; but a status change effective on or before that date and known later
    (its event time after the snapshot's) is news the snapshot could not contain, so the snapshot's copy of
    those fields is dropped and the change stands. Changes effective after the snapshot apply as usual.
    """
    names = tuple(fields)
    changes = [
        (e["d"], datetime.fromisoformat(e["ts"]))
        for e in entries
        if not is_snapshot(e["p"]) and any(f in e["p"] for f in names)
    ]
    out = []
    for e in entries:
        if is_snapshot(e["p"]):
            taken = datetime.fromisoformat(e["ts"])
            if any(d <= e["d"] and ts > taken for d, ts in changes):
                e = {**e, "p": {k: v for k, v in e["p"].items() if k not in names}}
        out.append(e)
    return out


def _is_join(p: Mapping[str, Any]) -> bool:
    # A join sets the member active with its category; a later category change carries the category alone.
    return "category" in p and p.get("active") is True


def member_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """UPPKA members by category, their KB participation by method, and MKJP users.

    The join's KB snapshot gives way to a KB change known later (`known_when`). The category is the join's until
    a `category_changed` (a birthday, the registry's PUS flip) moves it on its day. PUS members using KB are
    counted apart: BKKBN's KB participation is over PUS (remaja and lansia members are not couples of
    reproductive age), so `uppka_members_kb_participation` = PUS members using KB / PUS members.
    """
    acc = _Acc()

    def stock(s: dict[str, Any]) -> tuple[Place | None, list[tuple[str, int]]]:
        if not s.get("active"):
            return None, []
        ms = [("s.uppka.members", 1), (f"s.uppka.members.{s.get('category')}", 1)]
        if s.get("kb_user"):
            ms.append(("s.uppka.members_kb_users", 1))
            if s.get("category") == "pus":
                ms.append(("s.uppka.members_pus_kb_users", 1))
            if s.get("method"):
                ms.append((f"s.uppka.members_kb.{s['method']}", 1))
            if s.get("mkjp"):
                ms.append(("s.uppka.members_mkjp", 1))
        return _place(s, kkb), ms

    _stocks(acc, known_when(entries, MEMBER_KB_FIELDS, _is_join), stock)
    return acc.result()


REPORT_FIGURES = (
    "omzet",
    "costs",
    "profit",
    "members_present",
    "active_members",
    "new_kb_acceptors",
    "mkjp_switchers",
)


def report_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """A monthly UPPKA report's figures; the highest amendment replaces the earlier ones."""
    acc = _Acc()
    if not entries:
        return {}
    latest = max(entries, key=lambda e: (e["p"].get("amendment_no", 0), e["ts"], e["id"]))["p"]
    place = Place(latest["village"], kkb)
    d = date.fromisoformat(latest["period"] + "-01")
    acc.add(place, "m", d, "f.uppka.reports")
    if latest.get("late"):
        acc.add(place, "m", d, "f.uppka.reports_late")
    for figure in REPORT_FIGURES:
        acc.add(place, "m", d, f"f.uppka.{figure}", int(latest[figure]))
    return acc.result()


def target_contribution(entries: list[Entry], kkb: str | None = None) -> Contribution:
    """A province's yearly UPPKA group target (the latest one set wins)."""
    if not entries:
        return {}
    latest = max(entries, key=lambda e: (e["ts"], e["id"]))["p"]
    acc = _Acc()
    acc.add(
        Place(latest["province"]),
        "y",
        date(int(latest["year"]), 1, 1),
        "d.uppka.target_groups",
        int(latest["target"]),
    )
    return acc.result()


def kitchen_contribution(
    entries: list[Entry], kkb: str | None = None, kitchen: str | None = None
) -> Contribution:
    """DASHAT kitchens active (opened, not closed) and their daily capacity."""
    acc = _Acc()

    def stock(s: dict[str, Any]) -> tuple[Place | None, list[tuple[str, int]]]:
        if not s.get("open"):
            return None, []
        return _place(s, s.get("kkb"), kitchen), [
            ("s.dashat.kitchens_active", 1),
            ("s.dashat.capacity", int(s.get("capacity") or 0)),
        ]

    timeline = [e for e in entries if "ledger_month" not in e["p"]]
    _stocks(acc, timeline, stock)
    _low_runway(acc, entries, kkb, kitchen)
    return acc.result()


RUNWAY_THRESHOLD_DAYS = 30.0


def runway_days(balance: int, spent: int, days: int) -> float | None:
    """Days the balance lasts at a month's spending rate; None when nothing was spent (no burn)."""
    if spent <= 0 or days <= 0:
        return None
    return max(balance, 0) / (spent / days)


def _open_at(timeline: list[Entry], day: date) -> tuple[bool, dict[str, Any]]:
    state: dict[str, Any] = {}
    for e in timeline:
        if date.fromisoformat(e["d"]) > day:
            break
        state = {**state, **e["p"]}
    return bool(state.get("open")), state


def _low_runway(acc: _Acc, entries: list[Entry], kkb: str | None, kitchen: str | None) -> None:
    """An open kitchen whose balance at a period's end lasts under 30 days at the spending of its last month."""
    timeline = [e for e in entries if "ledger_month" not in e["p"]]
    months = sorted(
        (e["p"] for e in entries if "ledger_month" in e["p"]), key=lambda p: str(p["ledger_month"])
    )
    balance = 0
    for p in months:
        balance += int(p["funds"]) - int(p["spent"])
        month = date.fromisoformat(p["ledger_month"] + "-01")
        days = calendar.monthrange(month.year, month.month)[1]
        runway = runway_days(balance, int(p["spent"]), days)
        is_open, state = _open_at(timeline, month.replace(day=days))
        if runway is None or runway >= RUNWAY_THRESHOLD_DAYS or not is_open:
            continue
        place = _place(state, state.get("kkb"), kitchen)
        if place is None:
            continue
        for grain in GRAINS:
            # The status of a quarter or year is the one of its last month.
            last = {"m": month.month, "q": 3 * ((month.month - 1) // 3) + 3, "y": 12}[grain]
            if month.month == last:
                acc.add(place, grain, month, "d.dashat.kitchens_low_runway")


def enrolment_contribution(
    entries: list[Entry], kkb: str | None = None, kitchen: str | None = None
) -> Contribution:
    """Beneficiaries enrolled (stock by category), enrolments by source and exits by reason."""
    acc = _Acc()

    def stock(s: dict[str, Any]) -> tuple[Place | None, list[tuple[str, int]]]:
        if not s.get("enrolled") or s.get("exited"):
            return None, []
        return _place(s, kkb, kitchen), [
            ("s.dashat.beneficiaries", 1),
            (f"s.dashat.beneficiaries.{s['category']}", 1),
        ]

    state = _stocks(acc, entries, stock)
    place = _place(state, kkb, kitchen)
    if place is None:
        return acc.result()
    for e in entries:
        p, d = e["p"], date.fromisoformat(e["d"])
        if p.get("enrolled"):
            acc.add(place, "m", d, "f.dashat.enrolled")
            acc.add(place, "m", d, f"f.dashat.enrolled.{p['category']}")
            acc.add(place, "m", d, f"f.dashat.enrolled_source.{p['source']}")
        if p.get("exited"):
            acc.add(place, "m", d, "f.dashat.exited")
            acc.add(place, "m", d, f"f.dashat.exited.{p['reason']}")
    return acc.result()


def flow_contribution(
    entries: list[Entry], kkb: str | None = None, kitchen: str | None = None
) -> Contribution:
    """A one-off event's measures (meals, funds, expenses, waitlist, contributions, activities)."""
    acc = _Acc()
    for e in entries:
        p = e["p"]
        place = Place(p["village"], kkb, kitchen)
        for measure, value in p["measures"].items():
            acc.add(place, "m", date.fromisoformat(e["d"]), measure, int(value))
    return acc.result()


def contribution(kind: str, entries: list[Entry], kkb: str | None, kitchen: str | None) -> Contribution:
    """Dispatch on the entity kind."""
    entries = sort_entries(entries)
    if kind == "kitchen":
        return kitchen_contribution(entries, kkb, kitchen)
    if kind == "enrolment":
        return enrolment_contribution(entries, kkb, kitchen)
    if kind == "flow":
        return flow_contribution(entries, kkb, kitchen)
    fn: dict[str, Callable[[list[Entry], str | None], Contribution]] = {
        "family": family_contribution,
        "person": person_contribution,
        "child": child_contribution,
        "case": case_contribution,
        "group": group_contribution,
        "member": member_contribution,
        "report": report_contribution,
        "target": target_contribution,
    }
    return fn[kind](entries, kkb)


# --- applying a batch of events -------------------------------------------------------------------------
#
# Handlers turn each event into steps (pure); `Timelines` applies the steps of a whole batch to the timelines
# loaded for it and settles every touched entity once: new contribution, difference to add to the facts.
# One event is a batch of one, so the per-event fallback and the batch path share every rule.

OWNER_KINDS = frozenset({"family", "group", "kitchen"})
# Timelines that events of two topics write: a child's measurements (registry, keyed by family) and its
# DASHAT enrolment (keyed by kitchen). Every other entity is written by the consumer of one partition.
SHARED_KINDS = frozenset({"child"})
PRODUCERS = ("registry", "uppka", "dashat")
EntityKey = tuple[str, str]


def slot_of(producer: str, partition: int) -> int:
    """The fact slot written by the consumer of one topic partition (no two partitions share a slot)."""
    return PRODUCERS.index(producer) * 1000 + partition


@dataclass(frozen=True)
class Record:
    """Add one entry to an entity's timeline; an `owner` named by the event replaces the stored one."""

    kind: str
    entity_id: str
    entry: Entry
    owner: str | None = None


@dataclass(frozen=True)
class LedgerAdd:
    """Add funds and spending to a kitchen's ledger entry of one month (one entry per month, for its runway)."""

    kitchen_id: str
    month: str
    funds: int
    spent: int
    ts: str
    event_id: str


@dataclass(frozen=True)
class PlaceSeen:
    """Where a Kampung KB or kitchen lies, as of an event's time."""

    region: str
    village_code: str
    kampung_kb: str | None
    seen_at: datetime


@dataclass(frozen=True)
class EnrolmentSeen:
    """A DASHAT enrolment row (for wait times)."""

    row: dict[str, Any]


Step = Record | LedgerAdd | PlaceSeen | EnrolmentSeen


def kkb_of(entries: Iterable[Entry]) -> str | None:
    """An owner's (family, group, kitchen) Kampung KB at the end of its timeline."""
    state: dict[str, Any] = {}
    for e in sort_entries(entries):
        state.update(e["p"])
    kkb = state.get("kkb")
    return str(kkb) if kkb else None


def kitchen_of(kind: str, entity_id: str, owner_id: str | None) -> str | None:
    if kind == "kitchen":
        return entity_id
    if owner_id is not None and owner_id.startswith("kitchen:"):
        return owner_id.split(":", 1)[1]
    return None


def owner_key(owner_id: str) -> EntityKey:
    kind, oid = owner_id.split(":", 1)
    return kind, oid


@dataclass
class Tracked:
    """An entity's timeline as loaded for a batch, and what it had added to the facts then."""

    kind: str
    entity_id: str
    owner_id: str | None
    entries: dict[str, Entry]
    contribution: Contribution
    kkb_before: str | None = None
    # The fact slot its change lands in: that of the last event that touched it in the batch.
    slot: int = 0
    owner_before: str | None = None
    # Loaded only because a member of its household changed (`add_household`): saved only if it changed.
    context: bool = False

    @classmethod
    def of(
        cls,
        kind: str,
        entity_id: str,
        owner_id: str | None,
        entries: list[Entry],
        contribution: Mapping[str, int],
    ) -> Tracked:
        by_id = {e["id"]: e for e in entries}
        kkb = kkb_of(entries) if kind in OWNER_KINDS else None
        return cls(kind, entity_id, owner_id, by_id, dict(contribution), kkb, owner_before=owner_id)

    def timeline(self) -> list[Entry]:
        return sort_entries(self.entries.values())


def touched_keys(steps: Iterable[Step]) -> list[EntityKey]:
    """Entities a batch writes, in first-touch order."""
    keys: dict[EntityKey, None] = {}
    for s in steps:
        if isinstance(s, Record):
            keys[(s.kind, s.entity_id)] = None
        elif isinstance(s, LedgerAdd):
            keys[("kitchen", s.kitchen_id)] = None
    return list(keys)


def apply_steps(entities: Mapping[EntityKey, Tracked], steps: Iterable[Step], slot: int) -> None:
    """Add one event's entries to the loaded timelines (a redelivered entry id replaces itself)."""
    for s in steps:
        if isinstance(s, Record):
            t = entities[(s.kind, s.entity_id)]
            t.slot = slot
            t.entries.pop(s.entry["id"], None)
            t.entries[s.entry["id"]] = s.entry
            if s.owner is not None:
                t.owner_id = s.owner
        elif isinstance(s, LedgerAdd):
            t = entities[("kitchen", s.kitchen_id)]
            t.slot = slot
            entry_id = f"ledger:{s.month}"
            current = t.entries.pop(entry_id, None)
            p = current["p"] if current is not None else {"funds": 0, "spent": 0}
            t.entries[entry_id] = {
                "d": f"{s.month}-01",
                "ts": s.ts,
                "id": entry_id,
                "p": {
                    "ledger_month": s.month,
                    "funds": s.funds + int(p["funds"]),
                    "spent": s.spent + int(p["spent"]),
                },
            }


def owners_moved(entities: Mapping[EntityKey, Tracked]) -> list[str]:
    """Owners whose Kampung KB changed in the batch: everything located through them moves with them."""
    return sorted(
        f"{t.kind}:{t.entity_id}"
        for t in entities.values()
        if t.kind in OWNER_KINDS and kkb_of(t.entries.values()) != t.kkb_before
    )


def households(entities: Mapping[EntityKey, Tracked]) -> list[str]:
    """Families whose persons a batch changed (before and after a move): their other persons are re-folded,
    since a wife's couple figures depend on her husband's timeline."""
    out: set[str] = set()
    for t in entities.values():
        if t.kind == "person" and not t.context:
            out |= {o for o in (t.owner_before, t.owner_id) if o is not None and o.startswith("family:")}
    return sorted(out)


def add_household(
    entities: dict[EntityKey, Tracked],
    loaded: Mapping[EntityKey, tuple[str | None, list[Entry], Mapping[str, int]]],
) -> None:
    """Track the other persons of the changed families, in the fact slot of the change that brought them."""
    slots = {t.owner_id: t.slot for t in entities.values() if t.kind == "person" and t.owner_id is not None}
    for (kind, entity_id), (owner_id, entries, contribution) in loaded.items():
        if (kind, entity_id) in entities or owner_id is None:
            continue
        t = Tracked.of(kind, entity_id, owner_id, entries, contribution)
        t.slot, t.context = slots.get(owner_id, 0), True
        entities[(kind, entity_id)] = t


def owners_to_read(entities: Mapping[EntityKey, Tracked]) -> list[EntityKey]:
    """Owners of tracked entities that the batch did not load itself (their Kampung KB is needed)."""
    return sorted(
        {
            owner_key(t.owner_id)
            for t in entities.values()
            if t.kind not in OWNER_KINDS and t.owner_id is not None
        }
        - set(entities)
    )


def settle(
    entities: Mapping[EntityKey, Tracked], other_owners: Mapping[EntityKey, list[Entry]]
) -> tuple[dict[int, dict[str, int]], list[tuple[Tracked, list[Entry], Contribution]]]:
    """New contribution of every tracked entity; the difference to add to the facts per slot; rows to save."""
    kkbs: dict[str, str | None] = {f"{k[0]}:{k[1]}": kkb_of(entries) for k, entries in other_owners.items()}
    for t in entities.values():
        if t.kind in OWNER_KINDS:
            kkbs[f"{t.kind}:{t.entity_id}"] = kkb_of(t.entries.values())
    deltas: defaultdict[int, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = []
    timelines = {key: t.timeline() for key, t in entities.items()}
    family: defaultdict[str, list[EntityKey]] = defaultdict(list)
    for key, t in entities.items():
        if t.kind == "person" and t.owner_id is not None:
            family[t.owner_id].append(key)
    for key, t in entities.items():
        entries = timelines[key]
        if t.kind in OWNER_KINDS:
            kkb = kkbs[f"{t.kind}:{t.entity_id}"]
        else:
            kkb = kkbs.get(t.owner_id) if t.owner_id is not None else None
        if t.kind == "person":
            household = [timelines[k] for k in family.get(t.owner_id or "", []) if k != key]
            new = person_contribution(entries, kkb, household)
        else:
            new = contribution(t.kind, entries, kkb, kitchen_of(t.kind, t.entity_id, t.owner_id))
        delta = deltas[t.slot]
        for k, v in diff(t.contribution, new).items():
            delta[k] += v
        if t.context and new == t.contribution:
            continue
        rows.append((t, entries, new))
    return {slot: {k: v for k, v in d.items() if v} for slot, d in deltas.items()}, rows
