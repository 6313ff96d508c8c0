"""Recovery needs confirmation, through the real broker and the consumer (batch handler included).

The rule (seed version): a stunted child leaves as `recovered` only after two consecutive usable non-stunted
measurements at least 30 days apart, counted from the measurement that detected the case; a stunted one in
between starts the count again; a flagged one counts for nothing. Otherwise the planned duration runs out.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from dashat.config import Settings
from dashat.consumer import BATCH_HANDLER, HANDLERS, TOPICS
from dashat.enrolment.models import Enrolment
from dashat.models import inbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import business_today
from shared.consumer import ConsumerRunner
from shared.events import CloudEvent
from shared.events import registry as reg
from shared.runtime import ensure_service_topics
from shared.testing.plugin import unique
from tests.dashat.conftest import deliver, envelope, fresh_village, measured, months_ago, resolved, stunting
from tests.dashat.helpers import enrolments, open_kitchen, waiting
from tests.dashat.test_events import _produce

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

SEED = "dashat-enrolment-2026.1"


def _retracted_measurement(m: reg.ChildMeasured) -> reg.MeasurementRetracted:
    return reg.MeasurementRetracted(
        measurement_id=m.measurement_id,
        person_id=m.person_id,
        family_id=m.family_id,
        village_code=m.village_code,
        measured_on=m.measured_on,
        retracted_on=business_today(),
    )


async def _through_consumer(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str, events: list[CloudEvent]
) -> None:
    settings = Settings(topic_suffix="." + unique())
    await ensure_service_topics(settings, TOPICS)
    await _produce(kafka_bootstrap, settings.topic("kencana.registry"), events)
    runner = ConsumerRunner(
        name=f"dashat.projector{settings.topic_suffix}",
        topics=[settings.topic(t) for t in TOPICS],
        handlers=HANDLERS,
        batch_handler=BATCH_HANDLER,
        sessionmaker=sm,
        inbox=inbox,
        bootstrap_servers=kafka_bootstrap,
        backoff_seconds=0.01,
    )
    await runner.start()
    try:
        async with asyncio.timeout(60):
            while runner.outcome.applied + runner.outcome.duplicates + runner.outcome.dead_lettered < len(
                events
            ):
                await runner.poll_once(timeout_ms=300)
    finally:
        await runner.close()
    assert (runner.outcome.applied, runner.outcome.dead_lettered) == (len(events), 0)


async def _enrolments_of(sm: async_sessionmaker[AsyncSession], pid: uuid.UUID) -> list[Enrolment]:
    async with sm() as s:
        rows = await s.execute(
            select(Enrolment).where(Enrolment.person_id == pid).order_by(Enrolment.enrolled_at)
        )
        return list(rows.scalars())


async def test_recovery_needs_two_normal_measurements_a_month_apart(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    village = fresh_village()
    async with sm() as session:
        await open_kitchen(session, village, capacity=10)
    detected_on = business_today() - timedelta(days=100)
    birth = months_ago(12)

    def case_of(pid: uuid.UUID) -> reg.BadutaStuntingDetected:
        return stunting(pid, uuid.uuid4(), village, birth_date=birth, measured_on=detected_on)

    one_normal, two_normal, stunted_between, flagged_second, too_close = (uuid.uuid4() for _ in range(5))
    cases = {
        pid: case_of(pid) for pid in (one_normal, two_normal, stunted_between, flagged_second, too_close)
    }
    events: list[CloudEvent] = []

    def send(*items: reg.ChildMeasured | reg.StuntingResolved | reg.BadutaStuntingDetected) -> None:
        events.extend(envelope(x, key=str(x.family_id)) for x in items)

    def normal_then_resolved(case: reg.BadutaStuntingDetected, days: int, haz: float = -1.6) -> None:
        m = measured(case, detected_on + timedelta(days=days), haz)
        send(m, resolved(case, m))

    for case in cases.values():
        send(case)
    # One normal measurement (the registry resolves its case on it): may be noise, the child stays.
    normal_then_resolved(cases[one_normal], 10)
    # Two, 30 days apart: recovered.
    normal_then_resolved(cases[two_normal], 10)
    send(measured(cases[two_normal], detected_on + timedelta(days=40), -1.2))
    # Normal, stunted again (the registry opens a new case), normal: the count starts again, not yet.
    case = cases[stunted_between]
    normal_then_resolved(case, 10)
    again = measured(case, detected_on + timedelta(days=25), -2.4)
    second_case = stunting(
        case.person_id, case.family_id, village, birth_date=birth, measured_on=again.measured_on, haz=-2.4
    )
    send(again, second_case.model_copy(update={"measurement_id": again.measurement_id}))
    normal_then_resolved(second_case, 45)
    # A second normal flagged as implausible (|HAZ| > 6 rule) says nothing: not yet.
    normal_then_resolved(cases[flagged_second], 10)
    send(measured(cases[flagged_second], detected_on + timedelta(days=45), -0.5, flag=True))
    # Two normal measurements 20 days apart: not yet a month.
    normal_then_resolved(cases[too_close], 10)
    send(measured(cases[too_close], detected_on + timedelta(days=30), -1.3))

    await _through_consumer(sm, kafka_bootstrap, events)

    def state(rows: list[Enrolment]) -> list[tuple[str, str | None, str | None]]:
        return [(e.status, e.exit_reason, e.exit_rule_version) for e in rows]

    assert state(await _enrolments_of(sm, one_normal)) == [("active", None, None)]
    assert state(await _enrolments_of(sm, two_normal)) == [("completed", "recovered", SEED)]
    assert state(await _enrolments_of(sm, stunted_between)) == [("active", None, None)]
    assert state(await _enrolments_of(sm, flagged_second)) == [("active", None, None)]
    assert state(await _enrolments_of(sm, too_close)) == [("active", None, None)]

    # A month after the first normal one since the stunted one, another: now it is confirmed.
    case = cases[stunted_between]
    await _through_consumer(
        sm,
        kafka_bootstrap,
        [envelope(measured(case, detected_on + timedelta(days=76), -1.5), key=str(case.family_id))],
    )
    assert state(await _enrolments_of(sm, stunted_between)) == [("completed", "recovered", SEED)]


async def test_retracting_a_confirming_measurement_gives_the_place_back(session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village, capacity=10)
    detected_on = business_today() - timedelta(days=50)
    pid = uuid.uuid4()
    case = stunting(pid, uuid.uuid4(), village, measured_on=detected_on)
    await deliver(session, envelope(case))
    [before] = await enrolments(session, pid)
    first = measured(case, detected_on + timedelta(days=5), -1.8)
    second = measured(case, detected_on + timedelta(days=40), -1.7)
    for event in (first, resolved(case, first), second):
        await deliver(session, envelope(event))
    [ended] = await enrolments(session, pid)
    assert (ended.status, ended.exit_reason) == ("completed", "recovered")
    # The second was entered in error: the recovery rests on one measurement again, feeding resumes for the
    # time that was left, for the same case.
    retraction = envelope(_retracted_measurement(second))
    await deliver(session, retraction)
    by_status = {e.status: e for e in await enrolments(session, pid)}
    resumed = by_status["active"]
    assert (resumed.rule_id, resumed.trigger_ref, resumed.kitchen_id) == (
        "recovery_withdrawn",
        case.case_id,
        kitchen.id,
    )
    assert resumed.planned_end_date == before.planned_end_date
    assert (
        resumed.facts["resumes_enrolment_id"] == str(before.id) and resumed.trigger_event_id == retraction.id
    )
    # A correction of the first that is still normal changes nothing more; a third normal month confirms again.
    await deliver(session, envelope(measured(case, detected_on + timedelta(days=45), -1.6)))
    assert [e.status for e in await enrolments(session, pid)] == ["completed", "completed"]


async def test_a_correction_to_stunted_of_a_confirming_measurement_resumes_feeding(
    session: AsyncSession,
) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    detected_on = business_today() - timedelta(days=50)
    pid = uuid.uuid4()
    case = stunting(pid, uuid.uuid4(), village, measured_on=detected_on)
    await deliver(session, envelope(case))
    first = measured(case, detected_on + timedelta(days=5), -1.8)
    second = measured(case, detected_on + timedelta(days=40), -1.9)
    for event in (first, resolved(case, first), second):
        await deliver(session, envelope(event))
    assert [e.exit_reason for e in await enrolments(session, pid)] == ["recovered"]
    corrected = measured(case, second.measured_on, -2.2, corrects=second.measurement_id)
    await deliver(session, envelope(corrected))
    assert sorted(e.status for e in await enrolments(session, pid)) == ["active", "completed"]


async def test_a_waiting_child_leaves_the_queue_only_on_a_confirmed_recovery(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=0)
    detected_on = business_today() - timedelta(days=50)
    pid = uuid.uuid4()
    case = stunting(pid, uuid.uuid4(), village, measured_on=detected_on)
    await deliver(session, envelope(case))
    first = measured(case, detected_on + timedelta(days=5), -1.8)
    await deliver(session, envelope(first))
    await deliver(session, envelope(resolved(case, first)))
    assert [w.status for w in await waiting(session, pid)] == ["waiting"]
    await deliver(session, envelope(measured(case, detected_on + timedelta(days=35), -1.7)))
    assert [(w.status, w.resolution) for w in await waiting(session, pid)] == [("cancelled", "recovered")]
