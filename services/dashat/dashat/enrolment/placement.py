"""Placing targets in kitchens, ending enrolments, and giving freed places to the waitlist.

These run inside the caller's transaction (a consumer handler or an API use case) and never commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.common import norm_rw
from dashat.enrolment import repository as repo
from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.enrolment.rules import Decision
from dashat.kitchens import domain as kitchen_domain
from dashat.kitchens import repository as kitchens
from dashat.kitchens.models import Kitchen
from dashat.models import outbox
from dashat.people import repository as people
from dashat.people.models import PersonReplica
from shared.clock import business_today
from shared.db import new_id, utcnow
from shared.events import dashat as ev
from shared.logging import get_logger
from shared.outbox import publish

log = get_logger(__name__)


@dataclass(frozen=True)
class Target:
    """Who is to be placed and where they live."""

    person_id: uuid.UUID
    family_id: uuid.UUID | None
    village_code: str
    rw: str | None


@dataclass(frozen=True)
class Trigger:
    """What caused the decision: the event (id, time) and the thing it is about (case, pregnancy...)."""

    event_id: str | None
    ref: uuid.UUID | None
    at: datetime | None


async def _capacity(session: AsyncSession, village_code: str, rw: str | None) -> list[tuple[Kitchen, int]]:
    """Serving kitchens of a place with their free places (kitchens are locked by the query)."""
    serving = [
        k
        for k in await kitchens.active_in_village(session, village_code)
        if kitchen_domain.serves(k.village_code, k.rws, village_code, rw)
    ]
    counts = await kitchens.active_enrolment_counts(session, [k.id for k in serving])
    return [(k, kitchen_domain.free_places(k.capacity_per_day, counts[k.id])) for k in serving]


def new_enrolment(
    *,
    target: Target,
    kitchen: Kitchen,
    category: str,
    source: str,
    rule_id: str | None,
    rule_version: str | None,
    planned_days: int,
    priority: int,
    facts: dict[str, Any],
    trigger: Trigger,
    start_date: date,
    enrolled_by: str | None = None,
    waitlist_id: uuid.UUID | None = None,
) -> tuple[Enrolment, ev.BeneficiaryEnrolled]:
    """The enrolment row and its event (the caller adds the one and publishes the other, keyed by kitchen)."""
    enrolment = Enrolment(
        id=new_id(),
        person_id=target.person_id,
        family_id=target.family_id,
        kitchen_id=kitchen.id,
        village_code=target.village_code,
        rw=norm_rw(target.rw),
        category=category,
        status="active",
        source=source,
        rule_id=rule_id,
        rule_version=rule_version,
        trigger_event_id=trigger.event_id,
        trigger_ref=trigger.ref,
        facts=facts,
        enrolled_by=enrolled_by,
        priority=priority,
        start_date=start_date,
        planned_end_date=start_date + timedelta(days=planned_days),
        triggered_at=trigger.at,
        enrolled_at=utcnow(),
        waitlist_id=waitlist_id,
        version=1,
    )
    return enrolment, ev.BeneficiaryEnrolled(
        enrolment_id=enrolment.id,
        kitchen_id=kitchen.id,
        person_id=target.person_id,
        family_id=target.family_id or target.person_id,
        village_code=target.village_code,
        category=category,
        source=source,
        rule_id=rule_id,
        rule_version=rule_version,
        trigger_event_id=trigger.event_id,
        triggered_at=trigger.at,
        enrolled_at=enrolment.enrolled_at,
        start_date=start_date,
        planned_end_date=enrolment.planned_end_date,
        priority=priority,
        waitlist_id=waitlist_id,
    )


async def enrol(
    session: AsyncSession,
    *,
    target: Target,
    kitchen: Kitchen,
    category: str,
    source: str,
    rule_id: str | None,
    rule_version: str | None,
    planned_days: int,
    priority: int,
    facts: dict[str, Any],
    trigger: Trigger,
    start_date: date,
    enrolled_by: str | None = None,
    waitlist_id: uuid.UUID | None = None,
) -> Enrolment:
    """Create the enrolment row and its event."""
    enrolment, event = new_enrolment(
        target=target,
        kitchen=kitchen,
        category=category,
        source=source,
        rule_id=rule_id,
        rule_version=rule_version,
        planned_days=planned_days,
        priority=priority,
        facts=facts,
        trigger=trigger,
        start_date=start_date,
        enrolled_by=enrolled_by,
        waitlist_id=waitlist_id,
    )
    session.add(enrolment)
    await session.flush()
    await publish(session, outbox, event, key=kitchen.id, causation_id=trigger.event_id)
    return enrolment


async def place(
    session: AsyncSession, *, target: Target, decision: Decision, trigger: Trigger
) -> Enrolment | WaitlistEntry:
    """Enrol into the serving kitchen with free places, or waitlist with the reason; never twice."""
    existing = await repo.active_enrolment(session, target.person_id, decision.category)
    if existing is not None:
        return existing
    waiting = await repo.waiting_entry(session, target.person_id, decision.category)
    if waiting is not None:
        return waiting
    options = await _capacity(session, target.village_code, target.rw)
    chosen = kitchen_domain.pick_kitchen([(k, free) for k, free in options])
    if isinstance(chosen, Kitchen):
        return await enrol(
            session,
            target=target,
            kitchen=chosen,
            category=decision.category,
            source="automatic",
            rule_id=decision.rule_id,
            rule_version=decision.rule_version,
            planned_days=decision.planned_days,
            priority=decision.priority,
            facts=decision.facts,
            trigger=trigger,
            start_date=business_today(),
        )
    entry, event = new_waitlist_entry(
        target=target, decision=decision, trigger=trigger, kitchen=options[0][0] if options else None
    )
    session.add(entry)
    await session.flush()
    # No kitchen yet: the village keeps the waitlist events of one place in order.
    await publish(
        session, outbox, event, key=entry.kitchen_id or target.village_code, causation_id=trigger.event_id
    )
    return entry


def new_waitlist_entry(
    *, target: Target, decision: Decision, trigger: Trigger, kitchen: Kitchen | None
) -> tuple[WaitlistEntry, ev.BeneficiaryWaitlisted]:
    """A waiting entry and its event: at the first serving kitchen when all are full, else with no kitchen.

    The caller adds the one and publishes the other keyed by the kitchen, or by the village without one.
    """
    reason = "kitchen_full" if kitchen is not None else "no_kitchen"
    entry = WaitlistEntry(
        id=new_id(),
        person_id=target.person_id,
        family_id=target.family_id,
        village_code=target.village_code,
        rw=norm_rw(target.rw),
        category=decision.category,
        kitchen_id=kitchen.id if kitchen is not None else None,
        reason=reason,
        status="waiting",
        rule_id=decision.rule_id,
        rule_version=decision.rule_version,
        trigger_event_id=trigger.event_id,
        trigger_ref=trigger.ref,
        facts=decision.facts,
        priority=decision.priority,
        planned_days=decision.planned_days,
        triggered_at=trigger.at,
        waitlisted_at=utcnow(),
    )
    return entry, ev.BeneficiaryWaitlisted(
        waitlist_id=entry.id,
        kitchen_id=entry.kitchen_id,
        person_id=target.person_id,
        family_id=target.family_id or target.person_id,
        village_code=target.village_code,
        category=decision.category,
        reason=reason,
        trigger_event_id=trigger.event_id,
        waitlisted_at=entry.waitlisted_at,
        rw=entry.rw,
        rule_id=decision.rule_id,
        rule_version=decision.rule_version,
    )


async def end(
    session: AsyncSession,
    enrolment: Enrolment,
    *,
    status: str,
    reason: str,
    causing_event_id: str | None,
    on: date | None = None,
    refill: bool = True,
    rule_version: str | None = None,
) -> None:
    """Close an active enrolment with its reason; the freed place goes to the waitlist.

    `rule_version`: the rule version that decided a rule-driven exit (stamped on the row and the event).
    """
    if enrolment.status != "active":
        return
    enrolment.status = status
    enrolment.exit_reason = reason
    enrolment.exit_causing_event_id = causing_event_id
    enrolment.exit_rule_version = rule_version
    enrolment.ended_on = on or business_today()
    enrolment.version += 1
    await session.flush()
    await publish(
        session,
        outbox,
        ev.BeneficiaryExited(
            enrolment_id=enrolment.id,
            kitchen_id=enrolment.kitchen_id,
            person_id=enrolment.person_id,
            village_code=enrolment.village_code,
            category=enrolment.category,
            reason=reason,
            exited_on=enrolment.ended_on,
            causing_event_id=causing_event_id,
            rule_version=rule_version,
        ),
        key=enrolment.kitchen_id,
        causation_id=causing_event_id,
    )
    if refill:
        await fill_waitlist(session, enrolment.village_code)


def _no_longer_eligible(person: PersonReplica | None) -> str | None:
    if person is None:
        return None
    if not person.alive:
        return "died"
    if person.moved_out:
        return "moved"
    if person.merged_into is not None:
        return "merged"
    return None


async def resolve_waiting(
    session: AsyncSession,
    entry: WaitlistEntry,
    *,
    status: str,
    resolution: str,
    enrolment_id: uuid.UUID | None = None,
) -> None:
    """A waiting entry leaves the waitlist, and says so (reporting counts who is waiting from the events)."""
    entry.status, entry.resolution, entry.resolved_at = status, resolution, utcnow()
    entry.enrolment_id = enrolment_id or entry.enrolment_id
    await publish(
        session,
        outbox,
        ev.WaitlistResolved(
            waitlist_id=entry.id,
            kitchen_id=entry.kitchen_id,
            person_id=entry.person_id,
            village_code=entry.village_code,
            category=entry.category,
            status=status,
            resolution=resolution,
            enrolment_id=entry.enrolment_id,
            resolved_at=entry.resolved_at,
        ),
        # The key of its waitlisted event, so the two stay in order.
        key=entry.kitchen_id or entry.village_code,
    )


async def cancel_waiting(session: AsyncSession, entry: WaitlistEntry, resolution: str) -> None:
    await resolve_waiting(session, entry, status="cancelled", resolution=resolution)


async def fill_waitlist(session: AsyncSession, village_code: str) -> list[Enrolment]:
    """Give free places of a village's kitchens to waiting targets, best priority first."""
    waiting = await repo.waiting_in_village(session, village_code)
    if not waiting:
        return []
    everything = {k.id: k for k in await kitchens.active_in_village(session, village_code)}
    counts = await kitchens.active_enrolment_counts(session, list(everything))
    free = {kid: kitchen_domain.free_places(k.capacity_per_day, counts[kid]) for kid, k in everything.items()}
    enrolled: list[Enrolment] = []
    for entry in waiting:
        serving = [
            (k, free[k.id])
            for k in everything.values()
            if kitchen_domain.serves(k.village_code, k.rws, entry.village_code, entry.rw)
        ]
        chosen = kitchen_domain.pick_kitchen(serving)
        if not isinstance(chosen, Kitchen):
            continue
        gone = _no_longer_eligible(await people.get_person(session, entry.person_id))
        if gone is not None:
            # Died, left or merged while waiting, and that event has not reached this entry yet.
            await cancel_waiting(session, entry, gone)
            continue
        if await repo.active_enrolment(session, entry.person_id, entry.category) is not None:
            await cancel_waiting(session, entry, "already_enrolled")
            continue
        enrolment = await enrol(
            session,
            target=Target(entry.person_id, entry.family_id, entry.village_code, entry.rw),
            kitchen=chosen,
            category=entry.category,
            source="automatic",
            rule_id=entry.rule_id,
            rule_version=entry.rule_version,
            planned_days=entry.planned_days,
            priority=entry.priority,
            facts={**entry.facts, "waitlisted_reason": entry.reason},
            trigger=Trigger(entry.trigger_event_id, entry.trigger_ref, entry.triggered_at),
            start_date=business_today(),
            waitlist_id=entry.id,
        )
        free[chosen.id] -= 1
        await resolve_waiting(
            session, entry, status="enrolled", resolution="enrolled", enrolment_id=enrolment.id
        )
        enrolled.append(enrolment)
    if enrolled:
        log.info("waitlist_filled", village=village_code, enrolled=len(enrolled))
    return enrolled
