"""The people/group replica and its tolerance of order; outcomes from measurements."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashat.enrolment import service as enrolment_service
from dashat.enrolment.schemas import OutcomeRead
from dashat.people.models import FamilyReplica, PersonReplica
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.errors import ValidationFailed
from shared.events import registry as reg
from shared.events import uppka as up
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, person, stunting
from tests.dashat.helpers import ADMIN, RW, enrolments, open_kitchen

pytestmark = pytest.mark.integration


async def test_family_facts_reach_members_whatever_the_order(session: AsyncSession) -> None:
    village = fresh_village()
    pid, fid = uuid.uuid4(), uuid.uuid4()
    t0 = datetime.now(UTC)
    risk = reg.StuntingRiskChanged(
        family_id=fid,
        village_code=village,
        at_risk=True,
        reasons=["no_latrine"],
        welfare_decile=2,
        rule_version="t",
    )
    await deliver(session, envelope(risk, time=t0))  # the family's KRS status before the person exists
    await deliver(session, envelope(person(pid, fid, village), time=t0 + timedelta(seconds=1)))
    fam = reg.FamilyUpdated(family_id=fid, village_code=village, rw="001", welfare_decile=3)
    await deliver(session, envelope(fam, time=t0 + timedelta(seconds=2)))
    stale = reg.FamilyRegistered(family_id=fid, village_code=village, rw="001", welfare_decile=9)
    await deliver(session, envelope(stale, time=t0 - timedelta(seconds=5)))
    async with session.begin():
        p = await session.get(PersonReplica, pid)
        f = await session.get(FamilyReplica, fid)
    assert p is not None and f is not None
    assert (p.krs, p.krs_reasons, p.welfare_decile) == (True, ["no_latrine"], 3)
    assert f.welfare_decile == 3


async def test_family_move_out_of_the_kitchen_area_exits(session: AsyncSession) -> None:
    village, elsewhere = fresh_village(), fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    t0 = datetime.now(UTC)
    await deliver(session, envelope(person(pid, fid, village, sex="L", birth_date=months_ago(7)), time=t0))
    await deliver(session, envelope(stunting(pid, fid, village), time=t0 + timedelta(seconds=1)))
    moved = reg.FamilyMoved(
        family_id=fid, from_village_code=village, village_code=elsewhere, rw="002", moved_on=business_today()
    )
    await deliver(session, envelope(moved, time=t0 + timedelta(seconds=2)))
    assert [(e.status, e.exit_reason) for e in await enrolments(session, pid)] == [("exited", "moved")]
    async with session.begin():
        p = await session.get(PersonReplica, pid)
    assert p is not None and (p.village_code, p.rw) == (elsewhere, "002")


async def test_pregnancy_ended_before_registered_does_not_enrol_as_hamil(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid, preg_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ended = reg.PregnancyEnded(
        pregnancy_id=preg_id,
        person_id=pid,
        family_id=fid,
        village_code=village,
        outcome="loss",
        ended_on=business_today(),
    )
    await deliver(session, envelope(ended))
    registered = reg.PregnancyRegistered(
        pregnancy_id=preg_id,
        person_id=pid,
        family_id=fid,
        village_code=village,
        expected_delivery=business_today() + timedelta(days=100),
        kek=True,
        mother_age_years=30,
        krs=True,
        rule_version="t",
    )
    await deliver(session, envelope(registered))
    assert await enrolments(session, pid) == []


async def test_operator_group_from_uppka_events(session: AsyncSession) -> None:
    village = fresh_village()
    gid = uuid.uuid4()
    group = up.GroupRegistered(
        group_id=gid, code="UPPKA-01", village_code=village, status="active", name="Melati"
    )
    await deliver(session, envelope(group, key=str(gid)))
    kitchen = await open_kitchen(session, village, operator_group_id=gid)
    assert kitchen.operator_group_id == gid
    dissolved = up.GroupStatusChanged(
        group_id=gid,
        village_code=village,
        status="dissolved",
        previous_status="active",
        changed_on=business_today(),
    )
    await deliver(session, envelope(dissolved, key=str(gid)))
    with pytest.raises(ValidationFailed) as err:
        await open_kitchen(session, fresh_village(), operator_group_id=gid)
    assert err.value.rule == "kitchen.operator_group_dissolved"


async def test_outcome_trajectory_ignores_corrected_and_retracted_measurements(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(pid, fid, village, haz=-2.8)))
    [e] = await enrolments(session, pid)

    def measured(haz: float, days: int, corrects: uuid.UUID | None = None) -> reg.ChildMeasured:
        return reg.ChildMeasured(
            measurement_id=uuid.uuid4(),
            person_id=pid,
            family_id=fid,
            village_code=village,
            sex="L",
            measured_on=business_today() + timedelta(days=days),
            age_days=300 + days,
            haz=haz,
            corrects_measurement_id=corrects,
            rule_version="t",
        )

    wrong = measured(-1.0, 30)
    await deliver(session, envelope(wrong))
    await deliver(session, envelope(measured(-2.6, 30, corrects=wrong.measurement_id)))
    bogus = measured(-0.5, 60)
    await deliver(session, envelope(bogus))
    retraction = reg.MeasurementRetracted(
        measurement_id=bogus.measurement_id,
        person_id=pid,
        family_id=fid,
        village_code=village,
        measured_on=bogus.measured_on,
        retracted_on=business_today(),
    )
    await deliver(session, envelope(retraction))
    out = OutcomeRead.from_domain(await enrolment_service.outcome(session, e.id, ADMIN))
    assert [p.haz for p in out.points] == [-2.6]
    assert (out.baseline_haz, out.latest_haz, out.change, out.improved) == (-2.8, -2.6, 0.2, True)


async def test_idempotency_key_replays_a_create(client: Any) -> None:
    body = {
        "name": "Dapur",
        "village_code": fresh_village(),
        "management_model": "social",
        "capacity_per_day": 3,
        "opened_on": business_today().isoformat(),
    }
    headers = {**RW, "Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/kitchens", json=body, headers=headers)
    second = await client.post("/v1/kitchens", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"] and second.headers.get("idempotent-replayed") == "true"
