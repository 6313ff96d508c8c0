"""The daily age sweep: apply each day's birthdays to PUS and KRS, and publish only what changed.

Days are applied one at a time, oldest first, each in its own transaction that also moves the watermark
(`age_sweep.last_swept_on`): a crash repeats only the day it was in, a second run of a swept day finds nothing to
do, and days missed while the service was down are caught up in order. Every event is dated (envelope `time`)
at the start of the day the status changed, in Asia/Jakarta, because reporting files events under the day of
their envelope time and the change belongs to the birthday's month, not to the day the sweep ran.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from registry.ageing import domain
from registry.ageing import repository as repo
from registry.families import domain as fam_domain
from registry.families.facts import member_facts, person_facts
from registry.families.models import Family, Person
from shared.clock import business_today, start_of_day
from shared.events import EventData
from shared.events.registry import PersonUpdated, StuntingRiskChanged
from shared.logging import get_logger
from shared.outbox import outbox_row

log = get_logger(__name__)

# Families re-evaluated per statement: a national day has some 10-20 thousand (270M persons / 36,500 birth dates
# x 5 ages), and asyncpg takes at most 32,767 parameters in one statement.
FAMILY_BATCH = 5000


@dataclass
class DayResult:
    """What one swept day changed."""

    day: date
    persons_updated: int = 0
    families_changed: int = 0


@dataclass
class SweepResult:
    """What a sweep run did; `locked` is false when another process was sweeping."""

    through: date
    locked: bool = True
    days: list[DayResult] = field(default_factory=list)

    @property
    def persons_updated(self) -> int:
        return sum(d.persons_updated for d in self.days)

    @property
    def families_changed(self) -> int:
        return sum(d.families_changed for d in self.days)


def _alive(person: Person) -> bool:
    return person.died_on is None and person.moved_out_on is None and person.deleted_at is None


async def sweep_day(session: AsyncSession, day: date) -> DayResult:
    """Apply one day's birthdays (inside the caller's transaction; the caller moves the watermark)."""
    result = DayResult(day)
    windows = sorted({domain.birth_window(t.months, day) for t in domain.THRESHOLDS})
    found = await repo.birthdays(session, windows)
    events: list[tuple[EventData, uuid.UUID]] = []
    krs_families: set[uuid.UUID] = set()
    before = day - timedelta(days=1)
    for person, family in found:
        wife = person.sex == "P" and person.marital_status == "kawin"
        child = person.relation in domain.CHILD_RELATIONS
        crossed = (domain.crossed(person.birth_date, day, "wife") if wife else []) + (
            domain.crossed(person.birth_date, day, "child") if child else []
        )
        if not crossed:
            continue
        krs_families.add(family.id)
        if any(t.months in domain.PUS_MONTHS for t in crossed):
            was = fam_domain.is_pus(person.sex, person.marital_status, person.birth_date, before)
            now = fam_domain.is_pus(person.sex, person.marital_status, person.birth_date, day)
            if was != now and _alive(person):
                events.append((PersonUpdated(**person_facts(person, family, on=day)), family.id))
                result.persons_updated += 1
    ids = sorted(krs_families)
    for start in range(0, len(ids), FAMILY_BATCH):
        result.families_changed += await _reevaluate(session, ids[start : start + FAMILY_BATCH], day, events)
    await session.flush()
    await repo.insert_outbox(
        session, [outbox_row(data, key=key, event_time=start_of_day(day)) for data, key in events]
    )
    return result


async def _reevaluate(
    session: AsyncSession, ids: list[uuid.UUID], day: date, events: list[tuple[EventData, uuid.UUID]]
) -> int:
    """Re-derive the KRS status of these families on `day`; store and publish the changes (their count)."""
    changed = 0
    families = await repo.families_for_update(session, ids)
    members: dict[uuid.UUID, list[Person]] = {}
    for m in await repo.current_members(session, ids):
        assert m.family_id is not None
        members.setdefault(m.family_id, []).append(m)
    pregnant = await repo.pregnant_families(session, ids)
    for family in families:
        evaluated = fam_domain.evaluate_krs(
            fam_domain.FamilyFacts(
                drinking_water_source=family.drinking_water_source,
                latrine_type=family.latrine_type,
                members=member_facts(members.get(family.id, [])),
                pregnant=family.id in pregnant,
            ),
            day,
        )
        risk_changed = evaluated.at_risk != family.krs or sorted(evaluated.reasons) != sorted(
            family.krs_reasons or []
        )
        if risk_changed or evaluated.target != family.krs_target:
            family.krs, family.krs_reasons = evaluated.at_risk, evaluated.reasons
            family.krs_target, family.rule_version = evaluated.target, evaluated.rule_version
            family.version += 1
            events.append((_krs_event(family), family.id))
            changed += 1
    return changed


def _krs_event(family: Family) -> StuntingRiskChanged:
    return StuntingRiskChanged(
        family_id=family.id,
        village_code=family.village_code,
        rw=family.rw,
        at_risk=family.krs,
        reasons=list(family.krs_reasons),
        target=family.krs_target,
        welfare_decile=family.welfare_decile,
        rule_version=family.rule_version or "",
    )


async def sweep(session: AsyncSession, through: date | None = None) -> SweepResult:
    """Apply every day after the watermark up to `through` (default: today in WIB), one transaction per day.

    A first run (no watermark yet) applies `through` alone: statuses written before it were derived on their
    write day, and the sweep takes over from there.
    """
    target = through or business_today()
    if target > business_today():
        # A swept day is never swept again: sweeping ahead would publish birthdays before they happen.
        raise ValueError(f"{target.isoformat()} has not begun yet in Asia/Jakarta")
    out = SweepResult(target)
    while True:
        async with session.begin():
            if not await repo.try_lock(session):
                out.locked = False
                log.info("age_sweep_skipped", reason="another process is sweeping")
                return out
            last = await repo.last_swept_on(session)
            day = target if last is None else last + timedelta(days=1)
            if day > target:
                return out
            done = await sweep_day(session, day)
            await repo.advance(session, day)
        session.expunge_all()  # a long catch-up must not keep every day's rows in the identity map
        out.days.append(done)
        log.info(
            "age_sweep_day",
            day=day.isoformat(),
            persons_updated=done.persons_updated,
            families_changed=done.families_changed,
        )
