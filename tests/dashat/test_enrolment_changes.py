"""What happens to enrolments when people's lives change: loss, moves, merged records, new KRS/decile facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashat.enrolment.models import Enrolment
from dashat.kitchens.schemas import KitchenUpdate
from dashat.kitchens.service import update as update_kitchen
from dashat.meals.models import MealBatch, MealServing
from dashat.models import outbox
from dashat.outcomes.models import ChildMeasurement
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.events import registry as reg
from tests.dashat.conftest import (
    confirm_recovery,
    deliver,
    ended,
    envelope,
    fresh_village,
    moved,
    pregnancy,
    stunting,
)
from tests.dashat.helpers import ADMIN, enrolments, open_kitchen, waiting

pytestmark = pytest.mark.integration


async def _events(session: AsyncSession, event_type: str, person_id: uuid.UUID) -> list[dict[str, Any]]:
    async with session.begin():
        rows = await session.execute(select(outbox.c.envelope).where(outbox.c.event_type == event_type))
        return [r[0]["data"] for r in rows if r[0]["data"]["person_id"] == str(person_id)]


async def test_pregnancy_loss_exits_as_pregnancy_lost(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    p = pregnancy(pid, fid, village)
    await deliver(session, envelope(p))
    loss = envelope(ended(p, "loss"))
    await deliver(session, loss)
    [e] = await enrolments(session, pid)  # no ibu_menyusui after a loss
    assert (e.category, e.status, e.exit_reason, e.exit_causing_event_id) == (
        "ibu_hamil",
        "exited",
        "pregnancy_lost",
        loss.id,
    )
    [exited] = await _events(session, "dashat.beneficiary.exited.v1", pid)
    assert exited["reason"] == "pregnancy_lost"


async def test_move_continues_in_the_kitchen_of_the_new_place(session: AsyncSession) -> None:
    old_village, new_village = fresh_village(), fresh_village()
    await open_kitchen(session, old_village)
    new_kitchen = await open_kitchen(session, new_village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    case = stunting(pid, fid, old_village, measured_on=business_today() - timedelta(days=40))
    await deliver(session, envelope(case))
    [before] = await enrolments(session, pid)
    move = envelope(moved(pid, fid, old_village, new_village))
    await deliver(session, move)
    by_status = {e.status: e for e in await enrolments(session, pid)}
    old, new = by_status["exited"], by_status["active"]
    assert (old.id, old.exit_reason, old.exit_causing_event_id) == (before.id, "moved", move.id)
    assert (new.kitchen_id, new.village_code, new.category) == (
        new_kitchen.id,
        new_village,
        "baduta_stunting",
    )
    # The rest of the planned time, the explanation of the continuation, and what outcomes need.
    assert new.planned_end_date == before.planned_end_date
    assert (new.rule_id, new.trigger_event_id, new.trigger_ref) == (
        "moved_continuation",
        move.id,
        case.case_id,
    )
    assert new.facts["continues_enrolment_id"] == str(before.id) and new.facts["haz"] == case.haz
    # The case resolved later still finds the enrolment that continues it.
    await confirm_recovery(session, case)
    async with session.begin():
        await session.refresh(new)
    assert (new.status, new.exit_reason) == ("completed", "recovered")


async def test_move_without_a_kitchen_waitlists_for_the_remaining_time(session: AsyncSession) -> None:
    old_village, new_village = fresh_village(), fresh_village()
    await open_kitchen(session, old_village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(pid, fid, old_village)))
    [before] = await enrolments(session, pid)
    family_move = reg.FamilyMoved(
        family_id=fid,
        from_village_code=old_village,
        village_code=new_village,
        rw="003",
        moved_on=business_today(),
    )
    await deliver(session, envelope(family_move))
    [e] = await enrolments(session, pid)
    assert (e.status, e.exit_reason) == ("exited", "moved")
    [w] = await waiting(session, pid)
    assert (w.status, w.reason, w.village_code, w.rw) == ("waiting", "no_kitchen", new_village, "003")
    assert (
        w.rule_id == "moved_continuation"
        and w.planned_days == (before.planned_end_date - business_today()).days
    )
    published = await _events(session, "dashat.beneficiary.waitlisted.v1", pid)
    assert [p["reason"] for p in published] == ["no_kitchen"]
    # A kitchen opening there takes the child at once.
    kitchen = await open_kitchen(session, new_village)
    active = [x for x in await enrolments(session, pid) if x.status == "active"]
    assert [(x.kitchen_id, x.waitlist_id) for x in active] == [(kitchen.id, w.id)]


async def test_waiting_target_who_moves_waits_or_is_enrolled_where_they_live(session: AsyncSession) -> None:
    old_village, new_village = fresh_village(), fresh_village()
    kitchen = await open_kitchen(session, new_village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(pid, fid, old_village)))
    [w] = await waiting(session, pid)
    await deliver(session, envelope(moved(pid, fid, old_village, new_village)))
    [e] = await enrolments(session, pid)
    assert (e.kitchen_id, e.status, e.rule_id) == (kitchen.id, "active", "baduta_stunting_detected")
    assert e.facts["moved_from_waitlist_id"] == str(w.id)
    async with session.begin():
        await session.refresh(w)
    assert (w.status, w.resolution) == ("cancelled", "moved")


async def test_move_inside_the_kitchen_area_keeps_the_enrolment(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, rws=["1", "2"])
    pid, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(pid, fid, village, rw="1")))
    await deliver(session, envelope(moved(pid, fid, village, village, rw="2")))
    assert [e.status for e in await enrolments(session, pid)] == ["active"]


async def _serve(session: AsyncSession, slot: str, *served: Enrolment) -> None:
    async with session.begin():
        batch = MealBatch(
            id=uuid.uuid4(),
            kitchen_id=served[0].kitchen_id,
            served_on=business_today(),
            slot=slot,
            portions_cooked=len(served),
            portions_delivered=len(served),
            portions_consumed=len(served),
            content_hash=uuid.uuid4().hex,
        )
        session.add(batch)
        await session.flush()
        for enrolment in served:
            session.add(
                MealServing(
                    batch_id=batch.id,
                    enrolment_id=enrolment.id,
                    person_id=enrolment.person_id,
                    served_on=business_today(),
                    slot=slot,
                    category=enrolment.category,
                )
            )


async def test_merged_records_move_to_the_surviving_person(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=2)
    merged, survivor, waiting_child, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(merged, fid, village)))
    async with session.begin():
        # The merged record's enrolment is the earlier one.
        await session.execute(
            update(Enrolment)
            .where(Enrolment.person_id == merged)
            .values(start_date=Enrolment.start_date - timedelta(days=5))
        )
    await deliver(session, envelope(stunting(survivor, fid, village)))
    await deliver(session, envelope(stunting(waiting_child, uuid.uuid4(), village)))
    [earlier], [later] = await enrolments(session, merged), await enrolments(session, survivor)
    [w] = await waiting(session, waiting_child)
    await _serve(session, "siang", earlier, later)  # the same portion recorded under both ids
    await _serve(session, "pagi", earlier)
    measurement = uuid.uuid4()
    async with session.begin():
        session.add(
            ChildMeasurement(
                measurement_id=measurement,
                person_id=merged,
                measured_on=business_today(),
                age_days=300,
                haz=-2.4,
            )
        )
    merge = envelope(reg.PersonsMerged(person_id=survivor, merged_person_id=merged, family_id=fid))
    await deliver(session, merge)
    assert await enrolments(session, merged) == []
    by_id = {e.id: e for e in await enrolments(session, survivor)}
    assert set(by_id) == {earlier.id, later.id}
    assert by_id[earlier.id].status == "active"
    assert (by_id[later.id].status, by_id[later.id].exit_reason, by_id[later.id].exit_causing_event_id) == (
        "exited",
        "merged",
        merge.id,
    )
    # The freed place went to the waiting child in the same transaction.
    [e] = await enrolments(session, waiting_child)
    assert (e.status, e.waitlist_id) == ("active", w.id)
    async with session.begin():
        servings = (
            await session.execute(
                select(MealServing.person_id, MealServing.slot).where(
                    MealServing.person_id.in_([merged, survivor])
                )
            )
        ).all()
        m = await session.get(ChildMeasurement, measurement)
    assert sorted(servings) == [(survivor, "pagi"), (survivor, "siang")]
    assert m is not None and m.person_id == survivor
    exited = await _events(session, "dashat.beneficiary.exited.v1", survivor)
    assert [x["reason"] for x in exited] == ["merged"]


async def test_merged_waiting_entries_keep_one(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=1)
    merged, survivor, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # The survivor takes the only place as baduta; every other wish waits (the merged record's catin first).
    await deliver(session, envelope(stunting(survivor, fid, village)))
    await deliver(session, envelope(_catin(merged, fid, village)))
    await deliver(session, envelope(_catin(survivor, fid, village)))
    await deliver(session, envelope(stunting(merged, fid, village)))
    [merged_catin] = [w for w in await waiting(session, merged) if w.category == "catin"]
    merge = reg.PersonsMerged(person_id=survivor, merged_person_id=merged, family_id=fid)
    await deliver(session, envelope(merge))
    assert await waiting(session, merged) == []
    entries = await waiting(session, survivor)
    assert sorted((w.category, w.status, w.resolution or "") for w in entries) == [
        ("baduta_stunting", "cancelled", "already_enrolled"),
        ("catin", "cancelled", "merged"),
        ("catin", "waiting", ""),
    ]
    assert [w.id for w in entries if w.status == "waiting"] == [merged_catin.id]
    [e] = await enrolments(session, survivor)
    assert (e.category, e.status) == ("baduta_stunting", "active")


def _catin(pid: uuid.UUID, fid: uuid.UUID, village: str) -> reg.CatinRegistered:
    return reg.CatinRegistered(
        catin_id=uuid.uuid4(),
        person_id=pid,
        family_id=fid,
        village_code=village,
        rw="001",
        sex="P",
        planned_marriage_date=business_today() + timedelta(days=100),
        lila_cm=22.0,
        at_risk=True,
        risks=["kek"],
        rule_version="test",
    )


async def test_family_krs_and_decile_changes_reorder_the_waitlist(session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village, capacity=1)
    enrolled, rich, poorer, fid, other_fid = (uuid.uuid4() for _ in range(5))
    t0 = datetime.now(UTC)
    await deliver(session, envelope(stunting(enrolled, fid, village, decile=9, krs=False), time=t0))
    await deliver(session, envelope(stunting(rich, fid, village, decile=9, krs=False), time=t0))
    await deliver(session, envelope(stunting(poorer, other_fid, village, decile=5, krs=False), time=t0))
    [active] = await enrolments(session, enrolled)
    assert [w.priority for w in await waiting(session, rich)] == [18]
    # The family turns out to be a KRS family in decile 2: its members move ahead of decile 5.
    risk = reg.StuntingRiskChanged(
        family_id=fid,
        village_code=village,
        at_risk=True,
        reasons=["no_latrine"],
        welfare_decile=2,
        rule_version="t",
    )
    await deliver(session, envelope(risk, time=t0 + timedelta(seconds=1)))
    assert [w.priority for w in await waiting(session, rich)] == [3]
    async with session.begin():
        await session.refresh(active)
    assert (active.priority, active.version) == (3, 2)
    # A newer decile from the family update counts; an older one is ignored.
    newer = reg.FamilyUpdated(family_id=fid, village_code=village, rw="001", welfare_decile=4)
    await deliver(session, envelope(newer, time=t0 + timedelta(seconds=2)))
    older = reg.FamilyUpdated(family_id=fid, village_code=village, rw="001", welfare_decile=10)
    await deliver(session, envelope(older, time=t0 - timedelta(seconds=5)))
    assert [w.priority for w in await waiting(session, rich)] == [7]
    # The next place goes by the refreshed priority.
    await update_kitchen(session, kitchen.id, KitchenUpdate(capacity_per_day=2), kitchen.version, ADMIN)
    assert [e.status for e in await enrolments(session, rich)] == ["active"]
    assert await enrolments(session, poorer) == []
