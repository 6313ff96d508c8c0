"""What the reporting projections do when events arrive: each event becomes steps (pure), applied per batch.

`apply_batch` folds a whole poll set-based: it loads every entity the poll touches in one query, applies the
steps in memory (pure domain code), and writes entity rows, places, enrolments and fact deltas with a few
array statements. Fact deltas are queued for the rollup (`projection/rollup.py`), which alone writes
rep_fact, so the consumers of two partitions never write the same fact row. The per-event handlers are
`apply_batch` over one event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from aiokafka.partitioner import murmur2
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.projection import domain
from reporting.projection import repository as repo
from reporting.projection.domain import EnrolmentSeen, LedgerAdd, PlaceSeen, Record, Step
from shared.ages import add_months
from shared.consumer import Handler
from shared.events import CloudEvent
from shared.events import dashat as de
from shared.events import registry as re
from shared.events import uppka as ue


class Delivered(Protocol):
    """What the batch fold needs of a consumed record (the consumer runner's `Delivery` has it)."""

    @property
    def envelope(self) -> CloudEvent: ...

    @property
    def data(self) -> Any: ...

    @property
    def partition(self) -> int: ...


def _record(
    env: CloudEvent,
    *,
    kind: str,
    entity_id: Any,
    d: date,
    patch: dict[str, Any],
    owner: str | None = None,
    entry_id: str | None = None,
) -> Record:
    entry = {"d": d.isoformat(), "ts": env.time.isoformat(), "id": entry_id or env.id, "p": patch}
    return Record(kind, str(entity_id), entry, owner)


def _day(envelope: CloudEvent) -> date:
    return envelope.time.date()


def _opt(value: Any) -> str | None:
    return str(value) if value is not None else None


Steps = list[Step]


# --- registry -------------------------------------------------------------------------------------------


def family_facts(env: CloudEvent, data: re.FamilyRegistered | re.FamilyUpdated) -> Steps:
    kkb = _opt(data.kampung_kb_id)
    patch = {"registered": True, "village": data.village_code, "kkb": kkb, "decile": data.welfare_decile}
    steps: Steps = [_record(env, kind="family", entity_id=data.family_id, d=_day(env), patch=patch)]
    if kkb:
        steps.append(PlaceSeen(f"kkb:{kkb}", data.village_code, kkb, env.time))
    return steps


def family_moved(env: CloudEvent, data: re.FamilyMoved) -> Steps:
    patch = {"village": data.village_code}
    return [_record(env, kind="family", entity_id=data.family_id, d=data.moved_on, patch=patch)]


def risk_changed(env: CloudEvent, data: re.StuntingRiskChanged) -> Steps:
    patch: dict[str, Any] = {"at_risk": data.at_risk, "reasons": sorted(set(data.reasons))}
    if data.target is not None:
        patch["target"] = data.target
    return [_record(env, kind="family", entity_id=data.family_id, d=_day(env), patch=patch)]


def person_facts(env: CloudEvent, data: re.PersonRegistered | re.PersonUpdated) -> Steps:
    patch = {
        "registered": True,
        "village": data.village_code,
        "pus": data.pus,
        "sex": data.sex,
        # PUS is re-derived in the fold from these (a wife leaves PUS at 50 without an event), and the
        # relation pairs a wife with her husband.
        "birth_date": data.birth_date.isoformat(),
        "marital_status": data.marital_status,
        "relation": data.relation,
    }
    owner = f"family:{data.family_id}"
    return [_record(env, kind="person", entity_id=data.person_id, d=_day(env), patch=patch, owner=owner)]


def person_moved(env: CloudEvent, data: re.PersonMoved) -> Steps:
    gone = data.family_id is None or data.village_code is None
    patch: dict[str, Any] = {"gone": gone}
    if data.village_code is not None:
        patch["village"] = data.village_code
    owner = f"family:{data.family_id}" if data.family_id is not None else None
    return [_record(env, kind="person", entity_id=data.person_id, d=data.moved_on, patch=patch, owner=owner)]


def person_died(env: CloudEvent, data: re.PersonDied) -> Steps:
    return [_record(env, kind="person", entity_id=data.person_id, d=data.died_on, patch={"dead": True})]


def persons_merged(env: CloudEvent, data: re.PersonsMerged) -> Steps:
    # The merged record was a duplicate of `person_id`: it stops counting from the merge on.
    owner = f"family:{data.family_id}"
    patch = {"gone": True}
    return [
        _record(env, kind="person", entity_id=data.merged_person_id, d=_day(env), patch=patch, owner=owner)
    ]


def kb_status_changed(env: CloudEvent, data: re.KbStatusChanged) -> Steps:
    patch = {
        "village": data.village_code,
        "pus": data.pus,
        "is_user": data.is_user,
        "method": data.method if data.is_user else None,
        "mkjp": data.mkjp and data.is_user,
        "reason": None if data.is_user else data.reason_non_use,
        "since": data.since.isoformat(),
        "source": data.service_source if data.is_user else None,
        "prev_method": data.previous_method,
        "prev_mkjp": data.previous_mkjp,
    }
    owner = f"family:{data.family_id}"
    return [_record(env, kind="person", entity_id=data.person_id, d=data.since, patch=patch, owner=owner)]


def _child(
    env: CloudEvent, person_id: uuid.UUID, family_id: uuid.UUID, d: date, patch: dict[str, Any]
) -> Steps:
    return [_record(env, kind="child", entity_id=person_id, d=d, patch=patch, owner=f"family:{family_id}")]


def child_measured(env: CloudEvent, data: re.ChildMeasured) -> Steps:
    patch = {
        "measured": True,
        "measurement_id": str(data.measurement_id),
        "measured_on": data.measured_on.isoformat(),
        "age_days": data.age_days,
        "has_haz": data.haz is not None,
        "haz": data.haz,
        "haz_flag": data.haz_flag,
        "haz_class": data.haz_class,
        "village": data.village_code,
        "corrects": _opt(data.corrects_measurement_id),
    }
    return _child(env, data.person_id, data.family_id, data.measured_on, patch)


def measurement_retracted(env: CloudEvent, data: re.MeasurementRetracted) -> Steps:
    patch = {"inactive": True, "measurement_id": str(data.measurement_id)}
    return _child(env, data.person_id, data.family_id, data.measured_on, patch)


def _case(env: CloudEvent, case_id: uuid.UUID, family_id: uuid.UUID, d: date, patch: dict[str, Any]) -> Steps:
    """One step in a stunting case's timeline (the case belongs to its family for Kampung KB placement)."""
    return [_record(env, kind="case", entity_id=case_id, d=d, patch=patch, owner=f"family:{family_id}")]


def stunting_detected(env: CloudEvent, data: re.BadutaStuntingDetected) -> Steps:
    patch = {"detected": True, "severity": data.severity, "village": data.village_code}
    return _case(env, data.case_id, data.family_id, data.measured_on, patch)


def stunting_resolved(env: CloudEvent, data: re.StuntingResolved) -> Steps:
    patch = {"resolved": True, "village": data.village_code}
    return _case(env, data.case_id, data.family_id, data.measured_on, patch)


def stunting_retracted(env: CloudEvent, data: re.StuntingCaseRetracted) -> Steps:
    patch = {"retracted": True, "village": data.village_code}
    return _case(env, data.case_id, data.family_id, data.retracted_on, patch)


def _flow(
    env: CloudEvent, flow_id: str, d: date, village: str, measures: dict[str, int], owner: str | None
) -> Steps:
    patch = {"village": village, "measures": {k: int(v) for k, v in measures.items() if v}}
    return [_record(env, kind="flow", entity_id=flow_id, d=d, patch=patch, owner=owner)]


def catin_registered(env: CloudEvent, data: re.CatinRegistered) -> Steps:
    # Screened (registered with BMI, LiLA, Hb) in the month; a DASHAT target from then until the planned
    # marriage (a stock ending in the wedding's month).
    measures = {"f.reg.catin": 1, "f.reg.catin_at_risk": int(data.at_risk)}
    owner = f"family:{data.family_id}"
    day = _day(env)
    steps = _flow(env, f"catin:{data.catin_id}", day, data.village_code, measures, owner)
    if data.planned_marriage_date > day:
        target = {"village": data.village_code, "measures": {"s.reg.catin_target": 1}}
        ended = {"village": data.village_code, "measures": {"s.reg.catin_target": -1}}
        steps += [
            _record(env, kind="flow", entity_id=f"catin:{data.catin_id}", d=day, patch=target, owner=owner,
                    entry_id=f"{env.id}:target"),
            _record(env, kind="flow", entity_id=f"catin:{data.catin_id}", d=data.planned_marriage_date,
                    patch=ended, owner=owner, entry_id=f"{env.id}:married"),
        ]  # fmt: skip
    return steps


def pregnancy_registered(env: CloudEvent, data: re.PregnancyRegistered) -> Steps:
    anaemic = data.anaemia is not None and data.anaemia != "none"
    measures = {
        "f.reg.pregnancies": 1,
        "f.reg.pregnancies_kek": int(data.kek),
        # The flag (events before it carry the raw `lila_cm`: the event model derives the flag from it).
        "f.reg.pregnancies_lila_measured": int(bool(data.lila_measured)),
        "f.reg.pregnancies_hb_measured": int(data.anaemia is not None),
        "f.reg.pregnancies_anaemia": int(anaemic),
        **({f"f.reg.pregnancies_anaemia.{data.anaemia}": 1} if anaemic else {}),
        "f.reg.pregnancies_krs": int(data.krs),
        # Pregnant now (ibu hamil, a DASHAT target) until the pregnancy ends.
        "s.reg.pregnant": 1,
    }
    owner = f"family:{data.family_id}"
    return _flow(env, f"pregnancy:{data.pregnancy_id}", _day(env), data.village_code, measures, owner)


# A breastfeeding mother is a DASHAT target while her baby is under six months (issue 11, exclusive
# breastfeeding per WHO); only births the registry tells through a registered pregnancy are known.
BREASTFEEDING_TARGET_MONTHS = 6


def pregnancy_ended(env: CloudEvent, data: re.PregnancyEnded) -> Steps:
    owner = f"family:{data.family_id}"
    entity = f"pregnancy:{data.pregnancy_id}"
    steps = _flow(env, entity, data.ended_on, data.village_code, {"s.reg.pregnant": -1}, owner)
    if data.outcome == "birth":
        feeding = {"village": data.village_code, "measures": {"s.reg.breastfeeding": 1}}
        weaned = {"village": data.village_code, "measures": {"s.reg.breastfeeding": -1}}
        steps += [
            _record(env, kind="flow", entity_id=entity, d=data.ended_on, patch=feeding, owner=owner,
                    entry_id=f"{env.id}:birth"),
            _record(env, kind="flow", entity_id=entity,
                    d=add_months(data.ended_on, BREASTFEEDING_TARGET_MONTHS), patch=weaned, owner=owner,
                    entry_id=f"{env.id}:six_months"),
        ]  # fmt: skip
    return steps


# --- uppka ----------------------------------------------------------------------------------------------


def group_facts(env: CloudEvent, data: ue.GroupRegistered | ue.GroupUpdated) -> Steps:
    kkb = _opt(data.kampung_kb_id)
    founded = data.founded_on.isoformat() if data.founded_on else None
    patch: dict[str, Any] = {"village": data.village_code, "kkb": kkb, "founded_on": founded}
    d = _day(env)
    if isinstance(data, ue.GroupRegistered):
        # A group counts from its founding, not from when its record reached the system; its status after
        # registration travels only in status_changed events (dated when the change took effect).
        patch |= {"status": data.status, "registered": True}
        d = data.founded_on or d
    steps: Steps = [_record(env, kind="group", entity_id=data.group_id, d=d, patch=patch)]
    if kkb:
        steps.append(PlaceSeen(f"kkb:{kkb}", data.village_code, kkb, env.time))
    return steps


def group_status(env: CloudEvent, data: ue.GroupStatusChanged) -> Steps:
    patch = {"status": data.status}
    return [_record(env, kind="group", entity_id=data.group_id, d=data.changed_on, patch=patch)]


def member_joined(env: CloudEvent, data: ue.MemberJoined) -> Steps:
    patch = {
        "active": True,
        "village": data.village_code,
        "category": data.category,
        "kb_user": data.kb_user,
        "mkjp": data.mkjp and data.kb_user,
        "method": data.kb_method if data.kb_user else None,
    }
    owner = f"group:{data.group_id}"
    return [_record(env, kind="member", entity_id=data.member_id, d=data.joined_on, patch=patch, owner=owner)]


def member_left(env: CloudEvent, data: ue.MemberLeft) -> Steps:
    owner = f"group:{data.group_id}"
    patch = {"active": False}
    return [_record(env, kind="member", entity_id=data.member_id, d=data.left_on, patch=patch, owner=owner)]


def member_category(env: CloudEvent, data: ue.MemberCategoryChanged) -> Steps:
    """A member's category changed with age or the registry's facts: the stocks move on the day it took effect."""
    owner = f"group:{data.group_id}"
    patch = {"category": data.category}
    return [
        _record(env, kind="member", entity_id=data.member_id, d=data.changed_on, patch=patch, owner=owner)
    ]


def member_kb(env: CloudEvent, data: ue.MemberKbStatusChanged) -> Steps:
    patch = {
        "kb_user": data.kb_user,
        "mkjp": data.mkjp and data.kb_user,
        "method": data.kb_method if data.kb_user else None,
    }
    owner = f"group:{data.group_id}"
    return [
        _record(env, kind="member", entity_id=data.member_id, d=data.changed_on, patch=patch, owner=owner)
    ]


def business_registered(env: CloudEvent, data: ue.BusinessRegistered) -> Steps:
    # New in the month (f.) and registered to date (s.: a business has no closing event yet).
    measures = {
        "f.uppka.businesses": 1,
        "f.uppka.businesses_supplying_dashat": int(data.supplies_dashat),
        "s.uppka.businesses": 1,
        "s.uppka.businesses_supplying_dashat": int(data.supplies_dashat),
    }
    owner = f"group:{data.group_id}"
    return _flow(env, f"business:{data.business_id}", _day(env), data.village_code, measures, owner)


def report(env: CloudEvent, data: ue.ReportSubmitted | ue.ReportAmended) -> Steps:
    patch: dict[str, Any] = {
        "village": data.village_code,
        "period": data.period,
        "late": data.late,
        "amendment_no": getattr(data, "amendment_no", 0),
        **{f: getattr(data, f) for f in domain.REPORT_FIGURES},
    }
    d = date.fromisoformat(data.period + "-01")
    owner = f"group:{data.group_id}"
    # The group reported in that month; one entry per report, however often it is amended.
    reported = {"reported": data.period, "village": data.village_code, "late": data.late}
    return [
        _record(env, kind="report", entity_id=data.report_id, d=d, patch=patch, owner=owner),
        _record(
            env,
            kind="group",
            entity_id=data.group_id,
            d=d,
            patch=reported,
            entry_id=f"report:{data.report_id}",
        ),
    ]


def contribution_made(env: CloudEvent, data: ue.DashatContributionMade) -> Steps:
    measures = {
        "f.uppka.dashat_contributions": data.amount,
        f"f.uppka.dashat_contributions.{data.kind}": data.amount,
        "f.uppka.dashat_contributions_count": 1,
    }
    owner = f"group:{data.group_id}"
    # The group's timeline learns it too: groups contributing to DASHAT are counted once per period.
    contributed = {"contributed": data.contributed_on.isoformat(), "village": data.village_code}
    return [
        *_flow(
            env,
            f"contribution:{data.contribution_id}",
            data.contributed_on,
            data.village_code,
            measures,
            owner,
        ),
        _record(
            env,
            kind="group",
            entity_id=data.group_id,
            d=data.contributed_on,
            patch=contributed,
            entry_id=f"contribution:{data.contribution_id}",
        ),
    ]


def activity_held(env: CloudEvent, data: ue.ActivityHeld) -> Steps:
    measures = {
        "f.uppka.activities": 1,
        f"f.uppka.activities.{data.activity_type}": 1,
        "f.uppka.activity_attendance": data.attendance,
        f"f.uppka.activity_attendance.{data.activity_type}": data.attendance,
    }
    owner = f"group:{data.group_id}"
    return _flow(env, f"activity:{data.activity_id}", data.held_on, data.village_code, measures, owner)


def target_set(env: CloudEvent, data: ue.TargetSet) -> Steps:
    patch = {"province": data.province_code, "year": data.year, "target": data.target_groups}
    entity_id = f"{data.province_code}|{data.year}"
    return [_record(env, kind="target", entity_id=entity_id, d=_day(env), patch=patch)]


# --- dashat ---------------------------------------------------------------------------------------------


def kitchen_facts(env: CloudEvent, data: de.KitchenOpened | de.KitchenUpdated) -> Steps:
    kkb = _opt(data.kampung_kb_id)
    patch: dict[str, Any] = {"village": data.village_code, "kkb": kkb, "capacity": data.capacity_per_day}
    d = _day(env)
    if isinstance(data, de.KitchenOpened):
        patch["open"] = True
        d = data.opened_on
    steps: Steps = [
        _record(env, kind="kitchen", entity_id=data.kitchen_id, d=d, patch=patch),
        PlaceSeen(f"dapur:{data.kitchen_id}", data.village_code, kkb, env.time),
    ]
    if kkb:
        steps.append(PlaceSeen(f"kkb:{kkb}", data.village_code, kkb, env.time))
    return steps


def kitchen_closed(env: CloudEvent, data: de.KitchenClosed) -> Steps:
    return [_record(env, kind="kitchen", entity_id=data.kitchen_id, d=data.closed_on, patch={"open": False})]


def enrolled(env: CloudEvent, data: de.BeneficiaryEnrolled) -> Steps:
    patch = {"enrolled": True, "village": data.village_code, "category": data.category, "source": data.source}
    # The child's timeline learns the enrolment, for the HAZ change after it.
    child_patch = {
        "enrol_start": data.start_date.isoformat(),
        "category": data.category,
        "village": data.village_code,
        "kitchen": str(data.kitchen_id),
    }
    wait = (data.enrolled_at - data.triggered_at).total_seconds() if data.triggered_at is not None else None
    return [
        _record(
            env,
            kind="enrolment",
            entity_id=data.enrolment_id,
            d=data.start_date,
            patch=patch,
            owner=f"kitchen:{data.kitchen_id}",
        ),
        _record(
            env,
            kind="child",
            entity_id=data.person_id,
            d=data.start_date,
            patch=child_patch,
            entry_id=f"enrolment:{data.enrolment_id}",
        ),
        EnrolmentSeen(
            {
                "enrolment_id": data.enrolment_id,
                "kitchen_id": data.kitchen_id,
                "person_id": data.person_id,
                "village_code": data.village_code,
                "category": data.category,
                "start_date": data.start_date,
                "enrolled_at": data.enrolled_at,
                "wait_seconds": wait,
            }
        ),
    ]


def exited(env: CloudEvent, data: de.BeneficiaryExited) -> Steps:
    patch = {"exited": True, "reason": data.reason, "village": data.village_code, "category": data.category}
    owner = f"kitchen:{data.kitchen_id}"
    return [
        _record(
            env, kind="enrolment", entity_id=data.enrolment_id, d=data.exited_on, patch=patch, owner=owner
        )
    ]


def waitlisted(env: CloudEvent, data: de.BeneficiaryWaitlisted) -> Steps:
    measures = {
        "f.dashat.waitlisted": 1,
        f"f.dashat.waitlisted.{data.reason}": 1,
        f"f.dashat.waitlisted_category.{data.category}": 1,
    }
    owner = f"kitchen:{data.kitchen_id}" if data.kitchen_id else None
    return _flow(
        env, f"waitlist:{data.waitlist_id}", data.waitlisted_at.date(), data.village_code, measures, owner
    )


def meals_served(env: CloudEvent, data: de.MealsServed) -> Steps:
    measures = {
        "f.dashat.portions_cooked": data.portions_cooked,
        "f.dashat.portions_delivered": data.portions_delivered,
        "f.dashat.portions_consumed": data.portions_consumed,
        "f.dashat.beneficiaries_served": data.beneficiaries_served,
        **{f"f.dashat.served_category.{k}": v for k, v in data.by_category.items()},
    }
    owner = f"kitchen:{data.kitchen_id}"
    return _flow(env, f"meals:{data.batch_id}", data.served_on, data.village_code, measures, owner)


def _ledger(env: CloudEvent, kitchen_id: uuid.UUID, d: date, funds: int, spent: int) -> LedgerAdd:
    """Monthly ledger totals on the kitchen's timeline (one entry per month), for its runway."""
    return LedgerAdd(str(kitchen_id), d.isoformat()[:7], funds, spent, env.time.isoformat(), env.id)


def funds_received(env: CloudEvent, data: de.FundsReceived) -> Steps:
    measures = {"f.dashat.funds": data.amount, f"f.dashat.funds.{data.source}": data.amount}
    owner = f"kitchen:{data.kitchen_id}"
    return [
        *_flow(env, f"ledger:{data.entry_id}", data.received_on, data.village_code, measures, owner),
        _ledger(env, data.kitchen_id, data.received_on, data.amount, 0),
    ]


def expense_recorded(env: CloudEvent, data: de.ExpenseRecorded) -> Steps:
    measures = {"f.dashat.expenses": data.amount, f"f.dashat.expenses.{data.category}": data.amount}
    owner = f"kitchen:{data.kitchen_id}"
    return [
        *_flow(env, f"ledger:{data.entry_id}", data.spent_on, data.village_code, measures, owner),
        _ledger(env, data.kitchen_id, data.spent_on, 0, data.amount),
    ]


def outcome_flagged(env: CloudEvent, data: de.ChildOutcomeFlagged) -> Steps:
    owner = f"kitchen:{data.kitchen_id}"
    measures = {"f.dashat.no_improvement": 1}
    return _flow(
        env, f"no_improvement:{data.enrolment_id}", data.flagged_on, data.village_code, measures, owner
    )


Planner = Callable[[CloudEvent, Any], Steps]

_PLANNERS: dict[type[Any], Planner] = {
    re.FamilyRegistered: family_facts,
    re.FamilyUpdated: family_facts,
    re.FamilyMoved: family_moved,
    re.StuntingRiskChanged: risk_changed,
    re.PersonRegistered: person_facts,
    re.PersonUpdated: person_facts,
    re.PersonMoved: person_moved,
    re.PersonDied: person_died,
    re.PersonsMerged: persons_merged,
    re.KbStatusChanged: kb_status_changed,
    re.CatinRegistered: catin_registered,
    re.PregnancyRegistered: pregnancy_registered,
    re.PregnancyEnded: pregnancy_ended,
    re.ChildMeasured: child_measured,
    re.MeasurementRetracted: measurement_retracted,
    re.BadutaStuntingDetected: stunting_detected,
    re.StuntingResolved: stunting_resolved,
    re.StuntingCaseRetracted: stunting_retracted,
    ue.GroupRegistered: group_facts,
    ue.GroupUpdated: group_facts,
    ue.GroupStatusChanged: group_status,
    ue.MemberJoined: member_joined,
    ue.MemberLeft: member_left,
    ue.MemberKbStatusChanged: member_kb,
    ue.MemberCategoryChanged: member_category,
    ue.BusinessRegistered: business_registered,
    ue.ReportSubmitted: report,
    ue.ReportAmended: report,
    ue.DashatContributionMade: contribution_made,
    ue.ActivityHeld: activity_held,
    ue.TargetSet: target_set,
    de.KitchenOpened: kitchen_facts,
    de.KitchenUpdated: kitchen_facts,
    de.KitchenClosed: kitchen_closed,
    de.BeneficiaryEnrolled: enrolled,
    de.BeneficiaryWaitlisted: waitlisted,
    de.BeneficiaryExited: exited,
    de.MealsServed: meals_served,
    de.FundsReceived: funds_received,
    de.ExpenseRecorded: expense_recorded,
    de.ChildOutcomeFlagged: outcome_flagged,
}
PLANNERS: dict[str, Planner] = {model.event_type: fn for model, fn in _PLANNERS.items()}


async def apply_batch(session: AsyncSession, deliveries: Sequence[Delivered]) -> None:
    """Fold a batch of events set-based: one load of the touched entities, one write of each kind of row."""
    steps: list[Step] = []
    status: dict[tuple[str, int], list[Any]] = {}
    slots: list[tuple[int, list[Step]]] = []
    for d in deliveries:
        env = d.envelope
        producer = env.type.split(".", 1)[0]
        planned = PLANNERS[env.type](env, d.data)
        steps += planned
        slots.append((domain.slot_of(producer, d.partition), planned))
        seen = status.setdefault((f"kencana.{producer}", d.partition), [env.time, 0])
        seen[0], seen[1] = max(seen[0], env.time), seen[1] + 1
    await _fold(session, slots)
    for (topic, partition), (latest, count) in status.items():
        repo.touch_status(session, topic, partition, latest, count)


async def _fold(session: AsyncSession, events: list[tuple[int, Steps]]) -> None:
    all_steps = [s for _, planned in events for s in planned]
    keys = domain.touched_keys(all_steps)
    if keys:
        loaded = await repo.lock_entities(session, keys)
        entities = {
            k: domain.Tracked.of(k[0], k[1], *loaded[k])
            if k in loaded
            else domain.Tracked.of(k[0], k[1], None, [], {})
            for k in keys
        }
        for slot, planned in events:
            domain.apply_steps(entities, planned, slot)
        moved = domain.owners_moved(entities)
        if moved:
            for (kind, entity_id), (owner_id, entries, contribution) in (
                await repo.lock_dependants(session, moved)
            ).items():
                if (kind, entity_id) not in entities and owner_id is not None:
                    dep = domain.Tracked.of(kind, entity_id, owner_id, entries, contribution)
                    dep.slot = entities[domain.owner_key(owner_id)].slot
                    entities[(kind, entity_id)] = dep
        families = domain.households(entities)
        if families:
            domain.add_household(entities, await repo.lock_household(session, families))
        owners = await repo.read_timelines(session, domain.owners_to_read(entities))
        deltas, rows = domain.settle(entities, owners)
        await repo.save_entities(
            session, [(t.kind, t.entity_id, t.owner_id, entries, new) for t, entries, new in rows]
        )
        for delta in deltas.values():
            repo.add_facts(session, delta)
    # Per region and slot, the place seen at the latest event time (as one event at a time would leave it).
    places: dict[tuple[str, int], PlaceSeen] = {}
    for slot, planned in events:
        for s in planned:
            if isinstance(s, PlaceSeen):
                seen = places.get((s.region, slot))
                if seen is None or s.seen_at >= seen.seen_at:
                    places[(s.region, slot)] = s
    if places:
        await repo.save_places(
            session,
            [(r, slot, p.village_code, p.kampung_kb, p.seen_at) for (r, slot), p in places.items()],
        )
    enrolments = {s.row["enrolment_id"]: s.row for s in all_steps if isinstance(s, EnrolmentSeen)}
    if enrolments:
        await repo.save_enrolments(session, list(enrolments.values()))


@dataclass(frozen=True)
class _One:
    envelope: CloudEvent
    data: Any
    partition: int


def handlers(partitions: int = 6) -> dict[str, Handler]:
    """Every event type of the three producers, by type name: the batch fold over one event.

    A handler is not told the partition its event came from; the producer's partitioner gives the same one
    from the key (and should the count differ, a delta in another slot still sums to the same figures).
    """

    def handler_for(planner: Planner) -> Handler:
        async def handler(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
            key = (envelope.partitionkey or envelope.id).encode()
            partition = (murmur2(key) & 0x7FFFFFFF) % partitions
            await apply_batch(session, [_One(envelope, data, partition)])

        handler.__name__ = planner.__name__
        return handler

    return {event_type: handler_for(planner) for event_type, planner in PLANNERS.items()}
