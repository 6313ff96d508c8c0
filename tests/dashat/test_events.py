"""Events through the real broker: the relay publishes DASHAT's events, the consumer applies registry/uppka ones."""

from __future__ import annotations

import asyncio
import statistics
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from dashat.config import Settings
from dashat.consumer import BATCH_HANDLER, HANDLERS, TOPICS
from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.funds.models import LedgerEntry
from dashat.models import Base, inbox, load_all_models, outbox
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import business_today
from shared.consumer import ConsumerRunner
from shared.events import CloudEvent
from shared.events import uppka as up
from shared.kafka import security_options
from shared.migrations import model_drift
from shared.outbox import Relay
from shared.runtime import ensure_service_topics
from shared.testing.plugin import consume, unique
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, person, retracted, stunting
from tests.dashat.helpers import open_kitchen

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def test_models_and_migrations_agree(db_url: str) -> None:
    load_all_models()
    assert await model_drift(db_url, Base.metadata) == []


async def _produce(bootstrap: str, topic: str, envelopes: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **security_options())
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                topic, orjson.dumps(env.model_dump(mode="json")), key=env.partitionkey.encode()
            )
    finally:
        await producer.stop()


async def test_relay_publishes_kitchen_and_enrolment_events(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    settings = Settings(topic_suffix="." + unique())
    await ensure_service_topics(settings, ["kencana.dashat"])
    village = fresh_village()
    child, fid = uuid.uuid4(), uuid.uuid4()
    async with sm() as session:
        kitchen = await open_kitchen(session, village)
        await deliver(session, envelope(stunting(child, fid, village)))
    relay = Relay(
        service="dashat",
        sessionmaker=sm,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=settings.topic,
    )
    try:
        async with asyncio.timeout(60):
            while await relay.publish_batch():
                pass
    finally:
        await relay._reset_producer()
    topic = settings.topic("kencana.dashat")

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        out = [orjson.loads(r.value) for r in records]
        return [e for e in out if e["data"].get("kitchen_id") == str(kitchen.id)]

    records = await consume(topic, until=lambda rs: len(mine(rs)) >= 2, timeout=30)
    events = mine(records)
    assert [e["type"] for e in events] == ["dashat.kitchen.opened.v1", "dashat.beneficiary.enrolled.v1"]
    assert {e["partitionkey"] for e in events} == {str(kitchen.id)}
    assert (
        events[1]["data"]["person_id"] == str(child)
        and events[1]["data"]["rule_id"] == "baduta_stunting_detected"
    )
    assert "nik" not in orjson.dumps(events).decode().lower()


async def _run(runner: ConsumerRunner, done: Any, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not await done():
            await runner.poll_once(timeout_ms=300)


async def test_consumer_applies_registry_and_uppka_events(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    settings = Settings(topic_suffix="." + unique())
    await ensure_service_topics(settings, TOPICS)
    village, empty_village = fresh_village(), fresh_village()
    async with sm() as session:
        kitchen = await open_kitchen(session, village)
    a, b, c, d, fid = (uuid.uuid4() for _ in range(5))
    case_a = stunting(a, fid, village, birth_date=months_ago(9))
    case_b = stunting(b, fid, village)
    case_c = stunting(c, fid, village)
    case_d = stunting(d, uuid.uuid4(), empty_village)
    env_a = envelope(case_a, key=str(fid))
    registry = [
        env_a,
        env_a,  # delivered twice
        envelope(retracted(case_b), key=str(fid)),  # the retraction is processed before the detection
        envelope(case_b, key=str(fid)),
        envelope(person(a, fid, village, sex="L", birth_date=months_ago(9), updated=True), key=str(fid)),
        envelope(case_c, key=str(fid)),
        envelope(retracted(case_c), key=str(fid)),
        envelope(case_d, key=str(case_d.family_id)),
    ]
    contribution = up.DashatContributionMade(
        group_id=uuid.uuid4(),
        contribution_id=uuid.uuid4(),
        kitchen_id=kitchen.id,
        village_code=village,
        kind="in_kind",
        amount=150_000,
        goods="telur 10 kg",
        contributed_on=business_today(),
    )
    await _produce(kafka_bootstrap, settings.topic("kencana.registry"), registry)
    await _produce(
        kafka_bootstrap,
        settings.topic("kencana.uppka"),
        [envelope(contribution, key=str(contribution.group_id))],
    )
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
        await _run(runner, lambda: _seen(runner, 9))
    finally:
        await runner.close()
    assert (runner.outcome.applied, runner.outcome.duplicates, runner.outcome.dead_lettered) == (8, 1, 0)
    async with sm() as s:
        rows = (
            (await s.execute(select(Enrolment).where(Enrolment.person_id.in_([a, b, c, d])))).scalars().all()
        )
        by_person = {e.person_id: e for e in rows}
        assert len(rows) == 2
        assert by_person[a].status == "active" and by_person[a].trigger_event_id == env_a.id
        assert b not in by_person
        assert (by_person[c].status, by_person[c].exit_reason) == ("retracted", "retracted")
        [w] = (await s.execute(select(WaitlistEntry).where(WaitlistEntry.person_id == d))).scalars().all()
        assert (w.status, w.reason) == ("waiting", "no_kitchen")
        income = (
            await s.execute(
                select(func.sum(LedgerEntry.amount)).where(
                    LedgerEntry.contribution_id == contribution.contribution_id
                )
            )
        ).scalar_one()
        assert income == 150_000
    # The place opens: the waiting child is enrolled without any further event.
    async with sm() as session:
        await open_kitchen(session, empty_village)
    async with sm() as s:
        [e] = (await s.execute(select(Enrolment).where(Enrolment.person_id == d))).scalars().all()
        assert e.status == "active" and e.waitlist_id == w.id


async def _seen(runner: ConsumerRunner, n: int) -> bool:
    return runner.outcome.applied + runner.outcome.duplicates + runner.outcome.dead_lettered >= n


async def test_event_to_enrolment_latency(sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str) -> None:
    """Measures triggered_at (the registry event's time) -> enrolled_at through Kafka; reports, asserts no timing."""
    settings = Settings(topic_suffix="." + unique())
    await ensure_service_topics(settings, TOPICS)
    village = fresh_village()
    async with sm() as session:
        await open_kitchen(session, village, capacity=200)
    runner = ConsumerRunner(
        name=f"dashat.projector{settings.topic_suffix}",
        topics=[settings.topic(t) for t in TOPICS],
        handlers=HANDLERS,
        batch_handler=BATCH_HANDLER,
        sessionmaker=sm,
        inbox=inbox,
        bootstrap_servers=kafka_bootstrap,
    )
    await runner.start()
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await runner.poll_once(timeout_ms=100)

    task = asyncio.create_task(loop())
    n = 50
    children = [uuid.uuid4() for _ in range(n)]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, **security_options()
    )
    await producer.start()
    try:
        # Let the group settle so the figure is steady-state latency, not the first partition assignment.
        async with asyncio.timeout(60):
            while not runner._consumer or not runner._consumer.assignment():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        for child in children:
            fid = uuid.uuid4()
            env = envelope(stunting(child, fid, village), key=str(fid))
            await producer.send_and_wait(
                settings.topic("kencana.registry"),
                orjson.dumps(env.model_dump(mode="json")),
                key=env.partitionkey.encode(),
            )
            await asyncio.sleep(0.02)
        async with asyncio.timeout(60):
            while runner.outcome.applied < n:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await producer.stop()
        await runner.close()
    async with sm() as s:
        rows = (await s.execute(select(Enrolment).where(Enrolment.person_id.in_(children)))).scalars().all()
    assert len(rows) == n
    ms = sorted((e.enrolled_at - e.triggered_at).total_seconds() * 1000 for e in rows if e.triggered_at)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(
        f"\nDASHAT event-to-enrolment latency over {n} stunting events (triggered_at -> enrolled_at, ms): "
        f"min {ms[0]:.1f} p50 {statistics.median(ms):.1f} p95 {p95:.1f} max {ms[-1]:.1f}"
    )
