"""Outbox and relay against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import orjson
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.outbox import Relay, publish
from shared.testing.plugin import consume, unique
from tests.shared.conftest import ProbeHappened, outbox, probe

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def _count(sm: async_sessionmaker[AsyncSession], label: str) -> tuple[int, int]:
    async with sm() as s:
        states = (
            await s.execute(select(func.count()).select_from(probe).where(probe.c.label == label))
        ).scalar_one()
        events = (
            await s.execute(select(func.count()).select_from(outbox).where(outbox.c.partition_key == label))
        ).scalar_one()
    return states, events


async def test_state_and_event_commit_together(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    label = unique("commit")
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(probe).values(id=abs(hash(label)) % 2**31, label=label))
        await publish(session, outbox, ProbeHappened(key=label, n=1), key=label)
    assert await _count(sessionmaker, label) == (1, 1)


async def test_state_and_event_roll_back_together(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    label = unique("rollback")
    with pytest.raises(RuntimeError):
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(probe).values(id=abs(hash(label)) % 2**31, label=label))
            await publish(session, outbox, ProbeHappened(key=label, n=1), key=label)
            raise RuntimeError("use case failed after writing")
    assert await _count(sessionmaker, label) == (0, 0)


async def _drain(relay: Relay, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await relay.publish_batch():
            pass


async def test_relay_delivers_every_row_in_key_order(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("outbox", partitions=3)  # type: ignore[operator]
    keys = [unique("k") for _ in range(10)]
    written: list[str] = []
    for n in range(30):
        async with sessionmaker() as session, session.begin():
            for key in keys:
                env = await publish(session, outbox, ProbeHappened(key=key, n=n), key=key)
                written.append(env.id)
    relay = Relay(
        service="probe",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=64,
    )
    try:
        await _drain(relay)
    finally:
        await relay._reset_producer()
    wanted = set(written)

    def mine(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if orjson.loads(r.value)["id"] in wanted]

    records = mine(await consume(topic, until=lambda r: len(mine(r)) >= len(written), timeout=60))
    ids = [orjson.loads(r.value)["id"] for r in records]
    assert sorted(ids) == sorted(written)
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        body = orjson.loads(r.value)
        assert r.key.decode() == body["partitionkey"]
        per_key[body["partitionkey"]].append(body["data"]["n"])
    for key in keys:
        assert per_key[key] == list(range(30)), f"order broken for {key}"
    async with sessionmaker() as s:
        pending = (
            await s.execute(
                select(func.count())
                .select_from(outbox)
                .where(
                    outbox.c.event_id.in_([uuid.UUID(i) for i in written]), outbox.c.published_at.is_(None)
                )
            )
        ).scalar_one()
    assert pending == 0
