"""What the batch hook leaves for one by one, applied in poll order against rows read once per run.

Stunting detections, pregnancies, KRS statuses and the person facts that may make a mother a target are what
stays one by one in a registration poll (a baby's family, its detection, its mother's pregnancy, the family's
KRS status after them). Their handlers read a few rows each (the person, the family and its members, the case,
the person's enrolments and waiting entries, the village's kitchens and their places) and write a few: one
round trip per read and per write made them most of DASHAT's CPU at rehearsal volume. Here a run of such events
reads those rows once (`_Rows.load`), takes every decision in poll order on them exactly as the handlers would
(the same pure rules, the kitchen with the most free places as places are taken, the same waitlist entries and
priorities), and writes once: the ORM flush, then the outbox rows in the order the handlers would have
published them. Any other event ends the run: what the run changed is written, and the event goes through its
handler as before (`handle_one_by_one`); the next run reads the rows again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment import handlers as enrolment
from dashat.enrolment import placement, rules
from dashat.enrolment import repository as repo
from dashat.enrolment.models import Enrolment, StuntingCase, WaitlistEntry
from dashat.kitchens import domain as kitchen_domain
from dashat.kitchens import repository as kitchens
from dashat.kitchens.models import Kitchen
from dashat.people import handlers as people
from dashat.people import repository as people_repo
from dashat.people.models import FamilyReplica, PersonReplica
from dashat.ruleversions import repository as versions
from shared.ages import add_months
from shared.clock import business_today
from shared.consumer import Delivery, Handler, handle_one_by_one
from shared.events import CloudEvent
from shared.events import registry as reg
from shared.logging import get_logger
from shared.outbox import outbox_row
from shared.web.context import (
    reset_causation_id,
    reset_correlation_id,
    set_causation_id,
    set_correlation_id,
)

log = get_logger(__name__)

# The events a run decides on its own rows; anything else goes through its handler.
IN_RUN = (reg.BadutaStuntingDetected, reg.PregnancyRegistered, reg.StuntingRiskChanged, reg.PersonFacts)


@dataclass
class _Rows:
    """The rows a run reads and changes (all in the session: the flush writes what changed)."""

    persons: dict[uuid.UUID, PersonReplica] = field(default_factory=dict)
    families: dict[uuid.UUID, FamilyReplica] = field(default_factory=dict)
    cases: dict[uuid.UUID, StuntingCase] = field(default_factory=dict)
    enrolments: list[Enrolment] = field(default_factory=list)
    waiting: list[WaitlistEntry] = field(default_factory=list)
    kitchens: dict[str, list[Kitchen]] = field(default_factory=dict)  # active, by village, in id order
    places_taken: dict[uuid.UUID, int] = field(default_factory=dict)  # active enrolments per kitchen
    outbox: list[dict[str, Any]] = field(default_factory=list)
    touched: set[uuid.UUID] = field(default_factory=set)  # persons written even if no value changed

    @classmethod
    async def load(cls, session: AsyncSession, run: Sequence[Delivery]) -> _Rows:
        """Every row the run's handlers would read or lock, created empty where they would create them."""
        named = sorted({d.data.person_id for d in run if not isinstance(d.data, reg.StuntingRiskChanged)})
        risk_families = sorted({d.data.family_id for d in run if isinstance(d.data, reg.StuntingRiskChanged)})
        family_ids = sorted({f for d in run if (f := d.data.family_id) is not None})
        persons, families = await people_repo.lock_for_poll(
            session, named, family_ids, create_persons=named, create_families=risk_families
        )
        rows = cls(
            persons={p.person_id: p for p in persons},
            families={f.family_id: f for f in families},
        )
        case_ids = sorted({d.data.case_id for d in run if isinstance(d.data, reg.BadutaStuntingDetected)})
        rows.cases = {c.case_id: c for c in await repo.lock_cases(session, case_ids)}
        rows.enrolments, rows.waiting = await repo.entries_for_decisions(session, sorted(rows.persons))
        villages = {p.village_code for p in persons if p.village_code} | {d.data.village_code for d in run}
        await rows.load_kitchens(session, sorted(v for v in villages if v))
        return rows

    async def load_kitchens(self, session: AsyncSession, villages: Sequence[str]) -> None:
        wanted = [v for v in villages if v not in self.kitchens]
        if not wanted:
            return
        found = await kitchens.active_in_villages(session, wanted)
        for village in wanted:
            self.kitchens[village] = []
        for kitchen in found:
            self.kitchens[kitchen.village_code].append(kitchen)
        self.places_taken.update(await kitchens.active_enrolment_counts(session, [k.id for k in found]))

    def members(self, family_id: uuid.UUID) -> list[PersonReplica]:
        return [p for p in self.persons.values() if p.family_id == family_id]


class _Run:
    """The handlers of `IN_RUN` on a run's rows (see enrolment.handlers for what each decides and why)."""

    def __init__(self, session: AsyncSession, rows: _Rows) -> None:
        self.session, self.rows = session, rows

    async def apply(self, env: CloudEvent, data: Any) -> None:
        if isinstance(data, reg.BadutaStuntingDetected):
            await self.stunting_detected(env, data)
        elif isinstance(data, reg.PregnancyRegistered):
            await self.pregnancy_registered(env, data)
        elif isinstance(data, reg.StuntingRiskChanged):
            self.stunting_risk(env, data)
        else:
            await self.person_facts(env, data)

    async def config(self, village_code: str | None) -> rules.RuleConfig:
        return await versions.config_for(self.session, village_code, business_today())

    async def stunting_detected(self, env: CloudEvent, data: reg.BadutaStuntingDetected) -> None:
        person = self.rows.persons[data.person_id]
        people.fill_stunting_facts(person, data)
        case = self.rows.cases.get(data.case_id)
        if case is not None and case.status == "resolved" and data.reopened:
            case.status = "detected"
        elif case is not None and case.status in ("retracted", "resolved"):
            log.info("stunting_case_already_closed", case_id=str(data.case_id), status=case.status)
            return
        if case is None:
            case = StuntingCase(
                case_id=data.case_id,
                person_id=data.person_id,
                status="detected",
                detected_event_id=env.id,
                haz=data.haz,
                measured_on=data.measured_on,
            )
            self.session.add(case)
            self.rows.cases[data.case_id] = case
        target = enrolment.target_of(person, data.village_code, data.rw)
        decision = rules.decide_baduta_stunting(
            person=enrolment.person_facts(person),
            birth_date=person.birth_date or data.birth_date,
            haz=data.haz,
            severity=data.severity,
            case_id=str(data.case_id),
            today=business_today(),
            config=await self.config(target.village_code),
        )
        await self.act_on(env, decision, target, data.case_id)

    async def pregnancy_registered(self, env: CloudEvent, data: reg.PregnancyRegistered) -> None:
        person = self.rows.persons[data.person_id]
        people.fill_pregnancy(person, data)
        if not person.pregnant:
            log.info("pregnancy_already_ended", pregnancy_id=str(data.pregnancy_id))
            return
        target = enrolment.target_of(person, data.village_code, data.rw)
        decision = rules.decide_pregnancy(
            person=enrolment.person_facts(person),
            pregnancy_id=str(data.pregnancy_id),
            krs=data.krs or bool(person.krs),
            welfare_decile=data.welfare_decile if data.welfare_decile is not None else person.welfare_decile,
            kek=data.kek,
            anaemia=data.anaemia,
            expected_delivery=data.expected_delivery,
            today=business_today(),
            config=await self.config(target.village_code),
        )
        await self.act_on(env, decision, target, data.pregnancy_id)

    def stunting_risk(self, env: CloudEvent, data: reg.StuntingRiskChanged) -> None:
        family = self.rows.families[data.family_id]
        if people.set_stunting_risk(family, env, data):
            # `copy_family_facts_to_members`: an UPDATE of every member, which moves `updated_at` on each.
            for member in self.rows.members(family.family_id):
                member.welfare_decile, member.krs = family.welfare_decile, family.krs
                member.krs_reasons = list(family.krs_reasons)
                self.rows.touched.add(member.person_id)
        # `_refresh_priority`: the members' waiting entries and active enrolments take the family's priority.
        priority = rules.priority(family.welfare_decile, family.krs)
        members = {p.person_id for p in self.rows.members(family.family_id)}
        waiting = active = 0
        for entry in self.rows.waiting:
            if entry.person_id in members and entry.status == "waiting" and entry.priority != priority:
                entry.priority, waiting = priority, waiting + 1
        for enrolled in self.rows.enrolments:
            if (
                enrolled.person_id in members
                and enrolled.status == "active"
                and enrolled.priority != priority
            ):
                enrolled.priority, enrolled.version, active = priority, enrolled.version + 1, active + 1
        if waiting or active:
            log.info(
                "priority_refreshed",
                family_id=str(family.family_id),
                waiting=waiting,
                active=active,
                event_id=env.id,
            )

    async def person_facts(self, env: CloudEvent, data: reg.PersonFacts) -> None:
        person = self.rows.persons[data.person_id]
        if people.set_person_facts(person, env, data) and person.family_id is not None:
            people.fill_from_family(person, self.rows.families.get(person.family_id))
        await self.breastfeeding_evidence(env, person)

    def possible_mothers(self, family_id: uuid.UUID) -> list[PersonReplica]:
        """`people_repo.possible_mothers` on the run's rows."""
        return sorted(
            (
                p
                for p in self.rows.members(family_id)
                if p.sex == "P"
                and p.relation in people_repo.MOTHER_RELATIONS
                and p.alive
                and not p.moved_out
                and p.merged_into is None
            ),
            key=lambda p: p.person_id,
        )

    async def breastfeeding_evidence(self, env: CloudEvent, person: PersonReplica) -> None:
        """`enrolment.breastfeeding_evidence` on the run's rows."""
        if person.family_id is None or not person.alive or person.moved_out or person.merged_into is not None:
            return
        born_after = add_months(business_today(), -people.BABY_HORIZON_MONTHS)
        if person.relation == "anak" and person.birth_date is not None:
            if person.birth_date <= born_after:
                return
            mother = enrolment.mother_among(self.possible_mothers(person.family_id), person)
            if mother is not None:
                await self.consider_mother(env, mother, person.person_id, person.birth_date)
        elif person.sex == "P" and person.relation in people_repo.MOTHER_RELATIONS:
            # `people_repo.babies_in_family`: living children born after the horizon, youngest first.
            babies = sorted(
                (
                    p
                    for p in self.rows.members(person.family_id)
                    if p.relation == "anak"
                    and p.birth_date is not None
                    and p.birth_date > born_after
                    and p.alive
                    and p.merged_into is None
                ),
                key=lambda p: (-p.birth_date.toordinal() if p.birth_date else 0, p.person_id),
            )
            if babies and babies[0].birth_date is not None:
                mother = enrolment.mother_among(self.possible_mothers(person.family_id), babies[0])
                if mother is not None and mother.person_id == person.person_id:
                    await self.consider_mother(env, mother, babies[0].person_id, babies[0].birth_date)

    async def consider_mother(
        self, env: CloudEvent, mother: PersonReplica, baby_id: uuid.UUID, baby_birth_date: date
    ) -> None:
        """`enrolment._consider_mother` (evidence: the child registered) on the run's rows."""
        if mother.village_code is None:
            log.info("not_enrolled", rule=rules.RULE_REGISTRY_BREASTFEEDING, reason="mother_place_unknown")
            return
        if self.served_as_ibu_menyusui_since(mother.person_id, baby_birth_date):
            return
        day = business_today()
        decision = rules.decide_registry_breastfeeding(
            mother=enrolment.person_facts(mother),
            baby_person_id=str(baby_id),
            baby_birth_date=baby_birth_date,
            evidence="child_registered",
            today=day,
            config=await self.config(mother.village_code),
        )
        await self.act_on(env, decision, enrolment.target_of(mother, mother.village_code, mother.rw), baby_id)

    def served_as_ibu_menyusui_since(self, person_id: uuid.UUID, since: date) -> bool:
        """`repo.served_as_ibu_menyusui_since` on the run's rows (the waitlist day is the UTC date, as there)."""
        return any(
            e.person_id == person_id and e.category == "ibu_menyusui" and e.start_date >= since
            for e in self.rows.enrolments
        ) or any(
            w.person_id == person_id
            and w.category == "ibu_menyusui"
            and w.waitlisted_at.astimezone(UTC).date() >= since
            for w in self.rows.waiting
        )

    async def act_on(
        self,
        env: CloudEvent,
        decision: rules.Decision | rules.Refusal,
        target: placement.Target,
        ref: uuid.UUID | None,
    ) -> None:
        """`placement.place` on the run's rows: never twice, the kitchen with most free places, else wait."""
        if isinstance(decision, rules.Refusal):
            log.info("not_enrolled", rule=decision.rule_id, reason=decision.reason, event_id=env.id)
            return
        rows, person_id, category = self.rows, target.person_id, decision.category
        if any(
            e.person_id == person_id and e.category == category and e.status == "active"
            for e in rows.enrolments
        ):
            return
        if any(
            w.person_id == person_id and w.category == category and w.status == "waiting"
            for w in rows.waiting
        ):
            return
        trigger = placement.Trigger(env.id, ref, env.time)
        await rows.load_kitchens(self.session, [target.village_code])
        options = [
            (k, kitchen_domain.free_places(k.capacity_per_day, rows.places_taken.get(k.id, 0)))
            for k in rows.kitchens[target.village_code]
            if kitchen_domain.serves(k.village_code, k.rws, target.village_code, target.rw)
        ]
        chosen = kitchen_domain.pick_kitchen(options)
        if isinstance(chosen, Kitchen):
            enrolled, event = placement.new_enrolment(
                target=target,
                kitchen=chosen,
                category=category,
                source="automatic",
                rule_id=decision.rule_id,
                rule_version=decision.rule_version,
                planned_days=decision.planned_days,
                priority=decision.priority,
                facts=decision.facts,
                trigger=trigger,
                start_date=business_today(),
            )
            self.session.add(enrolled)
            rows.enrolments.append(enrolled)
            rows.places_taken[chosen.id] = rows.places_taken.get(chosen.id, 0) + 1
            rows.outbox.append(outbox_row(event, key=chosen.id, causation_id=env.id))
            return
        entry, waitlisted = placement.new_waitlist_entry(
            target=target, decision=decision, trigger=trigger, kitchen=options[0][0] if options else None
        )
        self.session.add(entry)
        rows.waiting.append(entry)
        key = entry.kitchen_id or target.village_code
        rows.outbox.append(outbox_row(waitlisted, key=key, causation_id=env.id))


async def _write(session: AsyncSession, rows: _Rows) -> None:
    """What a run changed, as `handle_one_by_one` leaves each event: flushed, then the session emptied.

    The replica rows go in one statement per table (the ORM would write one per row); new rows and changed
    enrolments and waiting entries (rare in a run) through the ORM's flush."""
    persons = [p for p in rows.persons.values() if p.person_id in rows.touched or session.is_modified(p)]
    families = [f for f in rows.families.values() if session.is_modified(f)]
    for replica in (*persons, *families):
        session.expunge(replica)
    await people_repo.write_replica_rows(session, persons, families)
    await session.flush()
    await repo.insert_outbox(session, rows.outbox)
    session.expunge_all()


async def apply_in_order(
    session: AsyncSession, handlers: Mapping[str, Handler], deliveries: Sequence[Delivery]
) -> None:
    """`handle_one_by_one`, with each run of `IN_RUN` events decided on rows read once."""
    start = 0
    while start < len(deliveries):
        end = start
        while end < len(deliveries) and isinstance(deliveries[end].data, IN_RUN):
            end += 1
        if end == start:
            await handle_one_by_one(session, handlers, deliveries[start : start + 1])
            start += 1
            continue
        run = deliveries[start:end]
        rows = await _Rows.load(session, run)
        applying = _Run(session, rows)
        for delivery in run:
            env = delivery.envelope
            token = set_correlation_id(env.correlationid or env.id)
            cause = set_causation_id(env.id)
            try:
                await applying.apply(env, delivery.data)
            finally:
                reset_causation_id(cause)
                reset_correlation_id(token)
        await _write(session, rows)
        start = end
