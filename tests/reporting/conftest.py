"""Fixtures of the reporting tests: a dedicated database filled by the real consumer from real Kafka topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from reporting.config import Settings
from reporting.consumer import TOPICS, build_runner
from reporting.projection import rollup
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine, create_sessionmaker
from shared.events import CloudEvent
from shared.kafka import delete_topics, security_options
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique
from tests.reporting.dataset import Dataset, build


@contextlib.asynccontextmanager
async def scratch_engine(name: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a reporting database of this checkout's own, migrated afresh."""
    url = await recreate_database(f"test_reporting_{name}_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    engine = create_engine(url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def produce(settings: Settings, envelopes: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, **security_options()
    )
    await producer.start()
    try:
        for env in envelopes:
            topic = settings.topic(f"kencana.{env.type.split('.', 1)[0]}")
            await producer.send_and_wait(
                topic, orjson.dumps(env.model_dump(mode="json")), key=env.partitionkey.encode()
            )
    finally:
        await producer.stop()


async def project(settings: Settings, engine: AsyncEngine, expected: int, timeout: float = 60) -> None:
    """Run the reporting consumer until `expected` records were seen (applied or duplicate)."""
    runner = build_runner(settings, create_sessionmaker(engine))
    await runner.start()
    try:
        async with asyncio.timeout(timeout):
            while (
                runner.outcome.applied + runner.outcome.duplicates + runner.outcome.dead_lettered < expected
            ):
                await runner.poll_once(timeout_ms=300)
    finally:
        await runner.close()
    assert runner.outcome.dead_lettered == 0
    # The projector process rolls facts up in its own loop; here the figures are read right away.
    await rollup.settle(create_sessionmaker(engine))


@dataclass
class Projected:
    url: str
    settings: Settings
    engine: AsyncEngine
    data: Dataset


async def fact_snapshot(engine: AsyncEngine) -> dict[tuple[str, str, str, str], int]:
    """Every non-zero figure (summed over the slots, which rows from before rep0004 may still have)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT region, grain, period_start::text, measure, sum(value)::bigint FROM rep_fact"
                " GROUP BY 1, 2, 3, 4 HAVING sum(value) <> 0"
            )
        )
        return {(r, g, p, m): v for r, g, p, m, v in rows}


@pytest.fixture(scope="module")
async def projected(kafka_bootstrap: str) -> AsyncIterator[Projected]:
    """The fixture dataset, produced to unique topics (with duplicates and late events) and projected."""
    url = await recreate_database(f"test_reporting_pipe_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=3)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(url, pool_size=4)
    data = build()
    await produce(settings, data.envelopes + data.duplicates)
    await project(settings, engine, len(data.envelopes) + len(data.duplicates))
    try:
        yield Projected(url, settings, engine, data)
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
