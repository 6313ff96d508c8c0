"""DASHAT's consumer on a registration-heavy stream beside the bare consumer of bench/consumer.py.

Produces the reporting projector bench's demo-like mix (mostly registry family and person registrations and
baduta measurements; few enrolments), or with `rehearsal` the scale rehearsal's registry stream, to unique
topics, then times on the same topics, each with a fresh consumer group: the bare consumer (aiokafka, one inbox-like INSERT per poll, offsets committed: the ceiling) and
DASHAT's consumer as it runs in production (its handlers and batch hook on a migrated database). Beside events/s,
CPU microseconds per event of this process, which load from other processes moves far less.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dashat.config import Settings
from dashat.consumer import BATCH_HANDLER, HANDLERS
from dashat.consumer import TOPICS as DASHAT_TOPICS
from dashat.models import inbox

from bench.consumer import TOPICS, bare_consumer, drain_runner
from bench.rehearsal_mix import build_rehearsal_mix
from bench.reporting_projector import build_mix, produce
from shared.consumer import ConsumerRunner
from shared.db import create_sessionmaker
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import create_consumer_engine, ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique


async def run(n: int = 20_000, timeout: float = 900.0, mix: str = "demo") -> dict[str, Any]:
    """Events/s of DASHAT's consumer and of the bare consumer over the same stream; their ratio."""
    url = await recreate_database(f"bench_dashat_consumer_{CHECKOUT_TAG}")
    await upgrade("dashat", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=6)
    await ensure_service_topics(settings, TOPICS)
    # "rehearsal": the registry stream of the scale rehearsal's initial load (bench/rehearsal_mix.py).
    envelopes = build_rehearsal_mix(n) if mix == "rehearsal" else build_mix(n)
    await produce(settings, envelopes)  # type: ignore[arg-type]
    consumed = [e for e in envelopes if f"kencana.{e.type.split('.', 1)[0]}" in DASHAT_TOPICS]
    kinds: dict[str, int] = {}
    for e in consumed:
        kinds[e.type] = kinds.get(e.type, 0) + 1
    engine = create_consumer_engine(url)
    runner = ConsumerRunner(
        name=unique("bench.dashat."),
        topics=[settings.topic(t) for t in DASHAT_TOPICS],
        handlers=HANDLERS,
        batch_handler=BATCH_HANDLER,
        sessionmaker=create_sessionmaker(engine),
        inbox=inbox,
        bootstrap_servers=settings.kafka_bootstrap_servers,
    )
    try:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        bare_wall, bare_cpu = await bare_consumer(settings, dsn, n, runner.max_records, timeout)  # type: ignore[arg-type]
        wall, cpu = await drain_runner(runner, len(consumed), timeout)
        dead = runner.outcome.dead_lettered
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
    return {
        "mix": mix,
        "events": len(consumed),
        "by_type": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "events_per_s": round(1 / wall),
        "bare_events_per_s": round(1 / bare_wall),
        "vs_bare_ratio": round(bare_wall / wall, 4),
        "cpu_us_per_event": {"dashat": round(cpu * 1e6, 1), "bare": round(bare_cpu * 1e6, 1)},
        "dead_lettered": dead,
    }


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(asyncio.run(run(n, mix=sys.argv[2] if len(sys.argv) > 2 else "demo")), indent=2))
