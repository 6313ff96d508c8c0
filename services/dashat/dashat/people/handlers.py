"""Keeping the replica: registry and uppka events applied in any order, each at most once (inbox)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.people import repository as repo
from dashat.people.models import PersonReplica
from shared.consumer import BatchHandler, Delivery, Handler, handle_one_by_one
from shared.events import CloudEvent
from shared.events import registry as reg
from shared.events import uppka as up


def _newer(held: datetime | None, incoming: datetime) -> bool:
    """An event applies unless we already hold facts from a later one (events race across partitions)."""
    return held is None or incoming >= held


async def _fill_from_family(session: AsyncSession, person: PersonReplica) -> None:
    if person.family_id is None:
        return
    family = await repo.get_family(session, person.family_id)
    if family is None:
        return
    if family.welfare_decile is not None:
        person.welfare_decile = family.welfare_decile
    if family.krs is not None:
        person.krs = family.krs
        person.krs_reasons = list(family.krs_reasons)


async def apply_person_facts(session: AsyncSession, env: CloudEvent, data: reg.PersonFacts) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    if not _newer(person.facts_at, env.time):
        return person
    person.facts_at = env.time
    person.family_id = data.family_id
    person.sex = data.sex
    person.birth_date = data.birth_date
    if _newer(person.location_at, env.time):
        person.village_code, person.rw, person.location_at = data.village_code, data.rw, env.time
        person.moved_out = False
    await _fill_from_family(session, person)
    return person


async def apply_person_died(session: AsyncSession, env: CloudEvent, data: reg.PersonDied) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    # Death is final whatever arrives later; the family and village are filled in if still unknown.
    person.alive, person.died_on = False, data.died_on
    person.family_id = person.family_id or data.family_id
    person.village_code = person.village_code or data.village_code
    return person


async def apply_person_moved(session: AsyncSession, env: CloudEvent, data: reg.PersonMoved) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    if not _newer(person.location_at, env.time):
        return person
    person.location_at, person.moved_on = env.time, data.moved_on
    if data.family_id is None or data.village_code is None:
        person.moved_out = True
        person.family_id = data.family_id or person.family_id
    else:
        person.moved_out = False
        person.family_id, person.village_code, person.rw = data.family_id, data.village_code, data.rw
        await _fill_from_family(session, person)
    return person


async def apply_person_merged(session: AsyncSession, env: CloudEvent, data: reg.PersonsMerged) -> None:
    merged = await repo.lock_person(session, data.merged_person_id)
    merged.merged_into = data.person_id
    await repo.lock_person(session, data.person_id)


async def apply_family_facts(session: AsyncSession, env: CloudEvent, data: reg.FamilyFacts) -> None:
    family = await repo.lock_family(session, data.family_id)
    if not _newer(family.facts_at, env.time):
        return
    family.facts_at = env.time
    family.village_code, family.rw = data.village_code, data.rw
    family.welfare_decile = data.welfare_decile
    await repo.copy_family_facts_to_members(session, family)


async def apply_family_moved(
    session: AsyncSession, env: CloudEvent, data: reg.FamilyMoved
) -> list[uuid.UUID]:
    family = await repo.lock_family(session, data.family_id)
    if not _newer(family.facts_at, env.time):
        return []
    family.facts_at = env.time
    family.village_code, family.rw = data.village_code, data.rw
    return await repo.move_family_members(session, data.family_id, data.village_code, data.rw)


async def apply_stunting_risk(session: AsyncSession, env: CloudEvent, data: reg.StuntingRiskChanged) -> None:
    family = await repo.lock_family(session, data.family_id)
    if not _newer(family.krs_at, env.time):
        return
    family.krs_at = env.time
    family.krs, family.krs_reasons = data.at_risk, list(data.reasons)
    family.village_code = family.village_code or data.village_code
    if data.welfare_decile is not None:
        family.welfare_decile = data.welfare_decile
    await repo.copy_family_facts_to_members(session, family)


def _fill_missing(person: PersonReplica, **facts: object) -> None:
    """Facts carried by a triggering event fill what the replica lacks; they never override person facts."""
    for name, value in facts.items():
        if value is not None and getattr(person, name) is None:
            setattr(person, name, value)


async def apply_stunting_facts(
    session: AsyncSession, env: CloudEvent, data: reg.BadutaStuntingDetected
) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    _fill_missing(
        person,
        family_id=data.family_id,
        village_code=data.village_code,
        rw=data.rw,
        sex=data.sex,
        birth_date=data.birth_date,
        welfare_decile=data.welfare_decile,
    )
    if person.krs is None:
        person.krs = data.krs
    return person


async def apply_pregnancy_registered(
    session: AsyncSession, env: CloudEvent, data: reg.PregnancyRegistered
) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    _fill_missing(
        person,
        family_id=data.family_id,
        village_code=data.village_code,
        rw=data.rw,
        welfare_decile=data.welfare_decile,
    )
    if person.sex is None:
        person.sex = "P"
    if person.krs is None:
        person.krs = data.krs
    # An ended pregnancy with the same id arrived first: keep it ended.
    ended_first = person.pregnancy_id == data.pregnancy_id and not person.pregnant
    person.pregnant = not ended_first
    person.pregnancy_id = data.pregnancy_id
    person.expected_delivery = data.expected_delivery
    person.kek, person.anaemia = data.kek, data.anaemia
    person.lila_cm, person.hb_g_dl = data.lila_cm, data.hb_g_dl
    return person


async def apply_pregnancy_ended(
    session: AsyncSession, env: CloudEvent, data: reg.PregnancyEnded
) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    _fill_missing(person, family_id=data.family_id, village_code=data.village_code)
    if person.pregnancy_id in (None, data.pregnancy_id):
        person.pregnant = False
        person.pregnancy_id = data.pregnancy_id
    if data.outcome == "birth":
        person.last_birth_on = data.ended_on
    return person


async def apply_catin_registered(
    session: AsyncSession, env: CloudEvent, data: reg.CatinRegistered
) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    _fill_missing(
        person,
        family_id=data.family_id,
        village_code=data.village_code,
        rw=data.rw,
        sex=data.sex,
        welfare_decile=data.welfare_decile,
    )
    person.catin_at_risk, person.catin_risks = data.at_risk, list(data.risks)
    person.planned_marriage_date = data.planned_marriage_date
    return person


async def handle_group_facts(session: AsyncSession, env: CloudEvent, data: up.GroupFacts) -> None:
    group = await repo.lock_group(session, data.group_id, data.village_code, data.status)
    if not _newer(group.facts_at, env.time):
        return
    group.facts_at = env.time
    group.code, group.village_code, group.status = data.code, data.village_code, data.status
    group.name = getattr(data, "name", group.name)


async def handle_group_status(session: AsyncSession, env: CloudEvent, data: up.GroupStatusChanged) -> None:
    group = await repo.lock_group(session, data.group_id, data.village_code, data.status)
    if not _newer(group.facts_at, env.time):
        return
    group.facts_at = env.time
    group.status = data.status


def _referenced(deliveries: Sequence[Delivery]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The persons and families a poll's events name, each sorted."""
    persons: set[uuid.UUID] = set()
    families: set[uuid.UUID] = set()
    for d in deliveries:
        for name, ids in (("person_id", persons), ("merged_person_id", persons), ("family_id", families)):
            value = getattr(d.data, name, None)
            if isinstance(value, uuid.UUID):
                ids.add(value)
    return sorted(persons), sorted(families)


def batch_handler(handlers: Mapping[str, Handler]) -> BatchHandler:
    """A poll's events one by one, after locking the replica rows they name in one consistent order.

    One transaction per poll holds the locks of all its events; taken in event order, two polls (or a poll
    and a manual enrolment, which locks the person first) could wait on each other.
    """

    async def apply_poll(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        persons, families = _referenced(deliveries)
        await repo.lock_existing(session, persons, families)
        await handle_one_by_one(session, handlers, deliveries)

    return apply_poll
