"""What uppka does when a registry or DASHAT event arrives: keep the local replicas current.

Events of one family (registry) or kitchen (DASHAT) arrive in order, but across aggregates and after replays
they may not: every handler compares the envelope time with what it holds and ignores older facts, and creates
a placeholder when an event refers to a person or kitchen not seen yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence, Set

from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import BatchHandler, Delivery, Handler, handle_one_by_one
from shared.events import CloudEvent
from shared.events.dashat import KitchenClosed, KitchenFacts, KitchenOpened, KitchenUpdated
from shared.events.registry import (
    FamilyMoved,
    KbStatusChanged,
    PersonDied,
    PersonFacts,
    PersonMoved,
    PersonRegistered,
    PersonsMerged,
    PersonUpdated,
)
from shared.replica import is_newer
from uppka.categories import service as categories
from uppka.groups import handlers as memberships
from uppka.groups import repository as groups_repo
from uppka.replicas import repository as repo
from uppka.replicas.domain import KbEvent, latest_facts, latest_kb
from uppka.replicas.models import KitchenReplica, PersonReplica


def _touch(replica: PersonReplica | KitchenReplica, envelope: CloudEvent) -> None:
    if envelope.time > replica.last_event_at:
        replica.last_event_at = envelope.time


def _fill_missing_place(person: PersonReplica, family_id: uuid.UUID, village_code: str) -> None:
    """Where a placeholder does not know the person's family or village yet, any event's word will do."""
    if person.family_id is None:
        person.family_id = family_id
    if person.village_code is None:
        person.village_code = village_code


async def _apply_person_facts(
    session: AsyncSession, envelope: CloudEvent, data: PersonFacts
) -> PersonReplica:
    person = await repo.lock_or_create_person(session, data.person_id, envelope.time)
    if is_newer(envelope.time, person.facts_at):
        person.family_id = data.family_id
        person.village_code = data.village_code
        person.rw = data.rw
        person.sex = data.sex
        person.birth_date = data.birth_date
        person.marital_status = data.marital_status
        person.pus = data.pus
        person.facts_known = True
        person.facts_at = envelope.time
    _touch(person, envelope)
    return person


async def handle_person_registered(
    session: AsyncSession, envelope: CloudEvent, data: PersonRegistered
) -> None:
    """A new registry person: upsert the replica."""
    await _apply_person_facts(session, envelope, data)


async def handle_person_updated(session: AsyncSession, envelope: CloudEvent, data: PersonUpdated) -> None:
    """A person's facts changed: apply unless we hold newer ones; a new address may end memberships, and a
    PUS flip (the registry's birthday sweep) or a marriage changes the member's category."""
    person = await _apply_person_facts(session, envelope, data)
    await memberships.end_if_moved_away(session, person, envelope.time.date())
    await categories.reevaluate_person(session, person)


async def handle_person_died(session: AsyncSession, envelope: CloudEvent, data: PersonDied) -> None:
    """Death is terminal: recorded whatever the order of arrival."""
    person = await repo.lock_or_create_person(session, data.person_id, envelope.time)
    person.died_on = data.died_on
    _fill_missing_place(person, data.family_id, data.village_code)
    _touch(person, envelope)
    await memberships.end_for_death(session, person, data.died_on)


async def handle_person_moved(session: AsyncSession, envelope: CloudEvent, data: PersonMoved) -> None:
    """A person moved to another family, or out of the registry's area."""
    person = await repo.lock_or_create_person(session, data.person_id, envelope.time)
    if is_newer(envelope.time, person.facts_at):
        if data.family_id is None:
            person.moved_out_on = data.moved_on
        else:
            person.family_id = data.family_id
            person.village_code = data.village_code or person.village_code
            person.rw = data.rw
            person.moved_out_on = None
        person.facts_at = envelope.time
    _touch(person, envelope)
    await memberships.end_if_moved_away(session, person, data.moved_on)


async def handle_person_merged(session: AsyncSession, envelope: CloudEvent, data: PersonsMerged) -> None:
    """Two records were one person: the merged one points at the survivor."""
    survivor = await repo.lock_or_create_person(session, data.person_id, envelope.time)
    merged = await repo.lock_or_create_person(session, data.merged_person_id, envelope.time)
    merged.merged_into = survivor.person_id
    # KB history belongs to the person, whichever record carried it.
    survivor.ever_kb_user = survivor.ever_kb_user or merged.ever_kb_user
    _touch(survivor, envelope)
    _touch(merged, envelope)
    await memberships.transfer_after_merge(session, merged, survivor, envelope.time.date())


async def handle_kb_status_changed(
    session: AsyncSession, envelope: CloudEvent, data: KbStatusChanged
) -> None:
    """A KB status change: kept on the replica (a placeholder if the person is not known yet)."""
    person = await repo.lock_or_create_person(session, data.person_id, envelope.time)
    # Having ever used KB is monotonic: even an out-of-date event proves it.
    person.ever_kb_user = person.ever_kb_user or data.is_user or data.previous_method is not None
    _fill_missing_place(person, data.family_id, data.village_code)
    if is_newer(envelope.time, person.kb_at):
        person.kb_method = data.method
        person.is_user = data.is_user
        person.mkjp = data.mkjp
        person.kb_since = data.since
        person.kb_at = envelope.time
        if not person.facts_known:
            person.pus = data.pus
        await memberships.sync_kb_status(session, person, data.since)
    _touch(person, envelope)


async def handle_family_moved(session: AsyncSession, envelope: CloudEvent, data: FamilyMoved) -> None:
    """The whole family moved: every known member of it gets the new address."""
    for person in await repo.persons_of_family(session, data.family_id):
        if is_newer(envelope.time, person.facts_at):
            person.village_code = data.village_code
            person.rw = data.rw
            person.facts_at = envelope.time
        _touch(person, envelope)
        await memberships.end_if_moved_away(session, person, data.moved_on)


async def _apply_kitchen(session: AsyncSession, envelope: CloudEvent, data: KitchenFacts) -> None:
    kitchen = await repo.lock_or_create_kitchen(session, data.kitchen_id, data.village_code, envelope.time)
    if is_newer(envelope.time, kitchen.facts_at):
        kitchen.name = data.name
        kitchen.village_code = data.village_code
        kitchen.rws = list(data.rws)
        kitchen.kampung_kb_id = data.kampung_kb_id
        kitchen.management_model = data.management_model
        kitchen.capacity_per_day = data.capacity_per_day
        kitchen.operator_group_id = data.operator_group_id
        kitchen.facts_known = True
        kitchen.facts_at = envelope.time
    if isinstance(data, KitchenOpened):
        kitchen.opened_on = data.opened_on
    _touch(kitchen, envelope)


async def handle_kitchen_opened(session: AsyncSession, envelope: CloudEvent, data: KitchenOpened) -> None:
    """A kitchen opened: contributions to it become possible."""
    await _apply_kitchen(session, envelope, data)


async def handle_kitchen_updated(session: AsyncSession, envelope: CloudEvent, data: KitchenUpdated) -> None:
    """A kitchen's facts changed."""
    await _apply_kitchen(session, envelope, data)


async def handle_kitchen_closed(session: AsyncSession, envelope: CloudEvent, data: KitchenClosed) -> None:
    """A kitchen closed; kept closed even if an older "opened" arrives later."""
    kitchen = await repo.lock_or_create_kitchen(session, data.kitchen_id, data.village_code, envelope.time)
    kitchen.closed_on = data.closed_on
    _touch(kitchen, envelope)


# The events that write only their own person's replica row (no membership, no other person), so they may be
# applied set-based before the rest of a poll when nothing else in the poll reads or writes that person.
_SET_BASED = (PersonRegistered, KbStatusChanged)


def set_based_apart(
    deliveries: Sequence[Delivery], members: Set[uuid.UUID]
) -> tuple[list[Delivery], list[Delivery]]:
    """(registrations and KB statuses that may be applied set-based, the rest in poll order).

    A registration or a KB status only writes its person's replica row, unless the person is a current member
    of a group (`members`: a KB status is copied to the membership, a group hears of it), so it may go before
    the rest of the poll unless another event of the poll reads or writes that person, or moves the family it
    names (a KB status fills a placeholder's family). Registrations then KB statuses, set-based, leave a person
    as any order of them would: each keeps its own columns by its own time (see `upsert_person_kb`).
    """
    touched_persons: set[uuid.UUID] = set(members)
    moved_families: set[uuid.UUID] = set()
    for d in deliveries:
        if isinstance(d.data, _SET_BASED):
            continue
        if isinstance(d.data, FamilyMoved):
            moved_families.add(d.data.family_id)
        for name in ("person_id", "merged_person_id"):
            person_id = getattr(d.data, name, None)
            if isinstance(person_id, uuid.UUID):
                touched_persons.add(person_id)
    apart: list[Delivery] = []
    rest: list[Delivery] = []
    for d in deliveries:
        independent = (
            isinstance(d.data, _SET_BASED)
            and d.data.person_id not in touched_persons
            and d.data.family_id not in moved_families
        )
        (apart if independent else rest).append(d)
    return apart, rest


def _kb_event(envelope: CloudEvent, data: KbStatusChanged) -> KbEvent:
    return KbEvent(
        at=envelope.time,
        family_id=data.family_id,
        village_code=data.village_code,
        method=data.method,
        is_user=data.is_user,
        mkjp=data.mkjp,
        since=data.since,
        pus=data.pus,
        proves_use=data.is_user or data.previous_method is not None,
    )


async def apply_set_based(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
    """Registrations, then KB statuses, each kind in one upsert (see `set_based_apart` for which)."""
    latest = latest_facts(
        (d.data.person_id, d.envelope.time, d.data)
        for d in deliveries
        if isinstance(d.data, PersonRegistered)
    )
    await repo.upsert_person_facts(
        session,
        [
            {
                "person_id": person_id,
                "family_id": held.facts.family_id,
                "village_code": held.facts.village_code,
                "rw": held.facts.rw,
                "sex": held.facts.sex,
                "birth_date": held.facts.birth_date,
                "marital_status": held.facts.marital_status,
                "pus": held.facts.pus,
                "facts_known": True,
                "facts_at": held.facts_at,
                "last_event_at": held.last_event_at,
            }
            for person_id, held in latest.items()
        ],
    )
    kb = latest_kb(
        (d.data.person_id, _kb_event(d.envelope, d.data))
        for d in deliveries
        if isinstance(d.data, KbStatusChanged)
    )
    await repo.upsert_person_kb(
        session,
        [
            {
                "person_id": person_id,
                "family_id": held.first.family_id,
                "village_code": held.first.village_code,
                "kb_method": held.kb.method,
                "is_user": held.kb.is_user,
                "mkjp": held.kb.mkjp,
                "kb_since": held.kb.since,
                "pus": held.kb.pus,
                "kb_at": held.kb.at,
                "ever_kb_user": held.ever_kb_user,
                "last_event_at": held.last_event_at,
            }
            for person_id, held in kb.items()
        ],
    )


def batch_handler(handlers: Mapping[str, Handler]) -> BatchHandler:
    """A poll's events: persons locked in id order, the registrations and KB statuses that stand alone as two
    upserts, then the others one by one."""

    async def apply_poll(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        # One transaction holds the locks of the whole poll: taken in event order, two polls (or a poll and a
        # member joining, which locks the person first) could wait on each other.
        named = sorted(
            {
                person_id
                for d in deliveries
                for name in ("person_id", "merged_person_id")
                if isinstance(person_id := getattr(d.data, name, None), uuid.UUID)
            }
        )
        await repo.lock_existing_persons(session, named)
        # Read after the lock: a member joining locks the person first, so it committed before, or waits.
        kb_persons = sorted({d.data.person_id for d in deliveries if isinstance(d.data, KbStatusChanged)})
        members = await groups_repo.persons_with_active_memberships(session, kb_persons)
        apart, rest = set_based_apart(deliveries, members)
        await apply_set_based(session, apart)
        await handle_one_by_one(session, handlers, rest)

    return apply_poll
