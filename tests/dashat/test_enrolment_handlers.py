"""Automatic enrolment from registry events, applied through the handlers on the migrated database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashat.enrolment import service as enrolment_service
from dashat.enrolment.rules import RULES_VERSION
from dashat.kitchens.schemas import KitchenUpdate
from dashat.kitchens.service import update
from dashat.models import outbox
from dashat.outcomes.models import ChildMeasurement
from dashat.people.models import PersonReplica
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.events import registry as reg
from tests.dashat.conftest import (
    confirm_recovery,
    deliver,
    envelope,
    fresh_village,
    measured,
    months_ago,
    person,
    retracted,
    stunting,
)
from tests.dashat.helpers import ADMIN, enrolments, open_kitchen, waiting

pytestmark = pytest.mark.integration


async def _events(session: AsyncSession, event_type: str) -> list[dict[str, Any]]:
    async with session.begin():
        rows = await session.execute(select(outbox.c.envelope).where(outbox.c.event_type == event_type))
        return [r[0] for r in rows]


async def test_stunting_detected_enrols_with_explanation(session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    data = stunting(pid, fid, village)
    env = envelope(data)
    assert await deliver(session, env)
    [e] = await enrolments(session, pid)
    assert (e.kitchen_id, e.category, e.status, e.source) == (
        kitchen.id,
        "baduta_stunting",
        "active",
        "automatic",
    )
    assert (e.rule_id, e.rule_version, e.trigger_event_id) == (
        "baduta_stunting_detected",
        RULES_VERSION,
        env.id,
    )
    assert e.facts["case_id"] == str(data.case_id) and e.facts["haz"] == -2.6
    assert e.triggered_at == env.time and e.enrolled_at >= env.time
    assert e.planned_end_date - e.start_date == timedelta(days=90)
    published = await _events(session, "dashat.beneficiary.enrolled.v1")
    mine = [p for p in published if p["data"]["person_id"] == str(pid)]
    assert mine and mine[0]["partitionkey"] == str(kitchen.id) and mine[0]["causationid"] == env.id


async def test_duplicate_event_and_redetection_give_one_enrolment(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    env = envelope(stunting(pid, fid, village))
    assert await deliver(session, env)
    assert not await deliver(session, env)  # same event id: the inbox drops it
    assert await deliver(session, envelope(stunting(pid, fid, village)))  # another case, same child
    assert len(await enrolments(session, pid)) == 1


async def test_retraction_before_detection_never_enrols(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    data = stunting(pid, fid, village)
    assert await deliver(session, envelope(retracted(data)))
    assert await deliver(session, envelope(data))
    assert await enrolments(session, pid) == []
    assert await waiting(session, pid) == []


async def test_person_facts_after_the_stunting_event(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    birth = months_ago(8)
    t0 = datetime.now(UTC)
    assert await deliver(session, envelope(stunting(pid, fid, village, birth_date=birth), time=t0))
    # The registration (older) and an update (newer) arrive afterwards; the update wins, the older never does.
    newer = person(pid, fid, village, sex="L", birth_date=birth, rw="002", updated=True)
    assert await deliver(session, envelope(newer, time=t0 + timedelta(seconds=2)))
    older = person(pid, fid, village, sex="L", birth_date=birth, rw="009")
    assert await deliver(session, envelope(older, time=t0 + timedelta(seconds=1)))
    async with session.begin():
        p = await session.get(PersonReplica, pid)
    assert p is not None and (p.rw, p.sex, p.birth_date) == ("002", "L", birth)
    assert len(await enrolments(session, pid)) == 1


async def test_retraction_withdraws_and_frees_the_place(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=1)
    a, b, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    case_a = stunting(a, fid, village)
    await deliver(session, envelope(case_a))
    await deliver(session, envelope(stunting(b, fid, village)))
    [w] = await waiting(session, b)
    assert (w.status, w.reason) == ("waiting", "kitchen_full")
    cause = envelope(retracted(case_a))
    await deliver(session, cause)
    [ea] = await enrolments(session, a)
    assert (ea.status, ea.exit_reason, ea.exit_causing_event_id) == ("retracted", "retracted", cause.id)
    [eb] = await enrolments(session, b)
    assert eb.status == "active" and eb.waitlist_id == w.id
    exited = [
        e for e in await _events(session, "dashat.beneficiary.exited.v1") if e["data"]["person_id"] == str(a)
    ]
    assert exited[0]["data"]["reason"] == "retracted" and exited[0]["data"]["causing_event_id"] == cause.id


async def test_no_kitchen_waitlists_then_opening_enrols(session: AsyncSession) -> None:
    village = fresh_village()
    pid, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(pid, fid, village, rw="4")))
    [w] = await waiting(session, pid)
    assert (w.reason, w.kitchen_id, w.rw) == ("no_kitchen", None, "004")
    assert await enrolments(session, pid) == []
    # A kitchen for other RWs does not help; one serving RW 004 does.
    await open_kitchen(session, village, rws=["1", "2"])
    assert await enrolments(session, pid) == []
    kitchen = await open_kitchen(session, village, rws=["004"])
    [e] = await enrolments(session, pid)
    assert e.kitchen_id == kitchen.id and e.facts["waitlisted_reason"] == "no_kitchen"
    [w] = await waiting(session, pid)
    assert (w.status, w.enrolment_id) == ("enrolled", e.id)


async def test_full_kitchen_then_capacity_grows_in_priority_order(session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village, capacity=0)
    rich, poor = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(rich, uuid.uuid4(), village, decile=9, krs=False)))
    await deliver(session, envelope(stunting(poor, uuid.uuid4(), village, decile=1, krs=True)))
    await update(session, kitchen.id, KitchenUpdate(capacity_per_day=1), kitchen.version, ADMIN)
    assert len(await enrolments(session, poor)) == 1
    assert await enrolments(session, rich) == []


async def test_resolved_completes_as_recovered(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    data = stunting(pid, fid, village, measured_on=business_today() - timedelta(days=40))
    await deliver(session, envelope(data))
    await confirm_recovery(session, data)
    [e] = await enrolments(session, pid)
    assert (e.status, e.exit_reason) == ("completed", "recovered")


def _pregnancy(pid: uuid.UUID, fid: uuid.UUID, village: str, **kw: object) -> reg.PregnancyRegistered:
    values: dict[str, object] = {
        "pregnancy_id": uuid.uuid4(),
        "person_id": pid,
        "family_id": fid,
        "village_code": village,
        "rw": "001",
        "expected_delivery": datetime.now(UTC).date() + timedelta(days=150),
        "kek": False,
        "anaemia": "none",
        "mother_age_years": 27,
        "welfare_decile": 7,
        "krs": False,
        "rule_version": "test",
    }
    values.update(kw)
    return reg.PregnancyRegistered(**values)


async def test_pregnancy_rules_and_birth(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    at_risk, no_risk, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    preg = _pregnancy(at_risk, fid, village, kek=True)
    await deliver(session, envelope(preg))
    await deliver(session, envelope(_pregnancy(no_risk, uuid.uuid4(), village)))
    [e] = await enrolments(session, at_risk)
    assert e.category == "ibu_hamil" and e.facts["reasons"] == ["kek"]
    assert e.planned_end_date - e.start_date == timedelta(days=120)
    assert await enrolments(session, no_risk) == []
    birth = reg.PregnancyEnded(
        pregnancy_id=preg.pregnancy_id,
        person_id=at_risk,
        family_id=fid,
        village_code=village,
        outcome="birth",
        ended_on=datetime.now(UTC).date(),
        child_person_id=uuid.uuid4(),
    )
    await deliver(session, envelope(birth))
    by_category = {x.category: x for x in await enrolments(session, at_risk)}
    assert (by_category["ibu_hamil"].status, by_category["ibu_hamil"].exit_reason) == (
        "completed",
        "completed",
    )
    assert by_category["ibu_menyusui"].status == "active"
    assert by_category["ibu_menyusui"].rule_id == "birth_breastfeeding"


async def test_pregnancy_in_poor_or_krs_family(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    poor, krs = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(_pregnancy(poor, uuid.uuid4(), village, welfare_decile=3)))
    await deliver(session, envelope(_pregnancy(krs, uuid.uuid4(), village, krs=True)))
    assert (await enrolments(session, poor))[0].facts["reasons"] == ["decile_le_4"]
    assert (await enrolments(session, krs))[0].facts["reasons"] == ["krs"]


async def test_catin_at_risk(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    risky, fine = uuid.uuid4(), uuid.uuid4()
    for pid, at_risk in ((risky, True), (fine, False)):
        await deliver(
            session,
            envelope(
                reg.CatinRegistered(
                    catin_id=uuid.uuid4(),
                    person_id=pid,
                    family_id=uuid.uuid4(),
                    village_code=village,
                    rw="001",
                    sex="P",
                    planned_marriage_date=datetime.now(UTC).date() + timedelta(days=100),
                    lila_cm=22.0,
                    at_risk=at_risk,
                    risks=["kek"] if at_risk else [],
                    rule_version="test",
                )
            ),
        )
    assert [e.category for e in await enrolments(session, risky)] == ["catin"]
    assert await enrolments(session, fine) == []


async def test_death_and_moving_away_exit(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    dies, moves, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(dies, fid, village)))
    await deliver(session, envelope(stunting(moves, fid, village)))
    await deliver(
        session,
        envelope(
            reg.PersonDied(person_id=dies, family_id=fid, village_code=village, died_on=business_today())
        ),
    )
    await deliver(
        session,
        envelope(
            reg.PersonMoved(
                person_id=moves,
                from_family_id=fid,
                family_id=None,
                from_village_code=village,
                moved_on=business_today(),
            )
        ),
    )
    assert [(e.status, e.exit_reason) for e in await enrolments(session, dies)] == [("exited", "died")]
    assert [(e.status, e.exit_reason) for e in await enrolments(session, moves)] == [("exited", "moved")]


async def test_sweep_ages_out_completes_and_flags(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    old, young, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(old, fid, village, birth_date=months_ago(23.5))))
    await deliver(session, envelope(stunting(young, fid, village, birth_date=months_ago(6), haz=-2.5)))
    async with session.begin():
        session.add(
            ChildMeasurement(
                measurement_id=uuid.uuid4(),
                person_id=young,
                measured_on=business_today(),
                age_days=190,
                haz=-2.7,
            )
        )
    counts = await enrolment_service.sweep(session, business_today() + timedelta(days=91))
    assert (
        counts is not None and counts["aged_out"] >= 1 and counts["completed"] >= 1 and counts["flagged"] >= 1
    )
    assert [(e.status, e.exit_reason) for e in await enrolments(session, old)] == [("exited", "aged_out")]
    [e] = await enrolments(session, young)
    assert (e.status, e.exit_reason, e.outcome_flagged_on) == (
        "completed",
        "completed",
        business_today() + timedelta(days=91),
    )


async def test_uppka_contribution_becomes_income_once(session: AsyncSession) -> None:
    from shared.consumer import PoisonEvent
    from shared.events import uppka as up

    village = fresh_village()
    kitchen = await open_kitchen(session, village)
    contribution = up.DashatContributionMade(
        group_id=uuid.uuid4(),
        contribution_id=uuid.uuid4(),
        kitchen_id=kitchen.id,
        village_code=village,
        kind="cash",
        amount=250_000,
        contributed_on=business_today(),
    )
    await deliver(session, envelope(contribution, key=str(contribution.group_id)))
    await deliver(session, envelope(contribution, key=str(contribution.group_id)))  # re-announced, new id
    from dashat.funds.models import LedgerEntry

    async with session.begin():
        total = (
            await session.execute(
                select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kitchen_id == kitchen.id)
            )
        ).scalar_one()
    assert total == 250_000
    stray = contribution.model_copy(update={"kitchen_id": uuid.uuid4(), "contribution_id": uuid.uuid4()})
    with pytest.raises(PoisonEvent):
        await deliver(session, envelope(stray))


async def test_a_measurement_past_the_planned_end_without_improvement_flags_the_child_at_once(
    session: AsyncSession,
) -> None:
    """The no-improvement flag does not wait for the daily sweep when the measurement shows it (once only)."""
    village = fresh_village()
    await open_kitchen(session, village)
    fid = uuid.uuid4()
    overdue = stunting(uuid.uuid4(), fid, village, birth_date=months_ago(12), haz=-2.5)
    on_time = stunting(uuid.uuid4(), fid, village, birth_date=months_ago(12), haz=-2.5)
    for case in (overdue, on_time):
        assert await deliver(session, envelope(case))
    [late] = await enrolments(session, overdue.person_id)
    async with session.begin():  # enrolled 95 days ago: the planned 90 days ended 5 days ago
        row = await session.get(type(late), late.id)
        assert row is not None
        row.start_date = business_today() - timedelta(days=95)
        row.planned_end_date = business_today() - timedelta(days=5)
    assert await deliver(session, envelope(measured(overdue, business_today() - timedelta(days=1), -2.7)))
    assert await deliver(session, envelope(measured(on_time, business_today() - timedelta(days=1), -2.7)))
    [late] = await enrolments(session, overdue.person_id)
    [early] = await enrolments(session, on_time.person_id)
    assert (late.outcome_flagged_on, late.status) == (business_today(), "active")
    assert early.outcome_flagged_on is None  # 90 days not over yet: the sweep judges it at its planned end
    assert await deliver(session, envelope(measured(overdue, business_today(), -2.8)))
    flags = [
        e["data"]
        for e in await _events(session, "dashat.child.no_improvement_flagged.v1")
        if e["data"]["person_id"] in (str(overdue.person_id), str(on_time.person_id))
    ]
    assert [(f["person_id"], f["haz_at_enrolment"], f["haz_latest"]) for f in flags] == [
        (str(overdue.person_id), -2.5, -2.7)
    ]
