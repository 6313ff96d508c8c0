"""Replaying a consumer group's dead-letter topic after the fix: each dead letter goes back to the topic it came
from, once.

The consumer runner dead-letters an event with its context in headers (`dlq.original.topic`, `-.partition`,
`-.offset`, `dlq.error.*`, `dlq.consumer`, `dlq.attempts`; see shared/consumer.py). Replaying sends the record
unchanged (value, key, its own headers) back to `dlq.original.topic`: the key keeps it on its aggregate's
partition, so it is applied after what came before it. Every consumer group of that topic receives it again; the
ones that applied it already find its id in their inbox and skip it, the failed one applies it now: exactly once
everywhere.

Progress is the committed offset of the group `<group>.dlq.replay` on the dead-letter topic, committed only after
the broker acknowledged every resent record; a replay cut short resends at most what was not committed (and the
inbox drops those copies). Records with no `dlq.original.topic` header are reported, not sent.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from shared.kafka import make_producer, security_options
from shared.logging import get_logger

log = get_logger(__name__)

ORIGINAL_TOPIC = "dlq.original.topic"


@dataclass
class DlqReplayReport:
    dead_letter_topic: str
    resent: Counter[str] = field(default_factory=Counter)  # original topic -> records sent back
    without_origin: int = 0  # records that do not say where they came from (left alone)


def dead_letter_topic(group: str) -> str:
    return f"{group}.dlq"


async def _partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions, asked of the broker now (a consumer's metadata may not know a new topic)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000, **security_options()
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        TopicPartition(topic, p["partition"])
        for d in described
        if d["error_code"] == 0
        for p in sorted(d["partitions"], key=lambda p: p["partition"])
    ]


async def replay_dead_letters(bootstrap_servers: str, group: str, *, timeout: float = 300) -> DlqReplayReport:
    """Send every dead letter of `group` not yet replayed back to its original topic."""
    topic = dead_letter_topic(group)
    report = DlqReplayReport(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=f"{group}.dlq.replay",
        client_id=f"{group}-dlq-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **security_options(),
    )
    producer = make_producer(bootstrap_servers, client_id=f"{group}-dlq-replay")
    async with asyncio.timeout(timeout):
        await consumer.start()
        await producer.start()
        try:
            partitions = await _partitions(bootstrap_servers, topic)
            if not partitions:
                return report
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)  # the goal: what was dead-lettered before now
            for tp in partitions:
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
            while True:
                behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
                if not behind:
                    break
                batches = await consumer.getmany(*behind, timeout_ms=500)
                sends = []
                last: dict[TopicPartition, int] = {}
                for tp, records in batches.items():
                    for record in records:
                        if record.offset >= ends[tp]:
                            continue
                        last[tp] = record.offset + 1
                        headers = dict(record.headers or [])
                        origin = headers.get(ORIGINAL_TOPIC)
                        if not origin:
                            report.without_origin += 1
                            continue
                        kept = [(k, v) for k, v in (record.headers or []) if not k.startswith("dlq.")]
                        kept.append(("dlq.replayed.from", f"{topic}:{tp.partition}:{record.offset}".encode()))
                        sends.append(
                            await producer.send(
                                origin.decode(), value=record.value, key=record.key, headers=kept
                            )
                        )
                        report.resent[origin.decode()] += 1
                if sends:
                    await asyncio.gather(*sends)  # acknowledged before the progress is committed
                if last:
                    await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in last.items()})
        finally:
            await producer.stop()
            await consumer.stop()
    log.info("dlq_replayed", topic=topic, resent=dict(report.resent), without_origin=report.without_origin)
    return report
