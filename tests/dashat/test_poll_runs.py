"""What the batch hook leaves for one by one (stunting detections, pregnancies, KRS statuses, a baby's or its
mother's facts), decided on rows read once per run, leaves DASHAT exactly as the handlers one at a time would:
the replica, cases, enrolments, waitlist and the outbox in the same order.

Awkward cases in the poll: two children of one family, a full kitchen (the next child waits at it), a kitchen
serving only one RW, the kitchen with most free places chosen, a family's KRS status after its children were
placed (their priority follows), a pregnancy, a duplicate detection, a resolved case reopened, a retraction
processed before its detection (which then enrols nobody), a death in the middle of the poll (it ends the
run; the next reads the rows again), a baby registered after its mother (the mother waits for a kitchen in a
village with none) and her update after it (never twice).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashat.consumer import BATCH_HANDLER, HANDLERS
from dashat.enrolment.models import Enrolment, StuntingCase, WaitlistEntry
from dashat.models import outbox
from dashat.people.handlers import set_based_apart
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import handle_one_by_one
from shared.events import CloudEvent
from shared.events import registry as reg
from tests.dashat.conftest import (
    deliver,
    envelope,
    fresh_village,
    months_ago,
    person,
    pregnancy,
    resolved,
    retracted,
    stunting,
)
from tests.dashat.helpers import open_kitchen
from tests.dashat.test_replica_batch import _deliveries, _family, _measured, _state
from tests.dashat.test_replica_risk_batch import _risk

pytestmark = pytest.mark.integration


async def _decided(session: AsyncSession, persons: list[uuid.UUID], since: int) -> dict[str, Any]:
    """Where each person was placed and why, the cases, and the outbox rows written after `since`, in order."""
    enrolled = await session.execute(
        select(Enrolment.person_id, Enrolment.category, Enrolment.kitchen_id, Enrolment.facts)
        .where(Enrolment.person_id.in_(persons))
        .order_by(Enrolment.person_id, Enrolment.category)
    )
    waiting = await session.execute(
        select(
            WaitlistEntry.person_id,
            WaitlistEntry.category,
            WaitlistEntry.kitchen_id,
            WaitlistEntry.reason,
            WaitlistEntry.resolution,
            WaitlistEntry.facts,
        )
        .where(WaitlistEntry.person_id.in_(persons))
        .order_by(WaitlistEntry.person_id, WaitlistEntry.category)
    )
    cases = await session.execute(
        select(
            StuntingCase.case_id, StuntingCase.person_id, StuntingCase.status, StuntingCase.detected_event_id
        )
        .where(StuntingCase.person_id.in_(persons))
        .order_by(StuntingCase.case_id)
    )
    published = await session.execute(
        select(outbox.c.event_type, outbox.c.partition_key, outbox.c.envelope)
        .where(outbox.c.seq > since)
        .order_by(outbox.c.seq)
    )
    # Event ids, enrolment/waitlist ids and instants differ between two runs; what was told must not.
    told = []
    for event_type, key, env in published:
        data = env["data"]
        told.append(
            (
                event_type,
                key,
                env.get("causationid"),
                data.get("person_id"),
                data.get("category"),
                data.get("reason"),
                data.get("status"),
                data.get("priority"),
            )
        )
    return {
        "enrolled": [tuple(r) for r in enrolled],
        "waiting": [tuple(r) for r in waiting],
        "cases": [tuple(r) for r in cases],
        "outbox": told,
    }


async def test_runs_decide_as_the_handlers_one_by_one(session: AsyncSession) -> None:
    village, bare = fresh_village(), fresh_village()  # `bare` has no kitchen
    whole = await open_kitchen(session, village, capacity=2, name="Dapur Desa")
    rw2 = await open_kitchen(session, village, capacity=3, rws=["002"], name="Dapur RW 002")
    t = datetime.now(UTC)
    a, b, n, r, x = (uuid.uuid4() for _ in range(5))  # families
    a_m, a1, a2, b1, b2, c1, n_m, n1, r1, x1 = (uuid.uuid4() for _ in range(10))  # persons
    reopened_case = stunting(r1, r, bare, birth_date=months_ago(12))
    x_case = stunting(x1, x, village)
    before = [
        envelope(_family(a, village, 3), time=t - timedelta(hours=2)),
        envelope(person(a_m, a, village), time=t - timedelta(hours=2)),
        envelope(person(a1, a, village, sex="L", birth_date=months_ago(10), relation="anak"), time=t),
        # r1's case detected before the poll (r1 waits: no kitchen there) and resolved by one normal length.
        envelope(reopened_case, time=t - timedelta(hours=3)),
        envelope(
            resolved(reopened_case, _measured(r1, r, bare, haz=-1.5)),
            time=t - timedelta(hours=2),
        ),
    ]
    for env in before:
        await deliver(session, env)
    first_child = stunting(a1, a, village)
    poll = [
        envelope(first_child, time=t),  # the only kitchen serving RW 001
        envelope(stunting(a2, a, village, rw="002", birth_date=months_ago(14)), time=t),  # most free places
        envelope(stunting(b1, b, village), time=t),  # the last place of the whole-village kitchen
        envelope(stunting(c1, b, village), time=t),  # full: waits at it
        envelope(_risk(a, village, True, decile=8), time=t),  # a's children take the new priority
        envelope(pregnancy(a_m, a, village), time=t),  # KEK: waits too
        envelope(first_child, time=t + timedelta(seconds=1)),  # redelivered under a new event id
        envelope(reopened_case.model_copy(update={"reopened": True}), time=t),
        envelope(retracted(x_case), time=t),  # the retraction first (a replay), through its handler
        envelope(x_case, time=t),  # then its detection: the case stands retracted, nobody enrolled
        envelope(
            reg.PersonDied(person_id=b1, family_id=b, village_code=village, died_on=t.date()), time=t
        ),  # ends the run; b1's place goes to c1 (priority 3 before the mother's 13)
        envelope(stunting(b2, b, village, rw="002"), time=t),  # the next run reads the places again
        envelope(_family(n, bare, 2), time=t),
        envelope(person(n_m, n, bare), time=t),
        envelope(person(n1, n, bare, sex="L", birth_date=months_ago(2), relation="anak"), time=t),
        envelope(person(n_m, n, bare, updated=True), time=t + timedelta(minutes=1)),
        envelope(_risk(n, bare, True), time=t),
    ]
    deliveries = _deliveries(poll)
    split = set_based_apart(deliveries, {a_m: a, a1: a, r1: r}, baby_born_after=months_ago(7))
    detections = [d for d in deliveries if isinstance(d.data, reg.BadutaStuntingDetected)]
    assert [d for d in split.rest if isinstance(d.data, reg.BadutaStuntingDetected)] == detections
    ids = [a_m, a1, a2, b1, b2, c1, n_m, n1, r1, x1]
    fams = [a, b, n, r, x]
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = session.bind.sync_engine  # type: ignore[union-attr]
    async with session.begin():
        since = (await session.execute(select(func.coalesce(func.max(outbox.c.seq), 0)))).scalar_one()
        one_by_one = await session.begin_nested()
        event.listen(engine, "before_cursor_execute", count)
        await handle_one_by_one(session, HANDLERS, deliveries)
        event.remove(engine, "before_cursor_execute", count)
        handlers_statements, statements = statements, 0
        await session.flush()
        expected = {**await _state(session, ids, fams), **await _decided(session, ids, since)}
        await one_by_one.rollback()
        session.expunge_all()
        batched = await session.begin_nested()
        event.listen(engine, "before_cursor_execute", count)
        await BATCH_HANDLER(session, deliveries)
        event.remove(engine, "before_cursor_execute", count)
        await session.flush()
        got = {**await _state(session, ids, fams), **await _decided(session, ids, since)}
        await batched.rollback()
    assert got == expected
    # Half the poll comes after a death and a retraction (through their handlers); the runs still save.
    assert statements < handlers_statements, (statements, handlers_statements)
    # Hand-checked: what applying the poll in order must leave.
    enrolled = {(p, c): k for p, c, k, _ in expected["enrolled"]}
    assert enrolled[(a1, "baduta_stunting")] == whole.id
    assert enrolled[(a2, "baduta_stunting")] == rw2.id  # 1 free at the village's kitchen, 3 at RW 002's
    assert enrolled[(b1, "baduta_stunting")] == whole.id
    assert enrolled[(c1, "baduta_stunting")] == whole.id  # from the waitlist when b1 died
    assert enrolled[(b2, "baduta_stunting")] == rw2.id
    waiting = {(p, c): (k, reason, resolution) for p, c, k, reason, resolution, _ in expected["waiting"]}
    assert waiting[(c1, "baduta_stunting")] == (whole.id, "kitchen_full", "enrolled")
    assert waiting[(a_m, "ibu_hamil")] == (whole.id, "kitchen_full", None)
    assert waiting[(r1, "baduta_stunting")] == (None, "no_kitchen", None)  # reopened: never twice
    # The mother in a village with no kitchen waits once for her baby, though her facts came again.
    assert waiting[(n_m, "ibu_menyusui")] == (None, "no_kitchen", None)
    assert not [k for k in [*enrolled, *waiting] if k[0] == x1]
    cases = {case_id: status for case_id, _, status, _ in expected["cases"]}
    assert cases[x_case.case_id] == "retracted" and cases[reopened_case.case_id] == "detected"
    # Family a, decile 8 and at risk: 8 * 2 - 1 on both children's enrolments (moved once: version 2).
    states = {(p, c): (status, prio, version) for p, c, status, prio, version in expected["enrolments"]}
    assert states[(a1, "baduta_stunting")] == states[(a2, "baduta_stunting")] == ("active", 15, 2)
    assert states[(b1, "baduta_stunting")][0] == "exited"
    told = [(kind, person_id) for kind, _, _, person_id, *_ in expected["outbox"]]
    assert told[:4] == [
        ("dashat.beneficiary.enrolled.v1", str(a1)),
        ("dashat.beneficiary.enrolled.v1", str(a2)),
        ("dashat.beneficiary.enrolled.v1", str(b1)),
        ("dashat.beneficiary.waitlisted.v1", str(c1)),
    ]


def _families(
    count: int, village: str, t: datetime
) -> tuple[list[CloudEvent], list[uuid.UUID], list[uuid.UUID]]:
    """Families registered as the import publishes them: facts, a wife, a baby of two months (its mother a
    target), a stunted child of ten months measured and detected, a pregnancy in every other family (the wife
    with KEK), the family's KRS status last."""
    envelopes: list[CloudEvent] = []
    persons: list[uuid.UUID] = []
    families: list[uuid.UUID] = []
    for n in range(count):
        f, wife, baby, child = (uuid.uuid4() for _ in range(4))
        families.append(f)
        persons += [wife, baby, child]
        envelopes += [
            envelope(_family(f, village, 1 + n % 10), time=t),
            envelope(person(wife, f, village, relation="istri"), time=t),
            envelope(person(baby, f, village, sex="L", birth_date=months_ago(2), relation="anak"), time=t),
            envelope(person(child, f, village, sex="L", birth_date=months_ago(10), relation="anak"), time=t),
            envelope(_measured(child, f, village, haz=-2.5), time=t),
            envelope(stunting(child, f, village, decile=1 + n % 10), time=t),
        ]
        if n % 2:
            envelopes.append(envelope(pregnancy(wife, f, village, kek=True), time=t))
        envelopes.append(envelope(_risk(f, village, n % 3 == 0, decile=1 + n % 10), time=t))
    return envelopes, persons, families


async def _batch_statements(
    session: AsyncSession, count: int, capacity: int
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Statements the batch hook ran for `count` families; the state it left and the handlers' one by one."""
    village = fresh_village()
    await open_kitchen(session, village, capacity=capacity)
    envelopes, persons, families = _families(count, village, datetime.now(UTC))
    deliveries = _deliveries(envelopes)
    statements = 0

    def count_one(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = session.bind.sync_engine  # type: ignore[union-attr]
    async with session.begin():
        since = (await session.execute(select(func.coalesce(func.max(outbox.c.seq), 0)))).scalar_one()
        one_by_one = await session.begin_nested()
        await handle_one_by_one(session, HANDLERS, deliveries)
        await session.flush()
        expected = {**await _state(session, persons, families), **await _decided(session, persons, since)}
        await one_by_one.rollback()
        session.expunge_all()
        batched = await session.begin_nested()
        event.listen(engine, "before_cursor_execute", count_one)
        await BATCH_HANDLER(session, deliveries)
        event.remove(engine, "before_cursor_execute", count_one)
        await session.flush()
        got = {**await _state(session, persons, families), **await _decided(session, persons, since)}
        await batched.rollback()
    return statements, got, expected


async def test_a_registration_poll_is_decided_in_statements_that_do_not_grow_with_it(
    session: AsyncSession,
) -> None:
    small, got, expected = await _batch_statements(session, 3, capacity=4)
    assert got == expected
    large, got, expected = await _batch_statements(session, 12, capacity=4)
    assert got == expected
    # 12 families: 12 children and 6 pregnant women compete for 4 places, 12 mothers of babies too.
    enrolled = [row for row in expected["enrolments"] if row[2] == "active"]
    assert len(enrolled) == 4
    assert len(expected["waitlist"]) == 12 + 6 + 12 - 4
    # Set-based: four times the families, the same statements (one per table read or written).
    assert large == small, (small, large)
