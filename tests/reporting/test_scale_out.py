"""The projector scales out: a poll folded at once equals one event at a time, and each topic partition's
consumer writes only its own fact slot, so two runners in one group give the figures of one (and of a rebuild)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from reporting.config import Settings
from reporting.consumer import TOPICS, build_runner
from reporting.projection import domain
from reporting.projection.handlers import apply_batch, handlers
from reporting.rebuild import rebuild
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.consumer import ConsumerRunner, Delivery
from shared.db import create_engine, create_sessionmaker
from shared.events import CloudEvent
from shared.events.envelope import parse_data
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique
from tests.reporting.conftest import fact_snapshot, produce
from tests.reporting.dataset import build

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    url = await recreate_database(f"test_reporting_fold_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    engine = create_engine(url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


def deliveries(envelopes: Sequence[CloudEvent]) -> list[Delivery]:
    """The envelopes as the runner would deliver them, each on its key's partition."""
    out = []
    for offset, env in enumerate(envelopes):
        partition = (murmur2(env.partitionkey.encode()) & 0x7FFFFFFF) % PARTITIONS
        topic = f"kencana.{env.type.split('.', 1)[0]}"
        out.append(Delivery(env, parse_data(env), topic, partition, offset))
    return out


async def state(engine: AsyncEngine) -> dict[str, Any]:
    """Everything the projection wrote; facts summed over slots (an entity that events of two partitions
    touch in one poll moves the facts in the slot of the last one, one event at a time in each one's)."""
    queries = {
        "facts": "SELECT region, grain, period_start, measure, level, sum(value) FROM rep_fact"
        " GROUP BY 1, 2, 3, 4, 5 HAVING sum(value) <> 0",
        "entities": "SELECT kind, entity_id, owner_id, entries, contribution FROM rep_entity",
        "places": "SELECT region, village_code, kampung_kb FROM rep_place",
        "enrolments": "SELECT * FROM rep_enrolment",
        "status": "SELECT topic, partition, last_event_time, events_applied FROM projection_status",
    }
    out: dict[str, Any] = {}
    async with engine.connect() as conn:
        for name, sql in queries.items():
            out[name] = sorted(tuple(str(v) for v in row) for row in await conn.execute(text(sql)))
    return out


async def clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE rep_fact, rep_entity, rep_place, rep_enrolment, projection_status"))


async def test_a_batch_fold_equals_one_event_at_a_time(engine: AsyncEngine) -> None:
    data = build()
    events = deliveries(data.envelopes)
    sessionmaker = create_sessionmaker(engine)
    one_by_one = handlers(PARTITIONS)
    for d in events:
        async with sessionmaker() as session, session.begin():
            await one_by_one[d.envelope.type](session, d.envelope, d.data)
    expected = await state(engine)
    assert len(expected["facts"]) > 100 and expected["entities"]

    for size in (len(events), 7):
        await clear(engine)
        for i in range(0, len(events), size):
            async with sessionmaker() as session, session.begin():
                await apply_batch(session, events[i : i + size])
        assert await state(engine) == expected, f"batches of {size}"


async def test_a_poll_writes_only_the_slots_of_its_partitions(engine: AsyncEngine) -> None:
    events = [Delivery(d.envelope, d.data, d.topic, 2, d.offset) for d in deliveries(build().envelopes)]
    async with create_sessionmaker(engine)() as session, session.begin():
        await apply_batch(session, events)
    async with engine.connect() as conn:
        slots = set((await conn.execute(text("SELECT DISTINCT slot FROM rep_fact"))).scalars())
        partitions = set(
            (await conn.execute(text("SELECT DISTINCT partition FROM projection_status"))).scalars()
        )
    assert slots == {domain.slot_of(p, 2) for p in domain.PRODUCERS}
    assert partitions == {2}


async def _run_until(runners: list[ConsumerRunner], expected: int, timeout: float) -> None:
    def seen() -> int:
        return sum(r.outcome.applied + r.outcome.duplicates + r.outcome.dead_lettered for r in runners)

    async def loop(runner: ConsumerRunner) -> None:
        while seen() < expected:
            await runner.poll_once(timeout_ms=200)

    for r in runners:
        await r.start()
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(loop(r) for r in runners))
    finally:
        for r in runners:
            await r.close()
    assert sum(r.outcome.dead_lettered for r in runners) == 0


@pytest.mark.kafka
async def test_two_runners_in_one_group_give_the_figures_of_one_and_of_a_rebuild(
    kafka_bootstrap: str,
) -> None:
    url = await recreate_database(f"test_reporting_two_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=6)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(url, pool_size=4)
    data = build()
    try:
        await produce(settings, data.envelopes + data.duplicates)
        sessionmaker = create_sessionmaker(engine)
        group = unique("reporting.projector.")
        runners = [build_runner(settings, sessionmaker, name=group) for _ in range(2)]
        await _run_until(runners, len(data.envelopes) + len(data.duplicates), timeout=90)
        assert sum(r.outcome.applied for r in runners) == len(data.envelopes)
        two = await fact_snapshot(engine)
        report = await rebuild(settings, timeout=60)
        assert report.events_applied == len(data.envelopes)
        assert await fact_snapshot(engine) == two and len(two) > 100
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
