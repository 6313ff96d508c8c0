"""Enrolment use cases from the API and the daily sweep; each commits once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment import outcome_flag, placement, rules
from dashat.enrolment import repository as repo
from dashat.enrolment.handlers import person_facts
from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.enrolment.schemas import EnrolmentCreate, EnrolmentExit
from dashat.kitchens import domain as kitchen_domain
from dashat.kitchens import repository as kitchens
from dashat.outcomes import domain as outcome_domain
from dashat.people import repository as people
from dashat.ruleversions import domain as version_domain
from dashat.ruleversions import repository as versions
from shared.auth import Principal
from shared.clock import business_today
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.regions.scope import parse_region
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams


async def list_enrolments(
    session: AsyncSession,
    params: PageParams,
    principal: Principal,
    *,
    region: str | None = None,
    kitchen_id: uuid.UUID | None = None,
    category: str | None = None,
    status: str | None = None,
    person_id: uuid.UUID | None = None,
) -> tuple[list[Enrolment], str | None]:
    """One page of the enrolments in the caller's region (narrowed by the filters) and the next cursor."""
    regions = [principal.region, parse_region(region)]
    async with session.begin():
        return await repo.page_enrolments(
            session,
            params,
            regions=regions,
            kitchen_id=kitchen_id,
            category=category,
            status=status,
            person_id=person_id,
        )


async def list_waitlist(
    session: AsyncSession,
    params: PageParams,
    principal: Principal,
    *,
    status: str,
    category: str | None = None,
    region: str | None = None,
) -> tuple[list[WaitlistEntry], str | None]:
    """One page of the waitlist in the caller's region (narrowed by the filters) and the next cursor."""
    regions = [principal.region, parse_region(region)]
    async with session.begin():
        return await repo.page_waitlist(session, params, regions=regions, status=status, category=category)


async def _visible(
    session: AsyncSession, enrolment_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> Enrolment:
    enrolment = await repo.get(session, enrolment_id, lock=lock)
    if enrolment is None or not principal.can_access(enrolment.village_code):
        raise NotFound("enrolment not found")
    return enrolment


async def get_visible(session: AsyncSession, enrolment_id: uuid.UUID, principal: Principal) -> Enrolment:
    """The enrolment if it lies in the caller's region; 404 otherwise (no existence leak)."""
    async with session.begin():
        return await _visible(session, enrolment_id, principal)


async def enrol_manually(session: AsyncSession, body: EnrolmentCreate, principal: Principal) -> Enrolment:
    """Checks, in order: kitchen visible and open, person known, person's facts, place served, free capacity."""
    try:
        return await _enrol_manually(session, body, principal)
    except IntegrityError as exc:
        # A concurrent automatic enrolment won the (person, category, active) unique index.
        raise Conflict(
            f"the person already has an active {body.category} enrolment", rule="enrolment.already_active"
        ) from exc


async def _enrol_manually(session: AsyncSession, body: EnrolmentCreate, principal: Principal) -> Enrolment:
    async with session.begin():
        kitchen = await kitchens.get(session, body.kitchen_id, lock=True)
        if kitchen is None or not principal.can_access(kitchen.village_code):
            raise ValidationFailed("unknown kitchen", field="body.kitchen_id", rule="kitchen.unknown")
        if kitchen.status != "active":
            raise ValidationFailed("the kitchen is closed", field="body.kitchen_id", rule="kitchen.closed")
        # Locked: a death or move being applied right now either commits first and is seen here, or waits and
        # then finds (and ends) this enrolment.
        person = await people.get_person(session, body.person_id, lock=True)
        # Someone outside the caller's region is "not known", exactly like an unknown id, before any rule about
        # their age or sex can answer (issue 12: the age in months used to come back for another region's child).
        if person is None or person.village_code is None or not principal.can_access(person.village_code):
            raise ValidationFailed(
                "the person is not known to DASHAT (no registry facts yet)",
                field="body.person_id",
                rule="person.unknown",
            )
        start = body.start_date or business_today()
        problems = rules.contradictions(body.category, person_facts(person), start)
        if problems:
            raise ValidationFailed(
                problems[0].message,
                field=problems[0].field,
                rule=problems[0].rule,
                errors=[{"field": p.field, "rule": p.rule, "message": p.message} for p in problems],
            )
        if not kitchen_domain.serves(kitchen.village_code, kitchen.rws, person.village_code, person.rw):
            raise ValidationFailed(
                "the person lives outside the kitchen's area",
                field="body.person_id",
                rule="enrolment.outside_kitchen_area",
            )
        if await repo.active_enrolment(session, person.person_id, body.category) is not None:
            raise Conflict(
                f"the person already has an active {body.category} enrolment", rule="enrolment.already_active"
            )
        counts = await kitchens.active_enrolment_counts(session, [kitchen.id])
        if kitchen_domain.free_places(kitchen.capacity_per_day, counts[kitchen.id]) == 0:
            raise Conflict("the kitchen is full", rule="kitchen.full")
        waiting = await repo.waiting_entry(session, person.person_id, body.category)
        config = await versions.config_for(session, person.village_code, start)
        facts: dict[str, Any] = {
            "sex": person.sex,
            "welfare_decile": person.welfare_decile,
            "krs": person.krs,
        }
        if body.note:
            facts["note"] = body.note
        enrolment = await placement.enrol(
            session,
            target=placement.Target(person.person_id, person.family_id, person.village_code, person.rw),
            kitchen=kitchen,
            category=body.category,
            source="manual",
            rule_id=rules.RULE_MANUAL,
            rule_version=config.version,
            planned_days=config.planned_days[body.category],
            priority=rules.priority(person.welfare_decile, person.krs),
            facts=facts,
            trigger=placement.Trigger(None, None, None),
            start_date=start,
            enrolled_by=principal.sub,
        )
        if waiting is not None:
            await placement.resolve_waiting(
                session, waiting, status="enrolled", resolution="enrolled_manually", enrolment_id=enrolment.id
            )
    return enrolment


async def exit_enrolment(
    session: AsyncSession,
    enrolment_id: uuid.UUID,
    body: EnrolmentExit,
    expected: IfMatchCondition,
    principal: Principal,
) -> Enrolment:
    async with session.begin():
        enrolment = await _visible(session, enrolment_id, principal, lock=True)
        check_version(expected, enrolment.version)
        if enrolment.status != "active":
            raise Conflict(f"the enrolment is already {enrolment.status}", rule="enrolment.not_active")
        status = "completed" if body.reason == "completed" else "exited"
        await placement.end(
            session, enrolment, status=status, reason=body.reason, causing_event_id=None, on=body.exited_on
        )
    return enrolment


@dataclass(frozen=True)
class EnrolmentOutcome:
    """A child's HAZ since enrolment (the API model is made at the edge: `OutcomeRead.from_domain`)."""

    enrolment: Enrolment
    trajectory: outcome_domain.Trajectory


async def outcome(session: AsyncSession, enrolment_id: uuid.UUID, principal: Principal) -> EnrolmentOutcome:
    async with session.begin():
        enrolment = await _visible(session, enrolment_id, principal)
        t = await outcome_flag.trajectory(session, enrolment)
    return EnrolmentOutcome(enrolment, t)


async def sweep(session: AsyncSession, on: date | None = None) -> dict[str, int] | None:
    """Daily: flag children without improvement, age children and breastfeeding mothers out, complete
    enrolments at their planned end.

    Returns None, having done nothing, when another process (consumer replica, cron run) is sweeping right now.
    Running it again the same day changes nothing: every step only touches what is still due. Age limits come
    from the rule version in effect that day where the person is fed (stamped on the exit).
    """
    day = on or business_today()
    counts = {"flagged": 0, "aged_out": 0, "completed": 0, "waiting_aged_out": 0}
    async with session.begin():
        if not await repo.try_sweep_lock(session):
            return None
        stored = await versions.stored_versions(session)
        configs: dict[str, rules.RuleConfig] = {}

        def config_of(village_code: str) -> rules.RuleConfig:
            if village_code not in configs:
                configs[village_code] = version_domain.to_config(
                    version_domain.pick(stored, village_code, day)
                )
            return configs[village_code]

        villages: set[str] = set()
        for enrolment in await repo.active_children(session):
            if await outcome_flag.flag_if_no_improvement(session, enrolment, day):
                counts["flagged"] += 1
            person = await people.get_person(session, enrolment.person_id)
            config = config_of(enrolment.village_code)
            if (
                person is not None
                and person.birth_date is not None
                and day >= rules.child_exit_date(person.birth_date, enrolment.category, config)
            ):
                await _age_out(session, enrolment, day, config)
                counts["aged_out"] += 1
                villages.add(enrolment.village_code)
        for enrolment in await repo.active_of_category(session, "ibu_menyusui"):
            config = config_of(enrolment.village_code)
            leaves_on = rules.breastfeeding_exit_date(enrolment.facts, config)
            if leaves_on is not None and day >= leaves_on:
                await _age_out(session, enrolment, day, config)
                counts["aged_out"] += 1
                villages.add(enrolment.village_code)
        # Nobody waits for a place they could no longer have: past the age limit, the wait ends too.
        for entry in await repo.waiting_of_categories(session, (*repo.CHILD_CATEGORIES, "ibu_menyusui")):
            config = config_of(entry.village_code)
            if entry.category == "ibu_menyusui":
                limit = rules.breastfeeding_exit_date(entry.facts, config)
            else:
                person = await people.get_person(session, entry.person_id)
                born = person.birth_date if person is not None else None
                limit = rules.child_exit_date(born, entry.category, config) if born is not None else None
            if limit is not None and day >= limit:
                await placement.cancel_waiting(session, entry, "aged_out")
                counts["waiting_aged_out"] += 1
        for enrolment in await repo.due_to_end(session, day):
            # The planned end was set by the version that enrolled: that version decides the completion.
            await placement.end(
                session,
                enrolment,
                status="completed",
                reason="completed",
                causing_event_id=None,
                on=day,
                refill=False,
                rule_version=enrolment.rule_version,
            )
            counts["completed"] += 1
            villages.add(enrolment.village_code)
        for village in sorted(villages):
            await placement.fill_waitlist(session, village)
    return counts


async def _age_out(session: AsyncSession, enrolment: Enrolment, day: date, config: rules.RuleConfig) -> None:
    await placement.end(
        session,
        enrolment,
        status="exited",
        reason="aged_out",
        causing_event_id=None,
        on=day,
        refill=False,
        rule_version=config.version,
    )
