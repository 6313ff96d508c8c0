"""Outbox relay throughput against a raw idempotent producer sending the same records, side by side."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
from sqlalchemy import Column, Integer, MetaData, Table, insert

from shared.config import kafka_bootstrap_servers
from shared.consumer import inbox_table
from shared.db import create_engine, create_sessionmaker, make_metadata
from shared.events.envelope import build_envelope
from shared.events.registry import PersonDied
from shared.kafka import delete_topics, ensure_topics, make_producer
from shared.outbox import Relay, outbox_table
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique


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


async def run(n: int = 20_000) -> dict[str, Any]:
    """Returns events/s of the relay and of a raw producer, and their ratio."""
    bootstrap = kafka_bootstrap_servers()
    url = await recreate_database(f"bench_relay_{CHECKOUT_TAG}")
    metadata, outbox = _metadata()
    engine = create_engine(url, pool_size=4)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    relay_topic, raw_topic = unique("bench.relay."), unique("bench.raw.")
    await ensure_topics(bootstrap, [relay_topic, raw_topic], partitions=6)

    envelopes = []
    for i in range(n):
        data = _event(i)
        envelopes.append(build_envelope(data, key=str(data.family_id)))
    started = time.perf_counter()
    async with sessionmaker() as session, session.begin():
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
        for start in range(0, n, 2000):
            await session.execute(insert(outbox), rows[start : start + 2000])
    write_seconds = time.perf_counter() - started

    relay = Relay(
        service="bench",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=bootstrap,
        topic_for=lambda _: relay_topic,
        batch_size=1000,
    )
    started = time.perf_counter()
    while await relay.publish_batch():
        pass
    relay_seconds = time.perf_counter() - started
    await relay._reset_producer()

    producer = make_producer(bootstrap, client_id="bench-raw")
    await producer.start()
    started = time.perf_counter()
    futures = []
    for e in envelopes:
        futures.append(
            await producer.send(
                raw_topic,
                orjson.dumps(e.model_dump(mode="json", exclude_none=True)),
                key=e.partitionkey.encode(),
            )
        )
    await asyncio.gather(*futures)
    raw_seconds = time.perf_counter() - started
    await producer.stop()
    await delete_topics(bootstrap, [relay_topic, raw_topic])
    await engine.dispose()
    return {
        "events": n,
        "outbox_write_events_per_s": round(n / write_seconds),
        "relay_events_per_s": round(n / relay_seconds),
        "raw_producer_events_per_s": round(n / raw_seconds),
        "relay_vs_raw_ratio": round(raw_seconds / relay_seconds, 3),
    }


if __name__ == "__main__":
    print(asyncio.run(run()))
