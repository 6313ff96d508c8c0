"""Kafka client construction with the settings that matter (see docs: EVENTS.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")


async def when_kafka_answers(step: Callable[[], Awaitable[T]], *, what: str, max_seconds: float = 300) -> T:
    """Run a start-up step, retrying with backoff while the broker is unreachable.

    A relay or consumer started during a broker outage waits for it instead of exiting; after `max_seconds`
    the error surfaces and the supervisor (Kubernetes, compose) restarts the process.
    """

    def note(state: object) -> None:
        log.warning("kafka_unreachable_retrying", step=what, attempt=getattr(state, "attempt_number", None))

    async for attempt in AsyncRetrying(
        stop=stop_after_delay(max_seconds),
        wait=wait_exponential(multiplier=0.5, max=10),
        retry=retry_if_exception_type((KafkaError, OSError, TimeoutError)),
        before_sleep=note,
        reraise=True,
    ):
        with attempt:
            return await step()
    raise AssertionError("unreachable")  # AsyncRetrying either returns or re-raises


def make_producer(
    bootstrap_servers: str,
    *,
    client_id: str,
    request_timeout_ms: int = 10_000,
    linger_ms: int = 5,
    max_batch_size: int = 16_384,
) -> AIOKafkaProducer:
    """An idempotent producer: `acks=all` and per-partition order survive retries."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        request_timeout_ms=request_timeout_ms,
        retry_backoff_ms=200,
    )


def make_consumer(bootstrap_servers: str, *topics: str, group_id: str, client_id: str) -> AIOKafkaConsumer:
    """A consumer that commits by hand and starts from the beginning of history."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=300_000,
        session_timeout_ms=30_000,
        heartbeat_interval_ms=3_000,
        isolation_level="read_committed",
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int, replication_factor: int = 1
) -> None:
    """Create the topics that don't exist yet; an existing topic is left as it is."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            # Another process may create the same topic at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
                        for t in missing
                    ]
                )
            log.info("topics_created", topics=missing, partitions=partitions)
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> None:
    """Delete topics (tests clean up after themselves)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(list(topics))
    finally:
        await admin.close()


async def kafka_reachable(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request within the deadline."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            await admin.list_topics()
            return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await admin.close()
