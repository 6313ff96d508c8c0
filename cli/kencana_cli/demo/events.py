"""Which event types are on the services' topics: the demo's closing check that its story used every one.

Read as a partner reads a topic with Kafka's own console consumer: from the beginning, without a consumer
group, by the `ce_type` header every record carries (the envelope's `type` when a record has none). The topics
keep every event for ever (shared/topics.py), so the counts are the whole history, earlier runs included.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
from aiokafka import AIOKafkaConsumer

from shared.events.envelope import event_types
from shared.kafka import partition_offsets, security_options
from shared.topics import EVENT_TOPICS


def catalogue() -> list[str]:
    """Every event type the services publish (docs/events/CATALOGUE.md is generated from the same models)."""
    return sorted(event_types())


def _type_of(headers: list[tuple[str, bytes]] | None, value: bytes | None) -> str:
    for key, raw in headers or ():
        if key == "ce_type":
            return raw.decode()
    return str(orjson.loads(value or b"{}").get("type", ""))


async def count_event_types(
    bootstrap_servers: str, topic_suffix: str = "", *, settle: float = 10.0
) -> Counter[str]:
    """Records per event type on the three event topics.

    Reads up to each partition's end; while a catalogue type is still missing it looks again for up to
    `settle` seconds (the last consequences of the story may still be between an outbox and its topic).
    """
    topics = [f"{t}{topic_suffix}" for t in EVENT_TOPICS]
    wanted = set(catalogue())
    seen: Counter[str] = Counter()
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security_options(),  # the secured bus: the same user and TLS as every other client of the process
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settle
        while True:
            ends = {tp: end for tp, (_, end) in (await partition_offsets(bootstrap_servers, topics)).items()}
            stalled = loop.time() + 30  # a partition that delivers nothing at all: never wait for ever
            while loop.time() < stalled:
                # The position, not the last record's offset: it also steps over control records.
                behind = [
                    tp
                    for tp, end in ends.items()
                    if tp in consumer.assignment() and await consumer.position(tp) < end
                ]
                if not behind and consumer.assignment():
                    break
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        seen[_type_of(list(r.headers or ()), r.value)] += 1
            if wanted <= set(seen) or loop.time() > deadline:
                return seen
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
