"""A poll applied through the batch handler leaves DASHAT exactly as its handlers one by one would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashat.consumer import BATCH_HANDLER, HANDLERS
from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.outcomes.models import ChildMeasurement
from dashat.people.handlers import set_based_apart
from dashat.people.models import FamilyReplica, PersonReplica
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import Delivery, handle_one_by_one
from shared.events import CloudEvent, EventData, parse_data
from shared.events import registry as reg
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, person, stunting
from tests.dashat.helpers import open_kitchen

pytestmark = pytest.mark.integration


def _deliveries(envelopes: list[CloudEvent]) -> list[Delivery]:
    return [Delivery(e, parse_data(e), "kencana.registry", 0, i) for i, e in enumerate(envelopes)]


def _family(family_id: uuid.UUID, village: str, decile: int | None, *, updated: bool = False) -> EventData:
    cls = reg.FamilyUpdated if updated else reg.FamilyRegistered
    return cls(family_id=family_id, village_code=village, rw="001", welfare_decile=decile)


def _measured(person_id: uuid.UUID, family_id: uuid.UUID, village: str, **kw: Any) -> reg.ChildMeasured:
    return reg.ChildMeasured(
        measurement_id=kw.pop("measurement_id", uuid.uuid4()),
        person_id=person_id,
        family_id=family_id,
        village_code=village,
        sex="L",
        measured_on=datetime.now(UTC).date(),
        age_days=300,
        weight_kg=8.0,
        lenhei_cm=70.0,
        position="l",
        haz=kw.pop("haz", -1.0),
        haz_class="normal",
        rule_version="t",
        **kw,
    )


async def _state(
    session: AsyncSession, persons: list[uuid.UUID], families: list[uuid.UUID]
) -> dict[str, Any]:
    """Every replica row of those persons and families (and their members), their enrolments and waitlist."""
    p, f = PersonReplica.__table__, FamilyReplica.__table__
    person_rows = await session.execute(
        select(p).where(or_(p.c.person_id.in_(persons), p.c.family_id.in_(families))).order_by(p.c.person_id)
    )
    family_rows = await session.execute(select(f).where(f.c.family_id.in_(families)).order_by(f.c.family_id))
    # Ids and Python-side instants differ between two runs; what was decided must not.
    enrolled = await session.execute(
        select(
            Enrolment.person_id, Enrolment.category, Enrolment.status, Enrolment.priority, Enrolment.version
        )
        .where(Enrolment.person_id.in_(persons))
        .order_by(Enrolment.person_id, Enrolment.category)
    )
    waiting = await session.execute(
        select(WaitlistEntry.person_id, WaitlistEntry.category, WaitlistEntry.status, WaitlistEntry.priority)
        .where(WaitlistEntry.person_id.in_(persons))
        .order_by(WaitlistEntry.person_id, WaitlistEntry.category)
    )
    m = ChildMeasurement.__table__
    measurements = await session.execute(
        select(m).where(m.c.person_id.in_(persons)).order_by(m.c.measurement_id)
    )
    return {
        "measurements": [dict(r._mapping) for r in measurements],
        "persons": [dict(r._mapping) for r in person_rows],
        "families": [dict(r._mapping) for r in family_rows],
        "enrolments": [tuple(r) for r in enrolled],
        "waitlist": [tuple(r) for r in waiting],
    }


async def test_batch_handler_matches_the_handlers_one_by_one(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=10)
    t = datetime.now(UTC)
    a, b, c, d, e, g, h, i = (uuid.uuid4() for _ in range(8))  # families
    a1, a2, b1, b2, c1, d1, e1, f1, g1, h1, i1, x1 = (uuid.uuid4() for _ in range(12))  # persons
    m1, m2, m3 = (uuid.uuid4() for _ in range(3))  # measurements
    before = [
        # b1 enrolled for stunting while family b was poor and at risk: a family update changes its priority.
        envelope(_family(b, village, 2), time=t - timedelta(hours=2)),
        envelope(person(b1, b, village, sex="L", birth_date=months_ago(10)), time=t - timedelta(hours=2)),
        envelope(stunting(b1, b, village), time=t - timedelta(hours=2)),
        envelope(person(b2, b, village), time=t - timedelta(hours=2)),
        # d1 holds facts newer than the poll's; x1 is only a placeholder from a stunting case so far.
        envelope(person(d1, d, village, rw="005"), time=t + timedelta(hours=1)),
        envelope(stunting(x1, i, village, decile=None), time=t - timedelta(hours=1)),
    ]
    for env in before:
        await deliver(session, env)
    poll = [
        envelope(_family(a, village, 4), time=t),
        envelope(person(a1, a, village), time=t),
        envelope(person(a2, a, village, sex="L"), time=t),
        envelope(_family(b, village, 9, updated=True), time=t),  # newer: members' decile and priority follow
        envelope(person(c1, c, village, rw="002"), time=t),
        envelope(person(c1, c, village, rw="003", updated=True), time=t - timedelta(minutes=1)),  # older
        envelope(person(c1, c, village, rw="004", updated=True), time=t + timedelta(minutes=1)),  # newer
        envelope(
            person(c1, c, village, rw="006", updated=True), time=t + timedelta(minutes=1)
        ),  # same time: seen
        envelope(person(d1, d, village, rw="007", updated=True), time=t),  # older than what is held
        envelope(person(e1, e, village, sex="L"), time=t),  # registered, then measured and found stunted
        envelope(_measured(e1, e, village), time=t),
        envelope(_measured(e1, e, village, measurement_id=m1, haz=-1.5), time=t),  # corrected below
        envelope(_measured(e1, e, village, haz=-1.4, corrects_measurement_id=m1), time=t),
        envelope(_measured(a1, a, village, measurement_id=m2), time=t),  # measured, then retracted
        envelope(
            reg.MeasurementRetracted(
                measurement_id=m2,
                person_id=a1,
                family_id=a,
                village_code=village,
                measured_on=t.date(),
                retracted_on=t.date(),
            ),
            time=t,
        ),
        envelope(_measured(a2, a, village, measurement_id=m3, haz=-0.5), time=t),  # redelivered under
        envelope(_measured(a2, a, village, measurement_id=m3, haz=-0.6), time=t),  # a new event id
        envelope(stunting(e1, e, village, decile=3), time=t),
        envelope(stunting(f1, e, village), time=t),  # stunted first, registered after: stays in order
        envelope(person(f1, e, village, sex="L"), time=t),
        envelope(person(g1, g, village), time=t),  # a member's facts before its family's
        envelope(_family(g, village, 1), time=t),
        envelope(person(x1, i, village, sex="L"), time=t),  # fills the placeholder
        envelope(_family(h, village, 5), time=t),
        envelope(reg.PersonDied(person_id=b2, family_id=b, village_code=village, died_on=t.date()), time=t),
        envelope(person(h1, h, village), time=t),  # after a death: everything stays in order
        envelope(_measured(h1, h, village), time=t),
        envelope(person(i1, i, village), time=t),
    ]
    deliveries = _deliveries(poll)
    split = set_based_apart(deliveries, {})
    apart = {d.envelope.id for d in [*split.families, *split.persons, *split.measurements]}
    assert [d.envelope.id for d in split.rest] == [
        d.envelope.id for d in deliveries if d.envelope.id not in apart
    ]
    assert {dl.data.family_id for dl in split.families} == {a, b, h}
    assert {dl.data.person_id for dl in split.persons} == {a1, a2, c1, d1, e1, g1, x1}
    assert [dl.envelope.id for dl in split.measurements] == [poll[10].id]
    ids = [a1, a2, b1, b2, c1, d1, e1, f1, g1, h1, i1, x1]
    fams = [a, b, c, d, e, g, h, i]
    async with session.begin():
        one_by_one = await session.begin_nested()
        await handle_one_by_one(session, HANDLERS, deliveries)
        await session.flush()
        expected = await _state(session, ids, fams)
        await one_by_one.rollback()
        session.expunge_all()
        batched = await session.begin_nested()
        await BATCH_HANDLER(session, deliveries)
        await session.flush()
        got = await _state(session, ids, fams)
        await batched.rollback()
    assert got == expected
    by_id = {row["person_id"]: row for row in expected["persons"]}
    assert by_id[c1]["rw"] == "004" and by_id[d1]["rw"] == "005"
    assert by_id[a1]["welfare_decile"] == 4 and by_id[b1]["welfare_decile"] == 9
    assert by_id[x1]["sex"] == "L" and by_id[x1]["birth_date"] is not None
    assert (b1, "baduta_stunting", "active", 2 * 9, 2) in expected["enrolments"]  # refreshed once
