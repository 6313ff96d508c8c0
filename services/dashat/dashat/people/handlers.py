"""Keeping the replica: registry and uppka events applied in any order, each at most once (inbox)."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment import poll, rules
from dashat.enrolment import repository as enrolment_repo
from dashat.outcomes import repository as outcomes_repo
from dashat.people import repository as repo
from dashat.people.models import FamilyReplica, PersonReplica
from dashat.ruleversions import repository as versions
from shared.ages import add_months
from shared.clock import business_today
from shared.consumer import BatchHandler, Delivery, Handler
from shared.events import CloudEvent
from shared.events import registry as reg
from shared.events import uppka as up
from shared.replica import is_newer

# A baby this young may make its mother a target under any rule version (the age limit is at most 24 months).
BABY_HORIZON_MONTHS = 24


async def _fill_from_family(session: AsyncSession, person: PersonReplica) -> None:
    if person.family_id is None:
        return
    fill_from_family(person, await repo.get_family(session, person.family_id))


def fill_from_family(person: PersonReplica, family: FamilyReplica | None) -> None:
    """The family's decile and KRS status, when it has them, on its member."""
    if family is None:
        return
    if family.welfare_decile is not None:
        person.welfare_decile = family.welfare_decile
    if family.krs is not None:
        person.krs = family.krs
        person.krs_reasons = list(family.krs_reasons)


async def apply_person_facts(session: AsyncSession, env: CloudEvent, data: reg.PersonFacts) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    if set_person_facts(person, env, data):
        await _fill_from_family(session, person)
    return person


def set_person_facts(person: PersonReplica, env: CloudEvent, data: reg.PersonFacts) -> bool:
    """The event's facts on the replica if newer than what it holds (then the family's are filled in next)."""
    if not is_newer(env.time, person.facts_at):
        return False
    person.facts_at = env.time
    person.family_id = data.family_id
    person.sex = data.sex
    person.birth_date = data.birth_date
    person.relation = data.relation
    if is_newer(env.time, person.location_at):
        person.village_code, person.rw, person.location_at = data.village_code, data.rw, env.time
        person.moved_out = False
    return True


async def apply_person_died(session: AsyncSession, env: CloudEvent, data: reg.PersonDied) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    # Death is final whatever arrives later; the family and village are filled in if still unknown.
    person.alive, person.died_on = False, data.died_on
    person.family_id = person.family_id or data.family_id
    person.village_code = person.village_code or data.village_code
    return person


async def apply_person_moved(session: AsyncSession, env: CloudEvent, data: reg.PersonMoved) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    if not is_newer(env.time, person.location_at):
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
    if not is_newer(env.time, family.facts_at):
        return
    family.facts_at = env.time
    family.village_code, family.rw = data.village_code, data.rw
    family.welfare_decile = data.welfare_decile
    await repo.copy_family_facts_to_members(session, family)


async def apply_family_moved(
    session: AsyncSession, env: CloudEvent, data: reg.FamilyMoved
) -> list[uuid.UUID]:
    family = await repo.lock_family(session, data.family_id)
    if not is_newer(env.time, family.facts_at):
        return []
    family.facts_at = env.time
    family.village_code, family.rw = data.village_code, data.rw
    return await repo.move_family_members(session, data.family_id, data.village_code, data.rw)


async def apply_stunting_risk(session: AsyncSession, env: CloudEvent, data: reg.StuntingRiskChanged) -> None:
    family = await repo.lock_family(session, data.family_id)
    if set_stunting_risk(family, env, data):
        await repo.copy_family_facts_to_members(session, family)


def set_stunting_risk(family: FamilyReplica, env: CloudEvent, data: reg.StuntingRiskChanged) -> bool:
    """The KRS status on the family if newer than the one it holds (its members then follow)."""
    if not is_newer(env.time, family.krs_at):
        return False
    family.krs_at = env.time
    family.krs, family.krs_reasons = data.at_risk, list(data.reasons)
    family.village_code = family.village_code or data.village_code
    if data.welfare_decile is not None:
        family.welfare_decile = data.welfare_decile
    return True


def _fill_missing(person: PersonReplica, **facts: object) -> None:
    """Facts carried by a triggering event fill what the replica lacks; they never override person facts."""
    for name, value in facts.items():
        if value is not None and getattr(person, name) is None:
            setattr(person, name, value)


async def apply_stunting_facts(
    session: AsyncSession, env: CloudEvent, data: reg.BadutaStuntingDetected
) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    fill_stunting_facts(person, data)
    return person


def fill_stunting_facts(person: PersonReplica, data: reg.BadutaStuntingDetected) -> None:
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


async def apply_pregnancy_registered(
    session: AsyncSession, env: CloudEvent, data: reg.PregnancyRegistered
) -> PersonReplica:
    person = await repo.lock_person(session, data.person_id)
    fill_pregnancy(person, data)
    return person


def fill_pregnancy(person: PersonReplica, data: reg.PregnancyRegistered) -> None:
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
    # No rule reads the raw LiLA/Hb (the flags carry what they mean); they no longer travel (issue 12, item 7).
    person.lila_cm, person.hb_g_dl = None, None


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
    if not is_newer(env.time, group.facts_at):
        return
    group.facts_at = env.time
    group.code, group.village_code, group.status = data.code, data.village_code, data.status
    group.name = getattr(data, "name", group.name)


async def handle_group_status(session: AsyncSession, env: CloudEvent, data: up.GroupStatusChanged) -> None:
    group = await repo.lock_group(session, data.group_id, data.village_code, data.status)
    if not is_newer(env.time, group.facts_at):
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


# Events that touch no person or family replica row, nor enrolments: any order with the facts upserts is one.
_APART_FROM_REPLICAS = (
    reg.ChildMeasured,
    reg.MeasurementRetracted,
    up.GroupFacts,
    up.GroupStatusChanged,
    up.DashatContributionMade,
)
# Events that read or write only the persons and families they name (and those families' members): they may
# enrol or waitlist their own person, but end no enrolment and fill no waitlist with anyone else.
_KEYED = (
    reg.BadutaStuntingDetected,
    reg.PregnancyRegistered,
    reg.CatinRegistered,
    reg.StuntingRiskChanged,
)
# Events that may enrol their child: a measurement after one in the same poll may end or reinstate it.
_ENROLS_CHILD = (reg.BadutaStuntingDetected,)


@dataclass
class SetBased:
    """A poll's events split into what is applied set-based first and the rest, in poll order, after it."""

    families: list[Delivery] = field(default_factory=list)
    risks: list[Delivery] = field(default_factory=list)  # families' stunting-risk (KRS) statuses
    persons: list[Delivery] = field(default_factory=list)
    measurements: list[Delivery] = field(default_factory=list)
    rest: list[Delivery] = field(default_factory=list)


def _may_make_a_mother_target(
    data: reg.PersonFacts, baby_born_after: date | None, baby_families: Set[uuid.UUID]
) -> bool:
    """Person facts that may enrol a breastfeeding mother (a baby, or a mother of a family with a baby)."""
    if baby_born_after is None:
        return False
    if data.relation == "anak":
        return data.birth_date > baby_born_after
    return data.sex == "P" and data.relation in repo.MOTHER_RELATIONS and data.family_id in baby_families


def _bystander(
    data: reg.PersonFacts, held_family: Mapping[uuid.UUID, uuid.UUID | None], baby_born_after: date | None
) -> bool:
    """A new person no decision held back in its family reads: set-based even when the family is held back.

    Held-back events read a family's members as a baby's possible mothers (women, wife or head), as its babies,
    or all alike (the family's facts copied to them, priorities refreshed: a new person holds no enrolment yet,
    and takes the family's facts whichever goes first). So a new man, older child or elderly parent registered
    after a baby leaves the same state set-based as in order.
    """
    if data.person_id in held_family:
        return False
    if data.relation == "anak":
        return baby_born_after is not None and data.birth_date <= baby_born_after
    return not (data.sex == "P" and data.relation in repo.MOTHER_RELATIONS)


def set_based_apart(
    deliveries: Sequence[Delivery],
    held_family: Mapping[uuid.UUID, uuid.UUID | None],
    *,
    watched_children: Set[uuid.UUID] = frozenset(),
    baby_born_after: date | None = None,
    baby_families: Set[uuid.UUID] = frozenset(),
) -> SetBased:
    """The family facts, KRS statuses, person facts and new measurements that may be applied set-based first.

    Set-based, a poll's family facts go first, then its KRS statuses, then its person facts, then the rest one
    by one: the same as poll order as long as nothing the rest does to a person or family comes before a fact
    set-based about it, no family's facts come after a fact of a person who is or becomes its member, and no
    family's facts come after its KRS status (both may carry the decile). A KRS status refreshes the priority
    of the family's members like a family fact, so it may not come after the fact of a known person (one who
    may hold enrolments) joining or leaving the family; a new person's facts before it are harmless (the person
    holds no enrolment before the rest runs, and takes the family's KRS whichever goes first). One KRS status
    per family per poll set-based: a second one, which may carry another decile, goes one by one. What would break that
    stays in the rest, in order, and so does everything after an event that may end enrolments or fill
    waitlists (those read persons the event does not name). A measurement touches only its own row (until a
    merge moves it): set-based when no other event of the poll names it and its child has no enrolment it
    may end or reinstate (`watched_children`, or a stunting detection earlier in the poll; such a measurement
    ends nothing set-based: it goes in order, as a barrier). Person facts that may enrol a baby's mother (a baby born after `baby_born_after`, a woman of a
    family in `baby_families`) enrol someone else than their person: they go one by one, like a stunting
    detection. `held_family`: existing persons' family now.
    """
    out = SetBased()
    families, risks, persons, measurements, rest = (
        out.families,
        out.risks,
        out.persons,
        out.measurements,
        out.rest,
    )
    named_measurements = collections.Counter(
        m
        for d in deliveries
        for m in (getattr(d.data, "measurement_id", None), getattr(d.data, "corrects_measurement_id", None))
        if isinstance(d.data, (reg.ChildMeasured, reg.MeasurementRetracted)) and m is not None
    )
    blocked_persons: set[uuid.UUID] = set()
    blocked_families: set[uuid.UUID] = set()
    member_families: set[uuid.UUID] = set()  # families of the person facts set apart so far
    person_family: dict[uuid.UUID, uuid.UUID] = {}
    seen_families: set[uuid.UUID] = set()
    risk_families: set[uuid.UUID] = set()  # families of the KRS statuses set apart so far
    reshaped_families: set[uuid.UUID] = set()  # families a known person set apart so far joins or leaves
    detected: set[uuid.UUID] = set()  # children whose stunting detection came so far
    barrier = False

    def block(d: Delivery) -> None:
        rest.append(d)
        for name in ("person_id", "merged_person_id"):
            person_id = getattr(d.data, name, None)
            if isinstance(person_id, uuid.UUID):
                blocked_persons.add(person_id)
                if (held := held_family.get(person_id)) is not None:
                    blocked_families.add(held)
        family_id = getattr(d.data, "family_id", None)
        if isinstance(family_id, uuid.UUID):
            blocked_families.add(family_id)

    for d in deliveries:
        data = d.data
        if barrier:
            rest.append(d)
        elif isinstance(data, reg.FamilyFacts):
            if (
                data.family_id in blocked_families
                or data.family_id in member_families
                or data.family_id in risk_families
            ):
                block(d)
            elif data.family_id in seen_families:
                # A second fact of one family would refresh its priorities twice: one by one, as before.
                block(d)
            else:
                seen_families.add(data.family_id)
                families.append(d)
        elif isinstance(data, reg.PersonFacts):
            held = held_family.get(data.person_id)
            if (
                _may_make_a_mother_target(data, baby_born_after, baby_families)
                or data.person_id in blocked_persons
                or (data.family_id in blocked_families and not _bystander(data, held_family, baby_born_after))
                or (held is not None and held in blocked_families)
                or person_family.get(data.person_id, data.family_id) != data.family_id
            ):
                block(d)
            else:
                person_family[data.person_id] = data.family_id
                member_families.add(data.family_id)
                if held is not None:
                    member_families.add(held)
                    if held != data.family_id:
                        reshaped_families.update((held, data.family_id))
                persons.append(d)
        elif isinstance(data, reg.StuntingRiskChanged):
            if (
                data.family_id in blocked_families
                or data.family_id in reshaped_families
                or data.family_id in risk_families
            ):
                block(d)
            else:
                risk_families.add(data.family_id)
                risks.append(d)
        elif isinstance(data, (reg.ChildMeasured, reg.MeasurementRetracted)) and (
            data.person_id in watched_children or data.person_id in detected
        ):
            barrier = True
            rest.append(d)
        elif (
            isinstance(data, reg.ChildMeasured)
            and data.corrects_measurement_id is None
            and named_measurements[data.measurement_id] == 1
        ):
            measurements.append(d)
        elif isinstance(data, _APART_FROM_REPLICAS):
            rest.append(d)
        elif isinstance(data, _KEYED):
            if isinstance(data, _ENROLS_CHILD):
                detected.add(data.person_id)
            block(d)
        else:
            barrier = True
            rest.append(d)
    return out


def _last_newest(deliveries: Sequence[Delivery], key: str) -> dict[uuid.UUID, Delivery]:
    """Per aggregate, the event applying all of them in order with `is_newer` would leave: the first of the latest."""
    out: dict[uuid.UUID, Delivery] = {}
    for d in deliveries:
        aggregate = getattr(d.data, key)
        held = out.get(aggregate)
        if held is None or is_newer(d.envelope.time, held.envelope.time):
            out[aggregate] = d
    return out


async def apply_facts_set_based(
    session: AsyncSession,
    families: Sequence[Delivery],
    persons: Sequence[Delivery],
    risks: Sequence[Delivery] = (),
) -> None:
    """Family facts, then KRS statuses, then person facts, as their handlers one by one would leave them (see
    `set_based_apart`)."""
    family_rows = [
        {
            "family_id": family_id,
            "village_code": d.data.village_code,
            "rw": d.data.rw,
            "welfare_decile": d.data.welfare_decile,
            "facts_at": d.envelope.time,
        }
        for family_id, d in _last_newest(families, "family_id").items()
    ]
    applied = await repo.upsert_family_facts(session, family_rows)
    risk_rows = [
        {
            "family_id": d.data.family_id,
            "krs": d.data.at_risk,
            "krs_reasons": list(d.data.reasons),
            "krs_at": d.envelope.time,
            "village_code": d.data.village_code,
            "welfare_decile": d.data.welfare_decile,
        }
        for d in risks
    ]
    applied_risks = await repo.upsert_family_risk(session, risk_rows)
    await repo.copy_families_facts_to_members(session, sorted({*applied, *applied_risks}))
    latest = _last_newest(persons, "person_id")
    refreshed = {row["family_id"] for row in family_rows} | {row["family_id"] for row in risk_rows}
    family_ids = sorted(refreshed | {d.data.family_id for d in latest.values()})
    known = await repo.families_facts(session, family_ids)
    # The priority refresh of each family event (see enrolment.handlers): whether or not its facts applied.
    await enrolment_repo.set_families_priority(
        session,
        {
            family_id: rules.priority(known[family_id][0], known[family_id][1])
            for family_id in sorted(refreshed)
        },
    )
    person_rows = []
    for person_id, d in latest.items():
        decile, krs, krs_reasons = known.get(d.data.family_id, (None, None, []))
        person_rows.append(
            {
                "person_id": person_id,
                "family_id": d.data.family_id,
                "sex": d.data.sex,
                "birth_date": d.data.birth_date,
                "relation": d.data.relation,
                "village_code": d.data.village_code,
                "rw": d.data.rw,
                "facts_at": d.envelope.time,
                "location_at": d.envelope.time,
                "welfare_decile": decile,
                "krs": krs,
                "krs_reasons": krs_reasons,
            }
        )
    await repo.upsert_person_facts(session, person_rows)


def batch_handler(handlers: Mapping[str, Handler]) -> BatchHandler:
    """A poll's events: the replica rows they name locked in one consistent order, the person and family facts
    that can go first as a few set-based statements, then the others one by one in poll order.

    One transaction per poll holds the locks of all its events; taken in event order, two polls (or a poll
    and a manual enrolment, which locks the person first) could wait on each other.
    """

    async def apply_poll(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        with versions.configs_remembered(session):
            await _apply_poll(session, deliveries)

    async def _apply_poll(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        persons, families = _referenced(deliveries)
        held_family = await repo.lock_existing(session, persons, families)
        measurements = (reg.ChildMeasured, reg.MeasurementRetracted)
        measured = sorted({d.data.person_id for d in deliveries if isinstance(d.data, measurements)})
        facts_families = sorted({d.data.family_id for d in deliveries if isinstance(d.data, reg.PersonFacts)})
        # Only a baby under a rule version's breastfeeding age limit (six months in the seed, WHO's exclusive
        # breastfeeding) can make its mother a target: the facts of an older baby, or of a mother whose babies
        # are all older, only update the replica (one by one they would end in a logged refusal,
        # `baby_not_under_age_limit`). A month more than the longest limit in force today keeps a baby at the
        # edge of a month-end one by one; never more than the handlers' own horizon.
        day = business_today()
        longest = await versions.longest_breastfeeding_months(session, day)
        born_after = add_months(day, -min(BABY_HORIZON_MONTHS, longest + 1))
        split = set_based_apart(
            deliveries,
            held_family,
            watched_children=await enrolment_repo.children_with_enrolments(session, measured),
            baby_born_after=born_after,
            baby_families=await repo.families_with_babies(session, facts_families, born_after),
        )
        await apply_facts_set_based(session, split.families, split.persons, split.risks)
        await outcomes_repo.upsert_many(
            session,
            [
                {
                    "measurement_id": d.data.measurement_id,
                    "person_id": d.data.person_id,
                    "measured_on": d.data.measured_on,
                    "age_days": d.data.age_days,
                    "haz": d.data.haz,
                    "haz_flag": d.data.haz_flag,
                }
                for d in split.measurements
            ],
        )
        # What is left, in poll order: stunting detections, pregnancies, KRS statuses and a baby's (or its
        # mother's) facts decided on rows read once per run of them; anything else through its handler.
        await poll.apply_in_order(session, handlers, split.rest)

    return apply_poll
