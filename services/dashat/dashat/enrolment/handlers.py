"""What DASHAT does when the registry reports a fact: keep the replica, then enrol, waitlist or end enrolments.

Events about one family arrive in order, but a retraction may still be processed before its detection (replays,
dead-letter re-drives), and person facts may come after the event that needs them: every handler tolerates it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.common import today
from dashat.enrolment import placement, rules
from dashat.enrolment import repository as repo
from dashat.enrolment.models import StuntingCase
from dashat.kitchens import domain as kitchen_domain
from dashat.kitchens import repository as kitchens
from dashat.people import handlers as people
from dashat.people.models import PersonReplica
from shared.events import CloudEvent
from shared.events import registry as reg
from shared.logging import get_logger

log = get_logger(__name__)


def person_facts(person: PersonReplica) -> rules.PersonFacts:
    return rules.PersonFacts(
        sex=person.sex,
        birth_date=person.birth_date,
        alive=person.alive,
        moved_out=person.moved_out,
        welfare_decile=person.welfare_decile,
        krs=person.krs,
    )


def _target(person: PersonReplica, data_village: str, data_rw: str | None) -> placement.Target:
    # The replica's address wins when it knows one (a move may be newer than the triggering event).
    village = person.village_code or data_village
    rw = person.rw if person.village_code else data_rw
    return placement.Target(person.person_id, person.family_id, village, rw)


async def handle_stunting_detected(
    session: AsyncSession, env: CloudEvent, data: reg.BadutaStuntingDetected
) -> None:
    person = await people.apply_stunting_facts(session, env, data)
    case = await repo.lock_case(session, data.case_id)
    if case is not None and case.status in ("retracted", "resolved"):
        log.info("stunting_case_already_closed", case_id=str(data.case_id), status=case.status)
        return
    if case is None:
        session.add(
            StuntingCase(
                case_id=data.case_id,
                person_id=data.person_id,
                status="detected",
                detected_event_id=env.id,
                haz=data.haz,
                measured_on=data.measured_on,
            )
        )
    decision = rules.decide_baduta_stunting(
        person=person_facts(person),
        birth_date=person.birth_date or data.birth_date,
        haz=data.haz,
        severity=data.severity,
        case_id=str(data.case_id),
        today=today(),
    )
    if isinstance(decision, rules.Refusal):
        log.info("not_enrolled", rule=decision.rule_id, reason=decision.reason, event_id=env.id)
        return
    await placement.place(
        session,
        target=_target(person, data.village_code, data.rw),
        decision=decision,
        trigger=placement.Trigger(env.id, data.case_id, env.time),
    )


async def _close_case(
    session: AsyncSession, env: CloudEvent, case_id: object, person_id: object, status: str
) -> None:
    case = await repo.lock_case(session, case_id)  # type: ignore[arg-type]
    if case is None:
        # Remember the verdict so a detection processed later does not enrol.
        session.add(StuntingCase(case_id=case_id, person_id=person_id, status=status, closed_event_id=env.id))
    elif case.status == "detected":
        case.status, case.closed_event_id = status, env.id


async def handle_stunting_resolved(
    session: AsyncSession, env: CloudEvent, data: reg.StuntingResolved
) -> None:
    await _close_case(session, env, data.case_id, data.person_id, "resolved")
    for enrolment in await repo.active_by_trigger(session, data.case_id):
        await placement.end(
            session, enrolment, status="completed", reason="recovered", causing_event_id=env.id
        )
    for entry in await repo.waiting_by_trigger(session, data.case_id):
        placement.cancel_waiting(entry, "recovered")


async def handle_stunting_retracted(
    session: AsyncSession, env: CloudEvent, data: reg.StuntingCaseRetracted
) -> None:
    await _close_case(session, env, data.case_id, data.person_id, "retracted")
    for enrolment in await repo.active_by_trigger(session, data.case_id):
        await placement.end(
            session, enrolment, status="retracted", reason="retracted", causing_event_id=env.id
        )
    for entry in await repo.waiting_by_trigger(session, data.case_id):
        placement.cancel_waiting(entry, "retracted")


async def handle_pregnancy_registered(
    session: AsyncSession, env: CloudEvent, data: reg.PregnancyRegistered
) -> None:
    person = await people.apply_pregnancy_registered(session, env, data)
    if not person.pregnant:
        log.info("pregnancy_already_ended", pregnancy_id=str(data.pregnancy_id))
        return
    decision = rules.decide_pregnancy(
        person=person_facts(person),
        pregnancy_id=str(data.pregnancy_id),
        krs=data.krs or bool(person.krs),
        welfare_decile=data.welfare_decile if data.welfare_decile is not None else person.welfare_decile,
        kek=data.kek,
        anaemia=data.anaemia,
        expected_delivery=data.expected_delivery,
        today=today(),
    )
    if isinstance(decision, rules.Refusal):
        log.info("not_enrolled", rule=decision.rule_id, reason=decision.reason, event_id=env.id)
        return
    await placement.place(
        session,
        target=_target(person, data.village_code, data.rw),
        decision=decision,
        trigger=placement.Trigger(env.id, data.pregnancy_id, env.time),
    )


async def handle_pregnancy_ended(session: AsyncSession, env: CloudEvent, data: reg.PregnancyEnded) -> None:
    person = await people.apply_pregnancy_ended(session, env, data)
    was_target = await repo.any_by_trigger(session, data.pregnancy_id)
    hamil = await repo.active_enrolment(session, data.person_id, "ibu_hamil")
    if hamil is not None:
        # A loss is not a programme completed: it is told apart so reports do not count it as one.
        status, reason = (
            ("completed", "completed") if data.outcome == "birth" else ("exited", "pregnancy_lost")
        )
        await placement.end(
            session, hamil, status=status, reason=reason, causing_event_id=env.id, on=data.ended_on
        )
    waiting = await repo.waiting_entry(session, data.person_id, "ibu_hamil")
    if waiting is not None:
        placement.cancel_waiting(waiting, f"pregnancy_ended_{data.outcome}")
    if data.outcome != "birth":
        return
    decision = rules.decide_after_birth(
        person=person_facts(person),
        pregnancy_id=str(data.pregnancy_id),
        was_target=was_target,
        ended_on=data.ended_on,
        child_person_id=str(data.child_person_id) if data.child_person_id else None,
    )
    if isinstance(decision, rules.Refusal):
        log.info("not_enrolled", rule=decision.rule_id, reason=decision.reason, event_id=env.id)
        return
    await placement.place(
        session,
        target=_target(person, data.village_code, None),
        decision=decision,
        trigger=placement.Trigger(env.id, data.pregnancy_id, env.time),
    )


async def handle_catin_registered(session: AsyncSession, env: CloudEvent, data: reg.CatinRegistered) -> None:
    person = await people.apply_catin_registered(session, env, data)
    decision = rules.decide_catin(
        person=person_facts(person),
        catin_id=str(data.catin_id),
        at_risk=data.at_risk,
        risks=data.risks,
        welfare_decile=data.welfare_decile if data.welfare_decile is not None else person.welfare_decile,
    )
    if isinstance(decision, rules.Refusal):
        log.info("not_enrolled", rule=decision.rule_id, reason=decision.reason, event_id=env.id)
        return
    await placement.place(
        session,
        target=_target(person, data.village_code, data.rw),
        decision=decision,
        trigger=placement.Trigger(env.id, data.catin_id, env.time),
    )


async def _exit_all(
    session: AsyncSession, env: CloudEvent, person_id: object, reason: str, on: object
) -> None:
    for enrolment in await repo.active_enrolments_of_person(session, person_id):  # type: ignore[arg-type]
        await placement.end(
            session,
            enrolment,
            status="exited",
            reason=reason,
            causing_event_id=env.id,
            on=on,  # type: ignore[arg-type]
        )
    for entry in await repo.waiting_of_person(session, person_id):  # type: ignore[arg-type]
        placement.cancel_waiting(entry, reason)


async def handle_person_died(session: AsyncSession, env: CloudEvent, data: reg.PersonDied) -> None:
    await people.apply_person_died(session, env, data)
    await _exit_all(session, env, data.person_id, "died", data.died_on)


async def _exit_if_no_longer_served(session: AsyncSession, env: CloudEvent, person: PersonReplica) -> None:
    """After a move: enrolments whose kitchen no longer serves the person's place end (reason moved)."""
    if person.moved_out:
        await _exit_all(session, env, person.person_id, "moved", person.moved_on)
        return
    for enrolment in await repo.active_enrolments_of_person(session, person.person_id):
        kitchen = await kitchens.get(session, enrolment.kitchen_id)
        if kitchen is None or person.village_code is None:
            continue
        if not kitchen_domain.serves(kitchen.village_code, kitchen.rws, person.village_code, person.rw):
            await placement.end(
                session,
                enrolment,
                status="exited",
                reason="moved",
                causing_event_id=env.id,
                on=person.moved_on,
            )


async def handle_person_moved(session: AsyncSession, env: CloudEvent, data: reg.PersonMoved) -> None:
    person = await people.apply_person_moved(session, env, data)
    await _exit_if_no_longer_served(session, env, person)


async def handle_family_moved(session: AsyncSession, env: CloudEvent, data: reg.FamilyMoved) -> None:
    for person_id in await people.apply_family_moved(session, env, data):
        person = await session.get(PersonReplica, person_id)
        if person is not None:
            person.moved_on = data.moved_on
            await _exit_if_no_longer_served(session, env, person)


async def handle_person_facts(session: AsyncSession, env: CloudEvent, data: reg.PersonFacts) -> None:
    await people.apply_person_facts(session, env, data)


async def handle_family_facts(session: AsyncSession, env: CloudEvent, data: reg.FamilyFacts) -> None:
    await people.apply_family_facts(session, env, data)


async def handle_stunting_risk(session: AsyncSession, env: CloudEvent, data: reg.StuntingRiskChanged) -> None:
    await people.apply_stunting_risk(session, env, data)


async def handle_person_merged(session: AsyncSession, env: CloudEvent, data: reg.PersonsMerged) -> None:
    await people.apply_person_merged(session, env, data)
