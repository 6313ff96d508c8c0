"""Outbox relay throughput against a raw idempotent producer sending the same records, side by side."""

from __future__ import annotations

import asyncio
import gc
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.proc import cpu_seconds
from shared.config import kafka_bootstrap_servers, pg_server_url
from shared.consumer import inbox_table
from shared.db import create_engine, create_sessionmaker, make_metadata, utcnow
from shared.events.envelope import CONTENT_TYPE, build_envelope
from shared.events.registry import PersonDied
from shared.kafka import delete_topics, ensure_topics
from shared.outbox import Relay, make_relay_producer, outbox_table, publish
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique


async def _backends_cpu(monitor: asyncpg.Connection, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving `database` except the monitor's own (PostgreSQL
    runs on this machine: its backends are processes here)."""
    pids = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
    )
    return {pid: cpu for (pid,) in pids if (cpu := cpu_seconds(pid)) is not None}


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass(frozen=True)
class _Round:
    """Seconds of one round on each side. CPU: this process's on each side, and PostgreSQL's backends' on the
    relay's (the database shares the machine's cores with the relay and the broker); on a busy shared machine
    the wall-clock ratio swings with whoever else runs, while the CPU a side spends per event does not."""

    write_s: float
    relay_s: float
    relay_cpu_s: float
    relay_pg_s: float
    raw_s: float
    raw_cpu_s: float


def _metadata() -> tuple[MetaData, Table]:
    metadata = make_metadata()
    outbox = outbox_table(metadata)
    inbox_table(metadata)
    Table("bench_probe", metadata, Column("id", Integer, primary_key=True))
    return metadata, outbox


def _event(i: int) -> Any:
    from datetime import date

    key = uuid.UUID(int=i % 500)
    return PersonDied(
        person_id=uuid.uuid4(), family_id=key, village_code="15.71.01.1001", died_on=date(2026, 1, 1)
    )


async def _wake_up_ms(
    sessionmaker: async_sessionmaker[AsyncSession], outbox: Table, bootstrap: str, topic: str, samples: int
) -> dict[str, float]:
    """Commit -> acknowledged by the broker, one event at a time at random moments, with the relay running idle."""
    relay = Relay(
        service="bench-wake",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=bootstrap,
        topic_for=lambda _: topic,
        # Published rows kept, with the moment the broker acknowledged them (the relay deletes them by default).
        retention=timedelta(hours=1),
    )
    task = asyncio.create_task(relay.run())
    rng = random.Random(7)
    committed: dict[uuid.UUID, datetime] = {}
    try:
        await asyncio.sleep(2)  # leader elected, producer started, LISTEN in place
        for i in range(samples):
            await asyncio.sleep(rng.uniform(0.02, 0.12))
            data = _event(i)
            async with sessionmaker() as session, session.begin():
                envelope = await publish(session, outbox, data, key=data.family_id)
            committed[uuid.UUID(envelope.id)] = utcnow()
        async with asyncio.timeout(30):
            while True:
                async with sessionmaker() as session:
                    rows = (
                        await session.execute(
                            select(outbox.c.event_id, outbox.c.published_at).where(
                                outbox.c.event_id.in_(list(committed))
                            )
                        )
                    ).all()
                if all(r.published_at is not None for r in rows):
                    break
                await asyncio.sleep(0.2)
    finally:
        relay.stop()
        await task
    ms = sorted((r.published_at - committed[r.event_id]).total_seconds() * 1000 for r in rows)
    return {
        "wake_up_p50_ms": round(ms[len(ms) // 2], 1),
        "wake_up_p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 1),
    }


async def run(
    n: int = 20_000, rounds: int = 5, wake_samples: int = 200, warm_up: int = 1_000
) -> dict[str, Any]:
    """Returns events/s of the relay and of a raw producer, their ratio, and the relay's wake-up latency.

    The two alternate, a slice of the records each round, so that a busy moment of the shared machine falls on
    both sides alike. A first untimed round of `warm_up` more records readies both sides the same way (the
    clients' connections and topic metadata, the pool's connections, prepared statements): the relay's first
    timed round otherwise took 130-160 ms against 65-100 ms for its others.
    """
    bootstrap = kafka_bootstrap_servers()
    database = f"bench_relay_{CHECKOUT_TAG}"
    url = await recreate_database(database)
    metadata, outbox = _metadata()
    engine = create_engine(url, pool_size=4)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    relay_topic, raw_topic = unique("bench.relay."), unique("bench.raw.")
    await ensure_topics(bootstrap, [relay_topic, raw_topic], partitions=6)

    envelopes = []
    for i in range(n + warm_up):
        data = _event(i)
        envelopes.append(build_envelope(data, key=str(data.family_id)))
    rows = [
        {
            "event_id": uuid.UUID(e.id),
            "topic": "kencana.registry",
            "partition_key": e.partitionkey,
            "event_type": e.type,
            "envelope": e.model_dump(mode="json", exclude_none=True),
        }
        for e in envelopes
    ]
    # The raw producer gets its records ready-made, as the relay reads them ready-made from the outbox: the same
    # key, value and headers (the CloudEvents content-type header is part of every Kencana event on Kafka).
    records = [
        (
            orjson.dumps(row["envelope"]),
            e.partitionkey.encode(),
            [("content-type", CONTENT_TYPE.encode()), ("ce_type", e.type.encode())],
        )
        for row, e in zip(rows, envelopes, strict=True)
    ]

    # The fixtures above (every envelope, row and record of the run) live in this process with both sides: out of
    # the collector's reach, or a full collection walks them all on whichever side happens to trigger it (a
    # fifth of the relay's time in a profile; a relay process holds no such heap).
    gc.freeze()
    relay = Relay(
        service="bench",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=bootstrap,
        topic_for=lambda _: relay_topic,
        batch_size=1000,
    )
    # The same client settings as the relay's producer: the ratio is what the relay adds, not a tuning difference.
    producer = make_relay_producer(bootstrap, client_id="bench-raw", send_timeout=15.0)
    await producer.start()
    monitor = await asyncpg.connect(
        pg_server_url().replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    )
    size = -(-n // rounds)

    async def one_round(start: int, end: int) -> _Round:
        """Write rows [start, end) to the outbox, drain them with the relay, send them raw."""
        began = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            for part in range(start, end, 2000):
                await session.execute(insert(outbox), rows[part : min(part + 2000, end)])
        write_s = time.perf_counter() - began

        backends = await _backends_cpu(monitor, database)
        began, cpu = time.perf_counter(), time.process_time()
        # One drain: it reads until a read comes back short, as the relay's own loop does after a wake-up.
        await relay.publish_pending()
        relay_s, relay_cpu_s = time.perf_counter() - began, time.process_time() - cpu
        relay_pg_s = _spent(backends, await _backends_cpu(monitor, database))

        began, cpu = time.perf_counter(), time.process_time()
        futures = [
            await producer.send(raw_topic, value, key=key, headers=headers)
            for value, key, headers in records[start:end]
        ]
        await asyncio.gather(*futures)
        raw_s, raw_cpu_s = time.perf_counter() - began, time.process_time() - cpu
        return _Round(write_s, relay_s, relay_cpu_s, relay_pg_s, raw_s, raw_cpu_s)

    await one_round(n, n + warm_up)
    timed = [await one_round(start, min(start + size, n)) for start in range(0, n, size)]

    def total(figure: str) -> float:
        return sum(getattr(r, figure) for r in timed)

    await relay._reset_producer()
    await producer.stop()
    gc.unfreeze()  # the benchmarks after this one run in the same process
    wake = await _wake_up_ms(sessionmaker, outbox, bootstrap, relay_topic, wake_samples)
    await monitor.close()
    await delete_topics(bootstrap, [relay_topic, raw_topic])
    await engine.dispose()
    return {
        "events": n,
        "outbox_write_events_per_s": round(n / total("write_s")),
        "relay_events_per_s": round(n / total("relay_s")),
        "raw_producer_events_per_s": round(n / total("raw_s")),
        "relay_vs_raw_ratio": round(total("raw_s") / total("relay_s"), 3),
        "rounds_ms": {
            "relay": [round(r.relay_s * 1000, 1) for r in timed],
            "raw": [round(r.raw_s * 1000, 1) for r in timed],
        },
        "relay_cpu_us_per_event": round(total("relay_cpu_s") / n * 1e6, 1),
        "raw_cpu_us_per_event": round(total("raw_cpu_s") / n * 1e6, 1),
        "relay_pg_cpu_us_per_event": round(total("relay_pg_s") / n * 1e6, 1),
        **wake,
    }


if __name__ == "__main__":
    print(asyncio.run(run()))
