"""The relay survives the broker being down: rows wait, none are lost, all arrive after it returns."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import REPO_ROOT
from shared.kafka import kafka_reachable
from shared.outbox import Relay, publish
from shared.testing.plugin import consume, unique, wait_for
from tests.shared.conftest import ProbeHappened, outbox

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

INFRA = str(REPO_ROOT / "scripts" / "infra.sh")


def _broker(action: str) -> None:
    subprocess.run(["bash", INFRA, action], check=True, timeout=180, capture_output=True)


@pytest.mark.skipif(
    bool(os.environ.get("KENCANA_KAFKA_BOOTSTRAP_SERVERS")),
    reason="needs the project's own broker to stop it",
)
async def test_200_events_written_while_kafka_is_down_all_arrive(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("down", partitions=3)  # type: ignore[operator]
    relay = Relay(
        service="probe-down",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=50,
        send_timeout=4.0,
        poll_interval=0.1,
    )
    # Start from an empty backlog so the figures below are about this test's rows only.
    async with asyncio.timeout(60):
        while await relay.publish_batch():
            pass
    task = asyncio.create_task(relay.run())
    written: list[str] = []
    down_at = time.monotonic()
    try:
        await asyncio.to_thread(_broker, "stop-kafka")
        assert not await kafka_reachable(kafka_bootstrap, timeout=2)
        for batch in range(20):
            async with sessionmaker() as session, session.begin():
                for n in range(10):
                    key = f"family-{n}"
                    env = await publish(session, outbox, ProbeHappened(key=key, n=batch), key=key)
                    written.append(env.id)
        await asyncio.sleep(3)  # the relay is failing and retrying now

        async def pending() -> int:
            async with sessionmaker() as s:
                return int(
                    (
                        await s.execute(
                            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                        )
                    ).scalar_one()
                )

        assert await pending() >= 200, "rows must wait in the outbox while the broker is down"
        await asyncio.to_thread(_broker, "start-kafka")
        up_at = time.monotonic()
        await wait_for(lambda: _zero(pending), timeout=120, what="outbox drained after the broker returned")
        drained_at = time.monotonic()
    finally:
        relay.stop()
        async with asyncio.timeout(30):
            await task
        if not await kafka_reachable(kafka_bootstrap, timeout=2):
            await asyncio.to_thread(_broker, "start-kafka")
    wanted = set(written)
    records = await consume(
        topic, until=lambda r: len({orjson.loads(x.value)["id"] for x in r} & wanted) >= 200, timeout=60
    )
    ids = [orjson.loads(r.value)["id"] for r in records if orjson.loads(r.value)["id"] in wanted]
    assert len(set(ids)) == 200, "every event arrives"
    print(
        f"\nkafka-down: accepted=200 distinct_on_topic={len(set(ids))} duplicates={len(ids) - len(set(ids))} "
        f"down_for={up_at - down_at:.1f}s drain_after_recovery={drained_at - up_at:.1f}s"
    )


async def _zero(pending: object) -> bool:
    return await pending() == 0  # type: ignore[operator, no-any-return]


@pytest.mark.skipif(
    bool(os.environ.get("KENCANA_KAFKA_BOOTSTRAP_SERVERS")),
    reason="needs the project's own broker to stop it",
)
async def test_a_consumer_started_while_kafka_is_down_waits_and_then_runs(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    from shared.consumer import ConsumerRunner
    from tests.shared.conftest import inbox

    topic = await topic_factory("late", partitions=1)  # type: ignore[operator]
    runner = ConsumerRunner(
        name=unique("g"),
        topics=[topic],
        handlers={},
        sessionmaker=sessionmaker,
        inbox=inbox,
        bootstrap_servers=kafka_bootstrap,
    )
    await asyncio.to_thread(_broker, "stop-kafka")
    try:
        starting = asyncio.create_task(runner.start())
        await asyncio.sleep(3)
        assert not starting.done(), "start-up must wait for the broker, not fail"
    finally:
        await asyncio.to_thread(_broker, "start-kafka")
    try:
        async with asyncio.timeout(120):
            await starting
        assert runner.assignment() is not None
    finally:
        await runner.close()
