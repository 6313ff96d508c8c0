"""What the fault run reads to judge itself: the services' databases (outboxes, effects) and the topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka import security_options
from tests.e2e.stack import Stack

PUBLISHERS = ("registry", "uppka", "dashat")
# Consumer group (without the run's suffix) -> the logical topics it reads.
GROUPS = {
    "uppka.projector": ("kencana.registry", "kencana.dashat"),
    "dashat.projector": ("kencana.registry", "kencana.uppka"),
    "reporting.projector": ("kencana.registry", "kencana.uppka", "kencana.dashat"),
}


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Databases:
    """A small pool per service database (verification may read them directly).

    Pools, not single connections: the lag sampler runs in the background while the drain and the checks query
    too, and one asyncpg connection takes one query at a time.
    """

    conns: dict[str, asyncpg.Pool] = field(default_factory=dict)

    @classmethod
    async def open(cls, stack: Stack) -> Databases:
        dbs = cls()
        for service, url in stack.urls.items():
            dbs.conns[service] = await asyncpg.create_pool(dsn(url), min_size=1, max_size=3)
        return dbs

    async def close(self) -> None:
        for conn in self.conns.values():
            await conn.close()

    async def unpublished(self) -> dict[str, tuple[int, float]]:
        """Per publisher: unpublished outbox rows and the age in seconds of the oldest one."""
        out = {}
        for service in PUBLISHERS:
            row = await self.conns[service].fetchrow(
                "select count(*) as n, coalesce(extract(epoch from now() - min(created_at)), 0) as age"
                " from outbox where published_at is null"
            )
            assert row is not None
            out[service] = (int(row["n"]), float(row["age"]))
        return out

    async def outbox_ids(self, service: str) -> set[str]:
        rows = await self.conns[service].fetch("select event_id from outbox")
        return {str(r["event_id"]) for r in rows}

    async def count_by(self, service: str, sql: str, *args: object) -> Counter[str]:
        """`sql` selects (key, n); the counter of n per key."""
        return Counter({str(r[0]): int(r[1]) for r in await self.conns[service].fetch(sql, *args)})


@dataclass
class LagSampler:
    """Samples the age of the oldest unpublished outbox row per publisher; keeps the maximum."""

    dbs: Databases
    max_lag: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PUBLISHERS, 0.0))
    max_rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PUBLISHERS, 0))

    async def run(self, until: object) -> None:
        while not until():  # type: ignore[operator]
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self.sample()  # PostgreSQL may be restarting (scenario 9)
            await asyncio.sleep(0.25)

    async def sample(self) -> dict[str, tuple[int, float]]:
        now = await self.dbs.unpublished()
        for service, (rows, age) in now.items():
            self.max_lag[service] = max(self.max_lag[service], age)
            self.max_rows[service] = max(self.max_rows[service], rows)
        return now


async def partitions_of(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """The partitions of existing topics (a missing topic has none)."""
    described = await admin.describe_topics(topics)
    return [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if d["error_code"] == 0
        for p in sorted(d["partitions"], key=lambda p: p["partition"])
    ]


async def group_lag(bootstrap: str, stack: Stack) -> dict[str, int]:
    """Records each consumer group has not committed yet, over the topics it reads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security_options())
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **security_options())
    try:
        await admin.start()
        await consumer.start()  # both inside: a broker that is away must not leave an unclosed client
        out = {}
        for group, logical in GROUPS.items():
            partitions = await partitions_of(admin, [t + stack.suffix for t in logical])
            assert partitions, f"no partitions for {logical}"
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group + stack.suffix)
            out[group] = sum(
                max(end - (committed[tp].offset if tp in committed else 0), 0) for tp, end in ends.items()
            )
        return out
    finally:
        await consumer.stop()
        await admin.close()


async def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[str]:
    """Every event id on a topic, in order of arrival per partition (up to the end offsets of now)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security_options())
    await admin.start()
    try:
        partitions = await partitions_of(admin, [topic])
    finally:
        await admin.close()
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **security_options())
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        ids: list[str] = []
        deadline = time.monotonic() + timeout
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout}s")
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if ends[TopicPartition(record.topic, record.partition)] > record.offset:
                        ids.append(str(orjson.loads(record.value or b"{}").get("id")))
        return ids
    finally:
        await consumer.stop()
