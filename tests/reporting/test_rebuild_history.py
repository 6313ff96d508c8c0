"""Issue 19: `kencana reporting rebuild` refuses a history that is no longer complete, and changes nothing.

Truncation is done the way retention does it, on the real broker: DeleteRecords moves a partition's earliest
offset past its first events.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from reporting.config import Settings
from reporting.consumer import TOPICS
from reporting.rebuild import rebuild
from sqlalchemy import text

from shared.db import create_engine
from shared.history import IncompleteHistory
from shared.kafka import delete_topics, partition_offsets, security_options
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique
from tests.reporting.conftest import fact_snapshot, produce, project
from tests.reporting.dataset import build

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def _projected(name: str) -> tuple[Settings, int]:
    """A reporting database projected from the fixture dataset on topics of its own; events produced."""
    url = await recreate_database(f"test_reporting_{name}_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(name), topic_partitions=3)
    await ensure_service_topics(settings, TOPICS)
    data = build()
    await produce(settings, data.envelopes)

    engine = create_engine(url, pool_size=2)
    try:
        await project(settings, engine, len(data.envelopes))
    finally:
        await engine.dispose()
    return settings, len(data.envelopes)


async def _shadow_schemas(settings: Settings) -> int:

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'reporting_%'")
            )
            return int(found.scalar_one())
    finally:
        await engine.dispose()


async def test_rebuild_refuses_a_truncated_topic_and_leaves_the_projections_as_they_were(
    kafka_bootstrap: str,
) -> None:
    settings, _ = await _projected("trunc")
    topics = [settings.topic(t) for t in TOPICS]
    try:
        engine = create_engine(settings.database_url, pool_size=2)
        before = await fact_snapshot(engine)
        assert len(before) > 100

        registry = settings.topic("kencana.registry")
        offsets = await partition_offsets(kafka_bootstrap, [registry])
        # The registry partition holding the most events loses its first two, as retention would delete them.
        tp = max((tp for tp in offsets), key=lambda tp: offsets[tp][1])
        assert offsets[tp] == (0, offsets[tp][1]) and offsets[tp][1] >= 3
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, **security_options())
        await admin.start()
        try:
            assert await admin.delete_records({tp: RecordsToDelete(2)}) == {tp: 2}
        finally:
            await admin.close()

        with pytest.raises(IncompleteHistory) as refused:
            await rebuild(settings, timeout=60)
        registry_events = sum(1 for e in build().envelopes if e.type.startswith("registry."))
        assert [g.describe() for g in refused.value.gaps] == [
            f"{registry}[{tp.partition}]: the first 2 events were deleted (earliest offset 2)",
            f"{registry}: it holds {registry_events - 2} events but {registry_events} were applied from it before: "
            "events were lost (deleted, or the topic was deleted and created again)",
        ]
        assert await fact_snapshot(engine) == before, "the live projections are untouched"
        assert await _shadow_schemas(settings) == 0
        await engine.dispose()

        # The operator's command says the same and exits 2.
        env = {
            **os.environ,
            "REPORTING_DATABASE_URL": settings.database_url,
            "REPORTING_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "REPORTING_TOPIC_SUFFIX": settings.topic_suffix,
        }
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("kencana")),
            "reporting",
            "rebuild",
            "--timeout",
            "60",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 240)
        assert proc.returncode == 2, out.decode() + err.decode()
        message = err.decode()
        assert "refused" in message and "Nothing was changed" in message
        assert f"{registry}[{tp.partition}]: the first 2 events were deleted" in message
    finally:
        await delete_topics(kafka_bootstrap, topics)


async def test_rebuild_refuses_a_topic_deleted_and_created_again(kafka_bootstrap: str) -> None:
    # The new topic starts at offset 0 again and Kafka forgets the groups' offsets of a deleted topic, so offsets
    # can't tell; the live projector's inbox, holding more DASHAT events than the topic now does, can.
    settings, _ = await _projected("recreated")
    dashat_events = sum(1 for e in build().envelopes if e.type.startswith("dashat."))
    assert dashat_events > 0
    topics = [settings.topic(t) for t in TOPICS]
    dashat = settings.topic("kencana.dashat")
    try:
        await delete_topics(kafka_bootstrap, [dashat])
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, **security_options())
        await admin.start()
        try:
            async with asyncio.timeout(60):
                while True:  # topic deletion finishes in the background
                    try:
                        await admin.create_topics([NewTopic(dashat, num_partitions=3, replication_factor=1)])
                        break
                    except Exception:
                        await asyncio.sleep(0.5)
        finally:
            await admin.close()
        assert all(end == 0 for _, end in (await partition_offsets(kafka_bootstrap, [dashat])).values())

        with pytest.raises(IncompleteHistory) as refused:
            await rebuild(settings, timeout=60)
        assert [g.describe() for g in refused.value.gaps] == [
            f"{dashat}: it holds 0 events but {dashat_events} were applied from it before: events were lost "
            "(deleted, or the topic was deleted and created again)"
        ]
        assert await _shadow_schemas(settings) == 0
    finally:
        await delete_topics(kafka_bootstrap, topics)
