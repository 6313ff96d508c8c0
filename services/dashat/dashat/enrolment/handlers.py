"""What DASHAT does when the registry reports a fact: keep the replica, then enrol, waitlist or end enrolments.

Events about one family arrive in order, but a retraction may still be processed before its detection (replays,
dead-letter re-drives), and person facts may come after the event that needs them: every handler tolerates it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.common import norm_rw
from dashat.enrolment import placement, recovery, rules
from dashat.enrolment import repository as repo
from dashat.enrolment.models import Enrolment, StuntingCase, WaitlistEntry
from dashat.kitchens import domain as kitchen_domain
from dashat.kitchens import repository as kitchens
from dashat.outcomes import handlers as outcomes
from dashat.people import handlers as people
from dashat.people import repository as people_repo
from dashat.people.models import PersonReplica
from dashat.ruleversions import repository as versions
from shared.ages import add_months
from shared.clock import business_today
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


def target_of(person: PersonReplica, data_village: str, data_rw: str | None) -> placement.Target:
    # The replica's address wins when it knows one (a move may be newer than the triggering event).
    village = person.village_code or data_village
    rw = person.rw if person.village_code else data_rw
    return placement.Target(person.person_id, person.family_id, village, rw)


async def _act_on(
    session: AsyncSession,
    env: CloudEvent,
    decision: rules.Decision | rules.Refusal,
    target: placement.Target,
    ref: uuid.UUID | None,
) -> None:
    """Place the target as the rule decided (`ref`: what the decision is about), or log why it refused."""
    if isinstance(decision, rules.Refusal):
        log.info("not_enrolled", rule=decision.rule_id, reason=decision.reason, event_id=env.id)
        return
    await placement.place(
        session, target=target, decision=decision, trigger=placement.Trigger(env.id, ref, env.time)
    )


async def handle_stunting_detected(
    session: AsyncSession, env: CloudEvent, data: reg.BadutaStuntingDetected
) -> None:
    person = await people.apply_stunting_facts(session, env, data)
    case = await repo.lock_case(session, data.case_id)
    if case is not None and case.status == "resolved" and data.reopened:
        # The measurement that resolved it was corrected or retracted: the case stands again.
        case.status = "detected"
    elif case is not None and case.status in ("retracted", "resolved"):
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
    target = target_of(person, data.village_code, data.rw)
    decision = rules.decide_baduta_stunting(
        person=person_facts(person),
        birth_date=person.birth_date or data.birth_date,
        haz=data.haz,
        severity=data.severity,
        case_id=str(data.case_id),
        today=business_today(),
        config=await versions.config_for(session, target.village_code, business_today()),
    )
    await _act_on(session, env, decision, target, data.case_id)


async def _close_case(
    session: AsyncSession, env: CloudEvent, case_id: uuid.UUID, person_id: uuid.UUID, status: str
) -> None:
    case = await repo.lock_case(session, case_id)
    if case is None:
        # Remember the verdict so a detection processed later does not enrol.
        session.add(StuntingCase(case_id=case_id, person_id=person_id, status=status, closed_event_id=env.id))
    elif case.status == "detected":
        case.status, case.closed_event_id = status, env.id


async def handle_stunting_resolved(
    session: AsyncSession, env: CloudEvent, data: reg.StuntingResolved
) -> None:
    """The registry saw one non-stunted measurement: the case is closed there, feeding ends only when the
    recovery is confirmed (see enrolment.recovery); so does a child's wait for a place."""
    await _close_case(session, env, data.case_id, data.person_id, "resolved")
    await recovery.review(session, env, data.person_id)


async def handle_stunting_retracted(
    session: AsyncSession, env: CloudEvent, data: reg.StuntingCaseRetracted
) -> None:
    """The measurement behind the case was corrected or retracted: what the case started is undone."""
    await _close_case(session, env, data.case_id, data.person_id, "retracted")
    for enrolment in await repo.active_by_trigger(session, data.case_id):
        await placement.end(
            session, enrolment, status="retracted", reason="retracted", causing_event_id=env.id
        )
    for entry in await repo.waiting_by_trigger(session, data.case_id):
        await placement.cancel_waiting(session, entry, "retracted")


async def handle_child_measured(session: AsyncSession, env: CloudEvent, data: reg.ChildMeasured) -> None:
    """Keep the measurement, then take the recovery decision again for the child."""
    await outcomes.handle_child_measured(session, env, data)
    await recovery.review(session, env, data.person_id)


async def handle_measurement_retracted(
    session: AsyncSession, env: CloudEvent, data: reg.MeasurementRetracted
) -> None:
    await outcomes.handle_measurement_retracted(session, env, data)
    await recovery.review(session, env, data.person_id)


async def handle_pregnancy_registered(
    session: AsyncSession, env: CloudEvent, data: reg.PregnancyRegistered
) -> None:
    person = await people.apply_pregnancy_registered(session, env, data)
    if not person.pregnant:
        log.info("pregnancy_already_ended", pregnancy_id=str(data.pregnancy_id))
        return
    target = target_of(person, data.village_code, data.rw)
    decision = rules.decide_pregnancy(
        person=person_facts(person),
        pregnancy_id=str(data.pregnancy_id),
        krs=data.krs or bool(person.krs),
        welfare_decile=data.welfare_decile if data.welfare_decile is not None else person.welfare_decile,
        kek=data.kek,
        anaemia=data.anaemia,
        expected_delivery=data.expected_delivery,
        today=business_today(),
        config=await versions.config_for(session, target.village_code, business_today()),
    )
    await _act_on(session, env, decision, target, data.pregnancy_id)


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
        await placement.cancel_waiting(session, waiting, f"pregnancy_ended_{data.outcome}")
    if data.outcome != "birth":
        return
    target = target_of(person, data.village_code, None)
    config = await versions.config_for(session, target.village_code, business_today())
    child = str(data.child_person_id) if data.child_person_id else None
    decision = rules.decide_after_birth(
        person=person_facts(person),
        pregnancy_id=str(data.pregnancy_id),
        was_target=was_target,
        ended_on=data.ended_on,
        child_person_id=child,
        today=business_today(),
        config=config,
    )
    if isinstance(decision, rules.Refusal) and decision.reason == "mother_was_not_a_target":
        # Not a DASHAT pregnancy: the birth recorded in the registry still makes her a breastfeeding mother.
        await _consider_mother(session, env, person, data.child_person_id, data.ended_on, "birth_recorded")
        return
    await _act_on(session, env, decision, target, data.pregnancy_id)


async def _consider_mother(
    session: AsyncSession,
    env: CloudEvent,
    mother: PersonReplica,
    baby_id: uuid.UUID | None,
    baby_birth_date: date,
    evidence: str,
) -> None:
    """Enrol a breastfeeding mother the registry knows, once per baby (whichever evidence arrives first)."""
    if mother.village_code is None:
        log.info("not_enrolled", rule=rules.RULE_REGISTRY_BREASTFEEDING, reason="mother_place_unknown")
        return
    if await repo.served_as_ibu_menyusui_since(session, mother.person_id, baby_birth_date):
        # Already enrolled, waiting or served for this baby (e.g. from a DASHAT pregnancy): never twice.
        return
    day = business_today()
    decision = rules.decide_registry_breastfeeding(
        mother=person_facts(mother),
        baby_person_id=str(baby_id) if baby_id else None,
        baby_birth_date=baby_birth_date,
        evidence=evidence,
        today=day,
        config=await versions.config_for(session, mother.village_code, day),
    )
    await _act_on(session, env, decision, target_of(mother, mother.village_code, mother.rw), baby_id)


async def _mother_of(session: AsyncSession, baby: PersonReplica) -> PersonReplica | None:
    """The baby's mother in its family card: the one istri; with none, a female kepala keluarga.

    Two wives (or a wife and a female head with no way to tell) is ambiguous: nobody is enrolled on a guess
    and it is logged; the birth recorded in the registry (pregnancy.ended) names the mother and enrols her.
    """
    if baby.family_id is None:
        return None
    return mother_among(await people_repo.possible_mothers(session, baby.family_id), baby)


def mother_among(women: Sequence[PersonReplica], baby: PersonReplica) -> PersonReplica | None:
    """Of a family's possible mothers (see `possible_mothers`), the baby's: the one wife, else the one head."""
    wives = [w for w in women if w.relation == "istri"]
    heads = [w for w in women if w.relation == "kepala_keluarga"]
    candidates = wives or heads
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        log.info("mother_ambiguous", baby_id=str(baby.person_id), candidates=len(candidates))
    return None


async def breastfeeding_evidence(session: AsyncSession, env: CloudEvent, person: PersonReplica) -> None:
    """Person facts arrived: a baby registered makes its mother a target; so does a mother registered after it."""
    if person.family_id is None or not person.alive or person.moved_out or person.merged_into is not None:
        return
    day = business_today()
    if person.relation == "anak" and person.birth_date is not None:
        if person.birth_date <= add_months(day, -people.BABY_HORIZON_MONTHS):
            return
        mother = await _mother_of(session, person)
        if mother is not None:
            await _consider_mother(
                session, env, mother, person.person_id, person.birth_date, "child_registered"
            )
    elif person.sex == "P" and person.relation in people_repo.MOTHER_RELATIONS:
        babies = await people_repo.babies_in_family(
            session, person.family_id, add_months(day, -people.BABY_HORIZON_MONTHS)
        )
        if babies and babies[0].birth_date is not None:
            mother = await _mother_of(session, babies[0])
            if mother is not None and mother.person_id == person.person_id:
                await _consider_mother(
                    session, env, mother, babies[0].person_id, babies[0].birth_date, "child_registered"
                )


async def handle_catin_registered(session: AsyncSession, env: CloudEvent, data: reg.CatinRegistered) -> None:
    person = await people.apply_catin_registered(session, env, data)
    target = target_of(person, data.village_code, data.rw)
    decision = rules.decide_catin(
        person=person_facts(person),
        catin_id=str(data.catin_id),
        at_risk=data.at_risk,
        risks=data.risks,
        welfare_decile=data.welfare_decile if data.welfare_decile is not None else person.welfare_decile,
        config=await versions.config_for(session, target.village_code, business_today()),
    )
    await _act_on(session, env, decision, target, data.catin_id)


async def _exit_all(
    session: AsyncSession, env: CloudEvent, person_id: uuid.UUID, reason: str, on: date | None
) -> None:
    # Waiting entries first: a place freed by ending an enrolment must not go to this person's own entry.
    for entry in await repo.waiting_of_person(session, person_id):
        await placement.cancel_waiting(session, entry, reason)
    await session.flush()
    for enrolment in await repo.active_enrolments_of_person(session, person_id):
        await placement.end(
            session, enrolment, status="exited", reason=reason, causing_event_id=env.id, on=on
        )


async def handle_person_died(session: AsyncSession, env: CloudEvent, data: reg.PersonDied) -> None:
    await people.apply_person_died(session, env, data)
    await _exit_all(session, env, data.person_id, "died", data.died_on)


def _same_place(village_code: str, rw: str | None, person: PersonReplica) -> bool:
    return village_code == person.village_code and norm_rw(rw) == norm_rw(person.rw)


async def _follow_move(session: AsyncSession, env: CloudEvent, person: PersonReplica) -> None:
    """After a move: leave kitchens that no longer serve the person and look for a place where they now live.

    Someone who left the registry's area is only exited: where they went is not known here.
    """
    if person.moved_out:
        await _exit_all(session, env, person.person_id, "moved", person.moved_on)
        return
    if person.village_code is None:
        return
    target = placement.Target(person.person_id, person.family_id, person.village_code, person.rw)
    # Waiting entries of the old place wait at the new one instead (and may find a place there at once).
    for entry in await repo.waiting_of_person(session, person.person_id):
        if _same_place(entry.village_code, entry.rw, person):
            continue
        await placement.cancel_waiting(session, entry, "moved")
        await session.flush()
        decision = rules.Decision(
            category=entry.category,  # type: ignore[arg-type]
            rule_id=entry.rule_id,
            rule_version=entry.rule_version,
            planned_days=entry.planned_days,
            priority=rules.priority(person.welfare_decile, person.krs),
            facts={**entry.facts, "moved_from_waitlist_id": str(entry.id), "moved_by_event_id": env.id},
        )
        trigger = placement.Trigger(entry.trigger_event_id, entry.trigger_ref, entry.triggered_at)
        await placement.place(session, target=target, decision=decision, trigger=trigger)
    for enrolment in await repo.active_enrolments_of_person(session, person.person_id):
        kitchen = await kitchens.get(session, enrolment.kitchen_id)
        if kitchen is None or kitchen_domain.serves(
            kitchen.village_code, kitchen.rws, person.village_code, person.rw
        ):
            continue
        await placement.end(
            session,
            enrolment,
            status="exited",
            reason="moved",
            causing_event_id=env.id,
            on=person.moved_on,
        )
        continued = rules.decide_after_move(
            person=person_facts(person),
            category=enrolment.category,
            planned_end_date=enrolment.planned_end_date,
            previous_enrolment_id=str(enrolment.id),
            previous_kitchen_id=str(enrolment.kitchen_id),
            previous_rule_id=enrolment.rule_id,
            previous_facts=dict(enrolment.facts),
            today=business_today(),
            config=await versions.config_for(session, target.village_code, business_today()),
        )
        # The trigger reference stays, so a later resolution or retraction of the case still finds it.
        await _act_on(session, env, continued, target, enrolment.trigger_ref)


async def handle_person_moved(session: AsyncSession, env: CloudEvent, data: reg.PersonMoved) -> None:
    person = await people.apply_person_moved(session, env, data)
    await _follow_move(session, env, person)


async def handle_family_moved(session: AsyncSession, env: CloudEvent, data: reg.FamilyMoved) -> None:
    for person_id in await people.apply_family_moved(session, env, data):
        person = await people_repo.get_person(session, person_id)
        if person is not None:
            person.moved_on = data.moved_on
            await _follow_move(session, env, person)


async def handle_person_facts(session: AsyncSession, env: CloudEvent, data: reg.PersonFacts) -> None:
    person = await people.apply_person_facts(session, env, data)
    await breastfeeding_evidence(session, env, person)


async def _refresh_priority(session: AsyncSession, env: CloudEvent, family_id: uuid.UUID) -> None:
    """A family's decile or KRS status changed: its members' places in the queue follow (priority is stored)."""
    family = await people_repo.get_family(session, family_id)
    if family is None:
        return
    waiting, active = await repo.set_family_priority(
        session, family_id, rules.priority(family.welfare_decile, family.krs)
    )
    if waiting or active:
        log.info(
            "priority_refreshed", family_id=str(family_id), waiting=waiting, active=active, event_id=env.id
        )


async def handle_family_facts(session: AsyncSession, env: CloudEvent, data: reg.FamilyFacts) -> None:
    await people.apply_family_facts(session, env, data)
    await _refresh_priority(session, env, data.family_id)


async def handle_stunting_risk(session: AsyncSession, env: CloudEvent, data: reg.StuntingRiskChanged) -> None:
    await people.apply_stunting_risk(session, env, data)
    await _refresh_priority(session, env, data.family_id)


def _earlier(a: Enrolment, b: Enrolment) -> tuple[Enrolment, Enrolment]:
    """(kept, dropped): the enrolment that started first stays."""
    return (a, b) if (a.start_date, a.enrolled_at) <= (b.start_date, b.enrolled_at) else (b, a)


async def handle_person_merged(session: AsyncSession, env: CloudEvent, data: reg.PersonsMerged) -> None:
    """Two records were one person: the surviving id takes over enrolments, waitlist, meals and measurements."""
    await people.apply_person_merged(session, env, data)
    survivor, merged = data.person_id, data.merged_person_id
    if survivor == merged:
        return
    active = {e.category: e for e in await repo.active_enrolments_of_person(session, survivor)}
    freed: set[str] = set()
    for enrolment in await repo.active_enrolments_of_person(session, merged):
        other = active.get(enrolment.category)
        if other is None:
            active[enrolment.category] = enrolment
            continue
        kept, dropped = _earlier(other, enrolment)
        active[enrolment.category] = kept
        # A duplicate, not a decision about the person: its own exit reason, the merge event as the cause.
        await placement.end(
            session, dropped, status="exited", reason="merged", causing_event_id=env.id, refill=False
        )
        freed.add(dropped.village_code)
    waiting: dict[str, WaitlistEntry] = {}
    for entry in [
        *await repo.waiting_of_person(session, survivor),
        *await repo.waiting_of_person(session, merged),
    ]:
        if entry.category in active:
            await placement.cancel_waiting(session, entry, "already_enrolled")
        elif entry.category in waiting:
            first = waiting[entry.category]
            kept_entry, later = (
                (first, entry) if first.waitlisted_at <= entry.waitlisted_at else (entry, first)
            )
            waiting[entry.category] = kept_entry
            await placement.cancel_waiting(session, later, "merged")
        else:
            waiting[entry.category] = entry
    await session.flush()
    await repo.move_person_records(session, merged, survivor, data.family_id)
    # Places freed by a dropped duplicate go to the waitlist now, after the records point at one person.
    for village in sorted(freed):
        await placement.fill_waitlist(session, village)
