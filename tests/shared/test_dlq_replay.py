"""`kencana dlq replay`: each dead letter goes back to its original topic once, with its key and without the
dead-letter headers; a second replay sends nothing (real Kafka)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.dlq import replay_dead_letters
from shared.kafka import delete_topics, ensure_topics, security_options
from shared.testing.plugin import unique

pytestmark = [pytest.mark.kafka]


async def _read_all(
    bootstrap: str, topic: str, expected: int
) -> list[tuple[bytes | None, bytes | None, dict]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **security_options())
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        assert end == expected, f"{topic} holds {end} records, expected {expected}"
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out.extend((r.key, r.value, dict(r.headers or [])) for r in records)
        return out
    finally:
        await consumer.stop()


async def test_replay_sends_each_dead_letter_back_once(
    kafka_bootstrap: str, topic_factory: Callable[..., Awaitable[str]]
) -> None:
    original = await topic_factory("orig", partitions=1)
    group = unique("dlqtest.")
    dlq = f"{group}.dlq"
    await ensure_topics(kafka_bootstrap, [dlq], partitions=1)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, **security_options())
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(
                    dlq,
                    value=f'{{"id": "{n}"}}'.encode(),
                    key=f"agg-{n}".encode(),
                    headers=[
                        ("ce_type", b"registry.measurement.recorded.v1"),
                        ("dlq.error.type", b"ValidationError"),
                        ("dlq.original.topic", original.encode()),
                        ("dlq.original.offset", str(10 + n).encode()),
                    ],
                )
            # A record that does not say where it came from is left alone.
            await producer.send_and_wait(dlq, value=b"{}", key=b"x", headers=[("dlq.error.type", b"X")])
        finally:
            await producer.stop()

        first = await replay_dead_letters(kafka_bootstrap, group, timeout=60)
        assert dict(first.resent) == {original: 3}
        assert first.without_origin == 1
        records = await _read_all(kafka_bootstrap, original, expected=3)
        assert [(k, v) for k, v, _ in records] == [
            (b"agg-0", b'{"id": "0"}'),
            (b"agg-1", b'{"id": "1"}'),
            (b"agg-2", b'{"id": "2"}'),
        ]
        for _, _, headers in records:
            assert headers["ce_type"] == b"registry.measurement.recorded.v1"
            assert not any(k.startswith("dlq.error") or k == "dlq.original.topic" for k in headers)
            assert headers["dlq.replayed.from"].startswith(f"{dlq}:0:".encode())

        again = await replay_dead_letters(kafka_bootstrap, group, timeout=60)
        assert sum(again.resent.values()) == 0 and again.without_origin == 0
        await _read_all(kafka_bootstrap, original, expected=3)
    finally:
        await delete_topics(kafka_bootstrap, [dlq])
