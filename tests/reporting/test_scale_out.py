"""The projector scales out: a poll folded at once equals one event at a time, a poll only queues fact deltas
and writes its own partitions' status rows, the rollup (one at a time) adds the deltas up however it is split,
and two runners in one group give the figures of one (and of a rebuild)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from reporting.config import Settings
from reporting.consumer import TOPICS, build_runner
from reporting.indicators import repository as indicators_repo
from reporting.projection import domain, rollup
from reporting.projection import repository as projection_repo
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
from tests.reporting.conftest import fact_snapshot, produce, scratch_engine
from tests.reporting.dataset import build

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with scratch_engine("fold") as engine:
        yield engine


def deliveries(envelopes: Sequence[CloudEvent]) -> list[Delivery]:
    """The envelopes as the runner would deliver them, each on its key's partition."""
    out = []
    for offset, env in enumerate(envelopes):
        partition = (murmur2(env.partitionkey.encode()) & 0x7FFFFFFF) % PARTITIONS
        topic = f"kencana.{env.type.split('.', 1)[0]}"
        out.append(Delivery(env, parse_data(env), topic, partition, offset))
    return out


async def state(engine: AsyncEngine) -> dict[str, Any]:
    """Everything the projection wrote, once the queued fact deltas are rolled up."""
    await rollup.settle(create_sessionmaker(engine))
    queries = {
        "facts": "SELECT region, grain, period_start, measure, level, sum(value) FROM rep_fact"
        " GROUP BY 1, 2, 3, 4, 5 HAVING sum(value) <> 0",
        "entities": "SELECT kind, entity_id, owner_id, entries, contribution FROM rep_entity",
        "places": "SELECT region, village_code, kampung_kb FROM rep_place",
        "place_stocks": "SELECT measure, month, region, level, value FROM rep_place_stock WHERE value <> 0",
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
        await conn.execute(
            text(
                "TRUNCATE rep_fact, rep_fact_pending, rep_place_stock, rep_entity, rep_place, rep_enrolment,"
                " projection_status"
            )
        )


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


async def test_a_poll_queues_fact_deltas_and_writes_only_its_partitions_status(engine: AsyncEngine) -> None:
    events = [Delivery(d.envelope, d.data, d.topic, 2, d.offset) for d in deliveries(build().envelopes)]
    async with create_sessionmaker(engine)() as session, session.begin():
        await apply_batch(session, events)
    async with engine.connect() as conn:
        facts = (await conn.execute(text("SELECT count(*) FROM rep_fact"))).scalar_one()
        queued_values = list(await conn.execute(text("SELECT fact_key, value FROM rep_fact_pending")))
        queued = [k for k, _ in queued_values]
        partitions = set(
            (await conn.execute(text("SELECT DISTINCT partition FROM projection_status"))).scalars()
        )
    # Only the places the events name (villages; provinces for UPPKA targets): the rollup writes the rest.
    assert facts == 0 and queued
    assert all(domain.parse_key(k)[0].code != domain.NATIONAL for k in queued)
    assert partitions == {2}
    # The rollup's SQL expands each delta to the rows `domain.regions_of` names, and nothing else.
    expected: dict[tuple[str, str, str, str, int], int] = {}
    for key, value in queued_values:
        place, grain, start, measure = domain.parse_key(key)
        for region, level in domain.regions_of(place):
            k = (region, grain, start.isoformat(), measure, level)
            expected[k] = expected.get(k, 0) + value
    await rollup.settle(create_sessionmaker(engine))
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT region, grain, period_start::text, measure, level, value, slot FROM rep_fact")
        )
        rolled_up = {(r, g, p, m, lv): v for r, g, p, m, lv, v, slot in rows if slot == 0}
    assert rolled_up == {k: v for k, v in expected.items() if v} and len(rolled_up) > 2 * len(queued)


async def test_rollups_in_any_split_equal_one_rollup_and_late_events_land_in_rolled_up_months(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = deliveries(build().envelopes)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await apply_batch(session, events)
    expected = await state(engine)

    await clear(engine)
    # Small rollup transactions, and a rollup after every few polls: months the fixture's late, corrected
    # and retracted events change were rolled up before those events arrive.
    monkeypatch.setattr(rollup, "BATCH", 37)
    for i in range(0, len(events), 11):
        async with sessionmaker() as session, session.begin():
            await apply_batch(session, events[i : i + 11])
        if i % 3 == 0:
            await rollup.settle(sessionmaker)
    assert await state(engine) == expected
    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM rep_fact_pending"))).scalar_one()
        slots = set((await conn.execute(text("SELECT DISTINCT slot FROM rep_fact"))).scalars())
    # One row per figure: a breakdown reads as many rows however many projectors run.
    assert left == 0 and slots == {0}


async def test_one_rollup_at_a_time_and_freshness_says_facts_are_pending(engine: AsyncEngine) -> None:
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await apply_batch(session, deliveries(build().envelopes)[:20])
    async with sessionmaker() as holder, holder.begin():
        assert await projection_repo.try_lock_rollup(holder)
        assert await rollup.roll_up_once(sessionmaker) is None
        async with sessionmaker() as session:
            assert await indicators_repo.facts_pending_since(session) is not None
    assert await rollup.roll_up_once(sessionmaker)
    async with sessionmaker() as session:
        assert await indicators_repo.facts_pending_since(session) is None


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
        await rollup.settle(sessionmaker)
        two = await fact_snapshot(engine)
        report = await rebuild(settings, timeout=60)
        assert report.events_applied == len(data.envelopes)
        assert await fact_snapshot(engine) == two and len(two) > 100
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
