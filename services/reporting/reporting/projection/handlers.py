"""What the reporting projections do when an event arrives (one handler per event type, never committing)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.projection import domain
from reporting.projection import repository as repo
from reporting.projection.models import Enrolment
from shared.consumer import Handler
from shared.events import CloudEvent
from shared.events import dashat as de
from shared.events import registry as re
from shared.events import uppka as ue

OWNER_KINDS = ("family", "group", "kitchen")


def _kkb(entries: list[dict[str, Any]]) -> str | None:
    state: dict[str, Any] = {}
    for e in domain.sort_entries(entries):
        state.update(e["p"])
    kkb = state.get("kkb")
    return str(kkb) if kkb else None


async def _owner_kkb(session: AsyncSession, owner_id: str | None) -> str | None:
    if owner_id is None:
        return None
    kind, oid = owner_id.split(":", 1)
    owner = await repo.load_entity(session, kind, oid)
    return _kkb(owner.entries) if owner is not None else None


def _kitchen_of(kind: str, entity_id: str, owner_id: str | None) -> str | None:
    if kind == "kitchen":
        return entity_id
    if owner_id is not None and owner_id.startswith("kitchen:"):
        return owner_id.split(":", 1)[1]
    return None


async def _recompute(
    session: AsyncSession,
    kind: str,
    entity_id: str,
    owner_id: str | None,
    entries: list[dict[str, Any]],
    old: dict[str, int],
    owner_kkb: tuple[str | None] | None = None,
) -> None:
    """`owner_kkb`, when given, is the owner's Kampung KB already read in this transaction."""
    if kind in OWNER_KINDS:
        kkb = _kkb(entries)
    elif owner_kkb is not None:
        (kkb,) = owner_kkb
    else:
        kkb = await _owner_kkb(session, owner_id)
    new = domain.contribution(kind, entries, kkb, _kitchen_of(kind, entity_id, owner_id))
    await repo.apply_delta(session, domain.diff(old, new))
    await repo.save_entity(
        session, kind=kind, entity_id=entity_id, owner_id=owner_id, entries=entries, contribution=new
    )


async def record(
    session: AsyncSession,
    envelope: CloudEvent,
    *,
    kind: str,
    entity_id: Any,
    d: date,
    patch: dict[str, Any],
    owner: str | None = None,
    entry_id: str | None = None,
) -> list[dict[str, Any]]:
    """Add one event to an entity's timeline and move the facts by the change in its contribution."""
    eid = str(entity_id)
    owner_kkb: tuple[str | None] | None = None
    if owner is not None and kind not in OWNER_KINDS:
        # The owner is known from the event: read (and lock) it with the entity, in one round trip.
        owner_key = tuple(owner.split(":", 1))
        rows = await repo.load_entities(session, [(kind, eid), (owner_key[0], owner_key[1])])
        row = rows.get((kind, eid))
        owner_row = rows.get((owner_key[0], owner_key[1]))
        owner_kkb = (_kkb(owner_row.entries) if owner_row is not None else None,)
    else:
        row = await repo.load_entity(session, kind, eid)
    old_entries = row.entries if row is not None else []
    old_contribution = dict(row.contribution) if row is not None else {}
    owner_id = owner if owner is not None else (row.owner_id if row is not None else None)
    entry = {"d": d.isoformat(), "ts": envelope.time.isoformat(), "id": entry_id or envelope.id, "p": patch}
    entries = domain.add_entry(old_entries, entry)
    await _recompute(session, kind, eid, owner_id, entries, old_contribution, owner_kkb)
    if kind in OWNER_KINDS and _kkb(old_entries) != _kkb(entries):
        # Everything located through this owner moves to (or out of) its new Kampung KB.
        for dep in await repo.dependants(session, f"{kind}:{eid}"):
            await _recompute(
                session, dep.kind, dep.entity_id, dep.owner_id, dep.entries, dict(dep.contribution)
            )
    return entries


def _day(envelope: CloudEvent) -> date:
    return envelope.time.date()


def _opt(value: Any) -> str | None:
    return str(value) if value is not None else None


# --- registry -------------------------------------------------------------------------------------------


async def family_facts(
    session: AsyncSession, env: CloudEvent, data: re.FamilyRegistered | re.FamilyUpdated
) -> None:
    kkb = _opt(data.kampung_kb_id)
    patch = {"registered": True, "village": data.village_code, "kkb": kkb, "decile": data.welfare_decile}
    await record(session, env, kind="family", entity_id=data.family_id, d=_day(env), patch=patch)
    if kkb:
        await repo.upsert_place(session, f"kkb:{kkb}", data.village_code, kkb)


async def family_moved(session: AsyncSession, env: CloudEvent, data: re.FamilyMoved) -> None:
    await record(
        session,
        env,
        kind="family",
        entity_id=data.family_id,
        d=data.moved_on,
        patch={"village": data.village_code},
    )


async def risk_changed(session: AsyncSession, env: CloudEvent, data: re.StuntingRiskChanged) -> None:
    patch = {"at_risk": data.at_risk, "reasons": sorted(set(data.reasons))}
    await record(session, env, kind="family", entity_id=data.family_id, d=_day(env), patch=patch)


async def person_facts(
    session: AsyncSession, env: CloudEvent, data: re.PersonRegistered | re.PersonUpdated
) -> None:
    patch = {"registered": True, "village": data.village_code, "pus": data.pus, "sex": data.sex}
    await record(
        session,
        env,
        kind="person",
        entity_id=data.person_id,
        d=_day(env),
        patch=patch,
        owner=f"family:{data.family_id}",
    )


async def person_moved(session: AsyncSession, env: CloudEvent, data: re.PersonMoved) -> None:
    gone = data.family_id is None or data.village_code is None
    patch: dict[str, Any] = {"gone": gone}
    if data.village_code is not None:
        patch["village"] = data.village_code
    owner = f"family:{data.family_id}" if data.family_id is not None else None
    await record(
        session, env, kind="person", entity_id=data.person_id, d=data.moved_on, patch=patch, owner=owner
    )


async def person_died(session: AsyncSession, env: CloudEvent, data: re.PersonDied) -> None:
    await record(session, env, kind="person", entity_id=data.person_id, d=data.died_on, patch={"dead": True})


async def persons_merged(session: AsyncSession, env: CloudEvent, data: re.PersonsMerged) -> None:
    # The merged record was a duplicate of `person_id`: it stops counting from the merge on.
    await record(
        session,
        env,
        kind="person",
        entity_id=data.merged_person_id,
        d=_day(env),
        patch={"gone": True},
        owner=f"family:{data.family_id}",
    )


async def kb_status_changed(session: AsyncSession, env: CloudEvent, data: re.KbStatusChanged) -> None:
    patch = {
        "village": data.village_code,
        "pus": data.pus,
        "is_user": data.is_user,
        "method": data.method if data.is_user else None,
        "mkjp": data.mkjp and data.is_user,
        "reason": None if data.is_user else data.reason_non_use,
    }
    await record(
        session,
        env,
        kind="person",
        entity_id=data.person_id,
        d=data.since,
        patch=patch,
        owner=f"family:{data.family_id}",
    )


async def _child(
    session: AsyncSession,
    env: CloudEvent,
    person_id: uuid.UUID,
    family_id: uuid.UUID,
    d: date,
    patch: dict[str, Any],
) -> None:
    await record(
        session, env, kind="child", entity_id=person_id, d=d, patch=patch, owner=f"family:{family_id}"
    )


async def child_measured(session: AsyncSession, env: CloudEvent, data: re.ChildMeasured) -> None:
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
    await _child(session, env, data.person_id, data.family_id, data.measured_on, patch)


async def measurement_retracted(
    session: AsyncSession, env: CloudEvent, data: re.MeasurementRetracted
) -> None:
    patch = {"inactive": True, "measurement_id": str(data.measurement_id)}
    await _child(session, env, data.person_id, data.family_id, data.measured_on, patch)


async def _case(
    session: AsyncSession,
    env: CloudEvent,
    case_id: uuid.UUID,
    family_id: uuid.UUID,
    d: date,
    patch: dict[str, Any],
) -> None:
    """One step in a stunting case's timeline (the case belongs to its family for Kampung KB placement)."""
    await record(session, env, kind="case", entity_id=case_id, d=d, patch=patch, owner=f"family:{family_id}")


async def stunting_detected(session: AsyncSession, env: CloudEvent, data: re.BadutaStuntingDetected) -> None:
    patch = {"detected": True, "severity": data.severity, "village": data.village_code}
    await _case(session, env, data.case_id, data.family_id, data.measured_on, patch)


async def stunting_resolved(session: AsyncSession, env: CloudEvent, data: re.StuntingResolved) -> None:
    patch = {"resolved": True, "village": data.village_code}
    await _case(session, env, data.case_id, data.family_id, data.measured_on, patch)


async def stunting_retracted(session: AsyncSession, env: CloudEvent, data: re.StuntingCaseRetracted) -> None:
    patch = {"retracted": True, "village": data.village_code}
    await _case(session, env, data.case_id, data.family_id, data.retracted_on, patch)


async def _flow(
    session: AsyncSession,
    env: CloudEvent,
    flow_id: str,
    d: date,
    village: str,
    measures: dict[str, int],
    owner: str | None,
) -> None:
    patch = {"village": village, "measures": {k: int(v) for k, v in measures.items() if v}}
    await record(session, env, kind="flow", entity_id=flow_id, d=d, patch=patch, owner=owner)


async def catin_registered(session: AsyncSession, env: CloudEvent, data: re.CatinRegistered) -> None:
    measures = {"f.reg.catin": 1, "f.reg.catin_at_risk": int(data.at_risk)}
    await _flow(
        session,
        env,
        f"catin:{data.catin_id}",
        _day(env),
        data.village_code,
        measures,
        f"family:{data.family_id}",
    )


async def pregnancy_registered(session: AsyncSession, env: CloudEvent, data: re.PregnancyRegistered) -> None:
    measures = {
        "f.reg.pregnancies": 1,
        "f.reg.pregnancies_kek": int(data.kek),
        "f.reg.pregnancies_krs": int(data.krs),
    }
    await _flow(
        session,
        env,
        f"pregnancy:{data.pregnancy_id}",
        _day(env),
        data.village_code,
        measures,
        f"family:{data.family_id}",
    )


async def no_effect(session: AsyncSession, env: CloudEvent, data: Any) -> None:
    """Events no indicator uses yet; applied (for freshness) without effect."""


# --- uppka ----------------------------------------------------------------------------------------------


async def group_facts(
    session: AsyncSession, env: CloudEvent, data: ue.GroupRegistered | ue.GroupUpdated
) -> None:
    kkb = _opt(data.kampung_kb_id)
    patch = {"status": data.status, "village": data.village_code, "kkb": kkb}
    await record(session, env, kind="group", entity_id=data.group_id, d=_day(env), patch=patch)
    if kkb:
        await repo.upsert_place(session, f"kkb:{kkb}", data.village_code, kkb)


async def group_status(session: AsyncSession, env: CloudEvent, data: ue.GroupStatusChanged) -> None:
    await record(
        session, env, kind="group", entity_id=data.group_id, d=data.changed_on, patch={"status": data.status}
    )


async def member_joined(session: AsyncSession, env: CloudEvent, data: ue.MemberJoined) -> None:
    patch = {
        "active": True,
        "village": data.village_code,
        "category": data.category,
        "kb_user": data.kb_user,
        "mkjp": data.mkjp and data.kb_user,
        "method": data.kb_method if data.kb_user else None,
    }
    await record(
        session,
        env,
        kind="member",
        entity_id=data.member_id,
        d=data.joined_on,
        patch=patch,
        owner=f"group:{data.group_id}",
    )


async def member_left(session: AsyncSession, env: CloudEvent, data: ue.MemberLeft) -> None:
    await record(
        session,
        env,
        kind="member",
        entity_id=data.member_id,
        d=data.left_on,
        patch={"active": False},
        owner=f"group:{data.group_id}",
    )


async def member_kb(session: AsyncSession, env: CloudEvent, data: ue.MemberKbStatusChanged) -> None:
    patch = {
        "kb_user": data.kb_user,
        "mkjp": data.mkjp and data.kb_user,
        "method": data.kb_method if data.kb_user else None,
    }
    await record(
        session,
        env,
        kind="member",
        entity_id=data.member_id,
        d=data.changed_on,
        patch=patch,
        owner=f"group:{data.group_id}",
    )


async def business_registered(session: AsyncSession, env: CloudEvent, data: ue.BusinessRegistered) -> None:
    measures = {"f.uppka.businesses": 1, "f.uppka.businesses_supplying_dashat": int(data.supplies_dashat)}
    await _flow(
        session,
        env,
        f"business:{data.business_id}",
        _day(env),
        data.village_code,
        measures,
        f"group:{data.group_id}",
    )


async def report(session: AsyncSession, env: CloudEvent, data: ue.ReportSubmitted | ue.ReportAmended) -> None:
    patch: dict[str, Any] = {
        "village": data.village_code,
        "period": data.period,
        "late": data.late,
        "amendment_no": getattr(data, "amendment_no", 0),
        **{f: getattr(data, f) for f in domain.REPORT_FIGURES},
    }
    d = date.fromisoformat(data.period + "-01")
    await record(
        session,
        env,
        kind="report",
        entity_id=data.report_id,
        d=d,
        patch=patch,
        owner=f"group:{data.group_id}",
    )
    # The group reported in that month; one entry per report, however often it is amended.
    await record(
        session,
        env,
        kind="group",
        entity_id=data.group_id,
        d=d,
        patch={"reported": data.period, "village": data.village_code},
        entry_id=f"report:{data.report_id}",
    )


async def contribution_made(session: AsyncSession, env: CloudEvent, data: ue.DashatContributionMade) -> None:
    measures = {
        "f.uppka.dashat_contributions": data.amount,
        f"f.uppka.dashat_contributions.{data.kind}": data.amount,
        "f.uppka.dashat_contributions_count": 1,
    }
    await _flow(
        session,
        env,
        f"contribution:{data.contribution_id}",
        data.contributed_on,
        data.village_code,
        measures,
        f"group:{data.group_id}",
    )


async def activity_held(session: AsyncSession, env: CloudEvent, data: ue.ActivityHeld) -> None:
    measures = {
        "f.uppka.activities": 1,
        f"f.uppka.activities.{data.activity_type}": 1,
        "f.uppka.activity_attendance": data.attendance,
    }
    await _flow(
        session,
        env,
        f"activity:{data.activity_id}",
        data.held_on,
        data.village_code,
        measures,
        f"group:{data.group_id}",
    )


async def target_set(session: AsyncSession, env: CloudEvent, data: ue.TargetSet) -> None:
    patch = {"province": data.province_code, "year": data.year, "target": data.target_groups}
    await record(
        session, env, kind="target", entity_id=f"{data.province_code}|{data.year}", d=_day(env), patch=patch
    )


# --- dashat ---------------------------------------------------------------------------------------------


async def kitchen_facts(
    session: AsyncSession, env: CloudEvent, data: de.KitchenOpened | de.KitchenUpdated
) -> None:
    kkb = _opt(data.kampung_kb_id)
    patch: dict[str, Any] = {"village": data.village_code, "kkb": kkb, "capacity": data.capacity_per_day}
    d = _day(env)
    if isinstance(data, de.KitchenOpened):
        patch["open"] = True
        d = data.opened_on
    await record(session, env, kind="kitchen", entity_id=data.kitchen_id, d=d, patch=patch)
    await repo.upsert_place(session, f"dapur:{data.kitchen_id}", data.village_code, kkb)
    if kkb:
        await repo.upsert_place(session, f"kkb:{kkb}", data.village_code, kkb)


async def kitchen_closed(session: AsyncSession, env: CloudEvent, data: de.KitchenClosed) -> None:
    await record(
        session, env, kind="kitchen", entity_id=data.kitchen_id, d=data.closed_on, patch={"open": False}
    )


async def enrolled(session: AsyncSession, env: CloudEvent, data: de.BeneficiaryEnrolled) -> None:
    patch = {"enrolled": True, "village": data.village_code, "category": data.category, "source": data.source}
    await record(
        session,
        env,
        kind="enrolment",
        entity_id=data.enrolment_id,
        d=data.start_date,
        patch=patch,
        owner=f"kitchen:{data.kitchen_id}",
    )
    # The child's timeline learns the enrolment, for the HAZ change after it.
    child_patch = {
        "enrol_start": data.start_date.isoformat(),
        "category": data.category,
        "village": data.village_code,
        "kitchen": str(data.kitchen_id),
    }
    await record(
        session,
        env,
        kind="child",
        entity_id=data.person_id,
        d=data.start_date,
        patch=child_patch,
        entry_id=f"enrolment:{data.enrolment_id}",
    )
    wait = (data.enrolled_at - data.triggered_at).total_seconds() if data.triggered_at is not None else None
    await repo.upsert_row(
        session,
        Enrolment,
        {
            "enrolment_id": data.enrolment_id,
            "kitchen_id": data.kitchen_id,
            "person_id": data.person_id,
            "village_code": data.village_code,
            "category": data.category,
            "start_date": data.start_date,
            "enrolled_at": data.enrolled_at,
            "wait_seconds": wait,
        },
        ["enrolment_id"],
    )


async def exited(session: AsyncSession, env: CloudEvent, data: de.BeneficiaryExited) -> None:
    patch = {"exited": True, "reason": data.reason, "village": data.village_code, "category": data.category}
    await record(
        session,
        env,
        kind="enrolment",
        entity_id=data.enrolment_id,
        d=data.exited_on,
        patch=patch,
        owner=f"kitchen:{data.kitchen_id}",
    )


async def waitlisted(session: AsyncSession, env: CloudEvent, data: de.BeneficiaryWaitlisted) -> None:
    measures = {
        "f.dashat.waitlisted": 1,
        f"f.dashat.waitlisted.{data.reason}": 1,
        f"f.dashat.waitlisted_category.{data.category}": 1,
    }
    owner = f"kitchen:{data.kitchen_id}" if data.kitchen_id else None
    await _flow(
        session,
        env,
        f"waitlist:{data.waitlist_id}",
        data.waitlisted_at.date(),
        data.village_code,
        measures,
        owner,
    )


async def meals_served(session: AsyncSession, env: CloudEvent, data: de.MealsServed) -> None:
    measures = {
        "f.dashat.portions_cooked": data.portions_cooked,
        "f.dashat.portions_delivered": data.portions_delivered,
        "f.dashat.portions_consumed": data.portions_consumed,
        "f.dashat.beneficiaries_served": data.beneficiaries_served,
        **{f"f.dashat.served_category.{k}": v for k, v in data.by_category.items()},
    }
    await _flow(
        session,
        env,
        f"meals:{data.batch_id}",
        data.served_on,
        data.village_code,
        measures,
        f"kitchen:{data.kitchen_id}",
    )


async def _ledger(
    session: AsyncSession, env: CloudEvent, kitchen_id: uuid.UUID, d: date, funds: int, spent: int
) -> None:
    """Monthly ledger totals on the kitchen's timeline (one entry per month), for its runway."""
    month = d.isoformat()[:7]
    row = await repo.load_entity(session, "kitchen", str(kitchen_id))
    current = next((e["p"] for e in (row.entries if row else []) if e["id"] == f"ledger:{month}"), None)
    patch = {
        "ledger_month": month,
        "funds": funds + int(current["funds"] if current else 0),
        "spent": spent + int(current["spent"] if current else 0),
    }
    await record(
        session,
        env,
        kind="kitchen",
        entity_id=kitchen_id,
        d=d.replace(day=1),
        patch=patch,
        entry_id=f"ledger:{month}",
    )


async def funds_received(session: AsyncSession, env: CloudEvent, data: de.FundsReceived) -> None:
    measures = {"f.dashat.funds": data.amount, f"f.dashat.funds.{data.source}": data.amount}
    await _flow(
        session,
        env,
        f"ledger:{data.entry_id}",
        data.received_on,
        data.village_code,
        measures,
        f"kitchen:{data.kitchen_id}",
    )
    await _ledger(session, env, data.kitchen_id, data.received_on, data.amount, 0)


async def expense_recorded(session: AsyncSession, env: CloudEvent, data: de.ExpenseRecorded) -> None:
    measures = {"f.dashat.expenses": data.amount, f"f.dashat.expenses.{data.category}": data.amount}
    await _flow(
        session,
        env,
        f"ledger:{data.entry_id}",
        data.spent_on,
        data.village_code,
        measures,
        f"kitchen:{data.kitchen_id}",
    )
    await _ledger(session, env, data.kitchen_id, data.spent_on, 0, data.amount)


async def outcome_flagged(session: AsyncSession, env: CloudEvent, data: de.ChildOutcomeFlagged) -> None:
    await _flow(
        session,
        env,
        f"no_improvement:{data.enrolment_id}",
        data.flagged_on,
        data.village_code,
        {"f.dashat.no_improvement": 1},
        f"kitchen:{data.kitchen_id}",
    )


_HANDLERS: dict[type[Any], Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]] = {
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
    re.PregnancyEnded: no_effect,
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


def _with_status(fn: Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]], topic: str) -> Handler:
    async def handler(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
        await fn(session, envelope, data)
        await repo.touch_status(session, topic, envelope.time)

    handler.__name__ = fn.__name__
    return handler


def handlers() -> dict[str, Handler]:
    """Every event type of the three producers, by type name (freshness kept per logical topic)."""
    return {model.event_type: _with_status(fn, model.topic()) for model, fn in _HANDLERS.items()}
