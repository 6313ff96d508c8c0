"""The shared consumer runner's own cost: a no-op handler through ConsumerRunner beside a bare consumer.

Produces the reporting projector bench's demo-like event mix (registry, uppka, dashat) to unique topics, then
times, in alternating rounds on the same topics (each with a fresh consumer group):
- runner: the shared ConsumerRunner with a no-op handler for every type in the mix (inbox rows, offsets,
  metrics, envelope and payload parsing: everything but the effect);
- batch hook: the same with a no-op `batch_handler` (as the set-based consumers run);
- bare: an aiokafka consumer that reads each envelope's id and type, inserts an inbox-like row per event with
  one multi-row INSERT per poll over asyncpg, and commits the offsets (the ceiling).
Each side's best round counts, so a burst from another process on the machine does not decide the ratio.
Beside events/s (wall time, the target's figure), CPU microseconds per event of this process: the runner's own
cost, which load from other processes moves far less.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import orjson
from reporting.config import Settings
from sqlalchemy.ext.asyncio import AsyncSession

from bench.reporting_projector import build_mix, produce
from shared.consumer import ConsumerRunner, Delivery, Handler, inbox_table
from shared.db import create_sessionmaker, make_metadata
from shared.events import CloudEvent
from shared.kafka import delete_topics, make_consumer
from shared.runtime import create_consumer_engine, ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique

TOPICS = ["kencana.registry", "kencana.uppka", "kencana.dashat"]
ROUNDS = 2

_BARE_INSERT = (
    "INSERT INTO inbox (consumer, event_id, event_type) "
    "SELECT $1, e.event_id, e.event_type FROM unnest($2::uuid[], $3::text[]) AS e(event_id, event_type) "
    "ON CONFLICT DO NOTHING"
)


async def _noop(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
    return None


async def _noop_batch(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
    return None


async def _timed(poll: Callable[[], Awaitable[int]], n: int, timeout: float) -> tuple[float, float]:
    """Wall and CPU seconds per event after the first non-empty poll (which also joins the group).

    CPU time is this process's: on a machine shared with other work it moves far less than wall time.
    """
    async with asyncio.timeout(timeout):
        first = 0
        while not first:
            first = await poll()
        seen, started, cpu = first, time.perf_counter(), time.process_time()
        while seen < n:
            seen += await poll()
    return (time.perf_counter() - started) / (n - first), (time.process_time() - cpu) / (n - first)


async def drain_runner(runner: ConsumerRunner, n: int, timeout: float) -> tuple[float, float]:
    await runner.start()
    try:
        return await _timed(lambda: runner.poll_once(timeout_ms=300), n, timeout)
    finally:
        await runner.close()


async def bare_consumer(
    settings: Settings, dsn: str, n: int, max_records: int, timeout: float
) -> tuple[float, float]:
    consumer = make_consumer(
        settings.kafka_bootstrap_servers,
        *[settings.topic(t) for t in TOPICS],
        group_id=unique("bench.bare."),
        client_id="bench-bare",
    )
    name = unique("bench.bare.")
    conn = await asyncpg.connect(dsn)
    await consumer.start()

    async def poll() -> int:
        batches = await consumer.getmany(timeout_ms=300, max_records=max_records)
        ids: list[str] = []
        types: list[str] = []
        for records in batches.values():
            for record in records:
                envelope = orjson.loads(record.value or b"")
                ids.append(envelope["id"])
                types.append(envelope["type"])
        if batches:
            async with conn.transaction():
                await conn.execute(_BARE_INSERT, name, ids, types)
            await consumer.commit()
        return sum(len(records) for records in batches.values())

    try:
        return await _timed(poll, n, timeout)
    finally:
        await consumer.stop()
        await conn.close()


async def run(n: int = 30_000, timeout: float = 600.0) -> dict[str, Any]:
    """Events/s of the runner (no-op handlers, and a no-op batch hook) and of the bare consumer; their ratios."""
    url = await recreate_database(f"bench_consumer_{CHECKOUT_TAG}")
    metadata = make_metadata()
    inbox = inbox_table(metadata)
    engine = create_consumer_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=6)
    await ensure_service_topics(settings, TOPICS)
    envelopes = build_mix(n)
    await produce(settings, envelopes)
    sessionmaker = create_sessionmaker(engine)
    noop_handlers: dict[str, Handler] = {e.type: _noop for e in envelopes}

    def runner(**kw: Any) -> ConsumerRunner:
        return ConsumerRunner(
            name=unique("bench.runner."),
            topics=[settings.topic(t) for t in TOPICS],
            handlers=noop_handlers,
            sessionmaker=sessionmaker,
            inbox=inbox,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            **kw,
        )

    max_records = runner().max_records
    figures: dict[str, list[tuple[float, float]]] = {"bare": [], "runner": [], "batch_hook": []}
    try:
        for _ in range(ROUNDS):
            dsn = url.replace("postgresql+asyncpg://", "postgresql://")
            figures["bare"].append(await bare_consumer(settings, dsn, n, max_records, timeout))
            figures["runner"].append(await drain_runner(runner(), n, timeout))
            figures["batch_hook"].append(await drain_runner(runner(batch_handler=_noop_batch), n, timeout))
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
    wall = {side: min(w for w, _ in rounds) for side, rounds in figures.items()}
    cpu = {side: min(c for _, c in rounds) for side, rounds in figures.items()}
    return {
        "events": n,
        "max_records": max_records,
        "runner_events_per_s": round(1 / wall["runner"]),
        "runner_batch_hook_events_per_s": round(1 / wall["batch_hook"]),
        "bare_events_per_s": round(1 / wall["bare"]),
        "runner_vs_bare_ratio": round(wall["bare"] / wall["runner"], 3),
        "batch_hook_vs_bare_ratio": round(wall["bare"] / wall["batch_hook"], 3),
        "rounds_events_per_s": {side: [round(1 / w) for w, _ in rounds] for side, rounds in figures.items()},
        "cpu_us_per_event": {side: round(c * 1e6, 1) for side, c in cpu.items()},
        "runner_vs_bare_cpu_ratio": round(cpu["bare"] / cpu["runner"], 3),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)), indent=2))
