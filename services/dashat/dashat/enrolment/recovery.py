"""Recovery needs confirmation: when a stunted child's feeding ends as `recovered`, and when that is undone.

The registry resolves a stunting case on the first non-stunted measurement; DASHAT does not end feeding on it
(one normal length may be a misread tape). The child leaves as recovered only when `recovery_confirmed_on`
(enrolment.rules) finds enough consecutive usable normal measurements over enough days since the case was
detected; otherwise the planned duration runs out and the sweep completes the enrolment. The decision is taken
again whenever a measurement of the child arrives, is corrected or retracted, or the case is resolved, so a
correction or retraction that takes a confirmation away gives the child its place back (`recovery_withdrawn`).
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment import outcome_flag, placement, rules
from dashat.enrolment import repository as repo
from dashat.outcomes import repository as measurements
from dashat.people import repository as people
from dashat.ruleversions import repository as versions
from shared.clock import business_today
from shared.events import CloudEvent
from shared.logging import get_logger

log = get_logger(__name__)


async def _since(session: AsyncSession, trigger_ref: uuid.UUID | None, otherwise: date) -> date:
    """Measurements count from the one that detected the case (or, without it, from the enrolment's start)."""
    if trigger_ref is not None:
        case = await repo.lock_case(session, trigger_ref)
        if case is not None and case.measured_on is not None:
            return case.measured_on
    return otherwise


async def review(session: AsyncSession, env: CloudEvent, person_id: uuid.UUID) -> None:
    """Take the recovery decision again for a child: end confirmed recoveries, reinstate withdrawn ones."""
    day = business_today()
    for enrolment in await repo.active_children_of_person(session, person_id):
        config = await versions.config_for(session, enrolment.village_code, day)
        readings = await measurements.readings(
            session, person_id, await _since(session, enrolment.trigger_ref, enrolment.start_date)
        )
        confirmed_on = rules.recovery_confirmed_on(readings, config)
        if confirmed_on is None:
            # Not recovered: past the planned duration without improvement, the kitchen is told now rather
            # than at the next daily sweep (the same rule and the same once-only flag as the sweep's).
            await outcome_flag.flag_if_no_improvement(session, enrolment, day)
            continue
        await placement.end(
            session,
            enrolment,
            status="completed",
            reason="recovered",
            causing_event_id=env.id,
            rule_version=config.version,
        )
        log.info("recovery_confirmed", enrolment_id=str(enrolment.id), confirmed_on=confirmed_on.isoformat())
    # A child waiting for a place leaves the queue on the same confirmation (not on one normal measurement).
    for entry in await repo.waiting_of_person(session, person_id):
        if entry.category not in repo.CHILD_CATEGORIES:
            continue
        config = await versions.config_for(session, entry.village_code, day)
        since = await _since(session, entry.trigger_ref, entry.waitlisted_at.date())
        if rules.recovery_confirmed_on(await measurements.readings(session, person_id, since), config):
            await placement.cancel_waiting(session, entry, "recovered")
    await _withdraw_unconfirmed(session, env, person_id, day)


async def _withdraw_unconfirmed(
    session: AsyncSession, env: CloudEvent, person_id: uuid.UUID, day: date
) -> None:
    """A recovery whose confirming measurement was corrected or retracted no longer stands: feeding resumes."""
    ended = await repo.last_recovered(session, person_id)
    if ended is None or ended.exit_causing_event_id == env.id:
        return
    if ended.trigger_ref is not None:
        case = await repo.lock_case(session, ended.trigger_ref)
        if case is not None and case.status == "retracted":
            return
    config = await versions.config_for(session, ended.village_code, day)
    readings = await measurements.readings(
        session, person_id, await _since(session, ended.trigger_ref, ended.start_date)
    )
    if rules.recovery_confirmed_on(readings, config) is not None:
        return
    person = await people.get_person(session, person_id, lock=True)
    if person is None or person.village_code is None:
        return
    decision = rules.decide_after_move(
        person=rules.PersonFacts(
            sex=person.sex,
            birth_date=person.birth_date,
            alive=person.alive,
            moved_out=person.moved_out,
            welfare_decile=person.welfare_decile,
            krs=person.krs,
        ),
        category=ended.category,
        planned_end_date=ended.planned_end_date,
        previous_enrolment_id=str(ended.id),
        previous_kitchen_id=str(ended.kitchen_id),
        previous_rule_id=ended.rule_id,
        previous_facts=dict(ended.facts),
        today=day,
        config=config,
    )
    if isinstance(decision, rules.Refusal):
        log.info("recovery_withdrawn_not_resumed", reason=decision.reason, event_id=env.id)
        return
    # The same continuation as after a move (the time left, the same case), under its own rule id.
    resumed = rules.Decision(
        category=decision.category,
        rule_id=rules.RULE_RECOVERY_WITHDRAWN,
        rule_version=decision.rule_version,
        planned_days=decision.planned_days,
        priority=decision.priority,
        facts={
            k: v
            for k, v in decision.facts.items()
            if k not in ("continues_enrolment_id", "previous_kitchen_id")
        }
        | {"resumes_enrolment_id": str(ended.id), "withdrawn_by_event_id": env.id},
    )
    await placement.place(
        session,
        target=placement.Target(person.person_id, person.family_id, person.village_code, person.rw),
        decision=resumed,
        trigger=placement.Trigger(env.id, ended.trigger_ref, env.time),
    )
