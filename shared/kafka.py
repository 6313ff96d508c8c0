"""Kafka client construction with the settings that matter (see docs: EVENTS.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.kafka_security import KafkaSecurity
from shared.logging import get_logger
from shared.topics import HISTORY_SETTINGS, HistoryRisk, history_risks

log = get_logger(__name__)
T = TypeVar("T")

# One process, one Kafka principal: a service's processes set theirs from its settings at start
# (`ServiceSettings.kafka_security`, `<SVC>_KAFKA_SASL_USERNAME`...); everything else (CLI, tests, tools) uses
# `KENCANA_KAFKA_SECURITY_PROTOCOL`, `_SASL_USERNAME`, `_SASL_PASSWORD`, `_SSL_CAFILE` from the environment.
_process_security: KafkaSecurity | None = None


def use_security(security: KafkaSecurity) -> None:
    """Make every Kafka client this process builds from now on authenticate as `security` says."""
    global _process_security
    _process_security = security


def client_security() -> KafkaSecurity:
    """The security settings every client of this process is built with."""
    return _process_security if _process_security is not None else KafkaSecurity.from_env()


def security_options() -> dict[str, object]:
    """aiokafka keyword arguments (security_protocol, sasl_*, ssl_context) for any client built by hand."""
    return client_security().client_options()


def admin_client(bootstrap_servers: str, *, request_timeout_ms: int = 15_000) -> AIOKafkaAdminClient:
    """An admin client with this process's credentials."""
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms, **security_options()
    )


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
        **security_options(),
    )


def make_consumer(
    bootstrap_servers: str,
    *topics: str,
    group_id: str,
    client_id: str,
    max_poll_interval_seconds: float = 300.0,
) -> AIOKafkaConsumer:
    """A consumer that commits by hand and starts from the beginning of history."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=int(max_poll_interval_seconds * 1000),
        session_timeout_ms=30_000,
        heartbeat_interval_ms=3_000,
        isolation_level="read_committed",
        **security_options(),
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the topics that don't exist yet with `config` (shared.topics); returns the ones that existed.

    An existing topic is left as it is: changing a topic's retention is an operator's decision
    (`kencana topics repair`), so callers report what they find instead (`history_risks_on_broker`).
    """
    wanted = list(topics)
    admin = admin_client(bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            # Another process may create the same topic at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=dict(config or {}),
                        )
                        for t in missing
                    ]
                )
            log.info("topics_created", topics=missing, partitions=partitions, config=dict(config or {}))
        return [t for t in wanted if t in existing]
    finally:
        await admin.close()


# DescribeConfigs' config_source of a value set on the topic itself (the others are broker defaults).
_DYNAMIC_TOPIC_CONFIG = 1


async def _describe_topics(
    admin: AIOKafkaAdminClient, topics: Iterable[str]
) -> dict[str, list[tuple[str, str, int]] | None]:
    """Per topic its (name, value, source) config entries as the broker reports them; None when it doesn't exist."""
    names = list(topics)
    if not names:
        return {}
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in names])
    out: dict[str, list[tuple[str, str, int]] | None] = {}
    for response in responses:
        for error_code, error_message, _type, name, entries, *_ in response.resources:
            if error_code == 3:  # UNKNOWN_TOPIC_OR_PARTITION
                out[name] = None
            elif error_code:
                raise for_code(error_code)(f"describe configs of {name}: {error_message}")
            else:
                out[name] = [(e[0], e[1], int(e[3])) for e in entries]
    return out


async def describe_topic_configs(
    bootstrap_servers: str, topics: Iterable[str]
) -> dict[str, dict[str, str] | None]:
    """The effective config of each topic (topic settings and broker defaults); None for a missing topic."""
    admin = admin_client(bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        described = await _describe_topics(admin, topics)
    finally:
        await admin.close()
    return {t: None if e is None else {k: v for k, v, _ in e} for t, e in described.items()}


async def _risks(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[HistoryRisk]:
    described = await _describe_topics(admin, topics)
    return [
        risk
        for topic, entries in described.items()
        if entries is not None
        for risk in history_risks(topic, {k: v for k, v, _ in entries})
    ]


async def history_risks_on_broker(bootstrap_servers: str, topics: Iterable[str]) -> list[HistoryRisk]:
    """The existing event topics whose retention or cleanup would delete events (missing topics are fine)."""
    admin = admin_client(bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        return await _risks(admin, topics)
    finally:
        await admin.close()


async def keep_history(bootstrap_servers: str, topics: Iterable[str]) -> list[HistoryRisk]:
    """Set the history settings (shared.topics.HISTORY_SETTINGS) on existing topics that would drop events.

    Returns the risks it removed. Kafka's AlterConfigs replaces every setting of the topic, so the topic's own
    settings are read first and kept (only the history ones change). Events already deleted stay deleted.
    """
    admin = admin_client(bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        described = await _describe_topics(admin, topics)
        fixed: list[HistoryRisk] = []
        resources: list[ConfigResource] = []
        for topic, entries in described.items():
            if entries is None:
                continue
            risks = history_risks(topic, {k: v for k, v, _ in entries})
            if not risks:
                continue
            own = {k: v for k, v, source in entries if source == _DYNAMIC_TOPIC_CONFIG}
            resources.append(
                ConfigResource(ConfigResourceType.TOPIC, topic, configs={**own, **HISTORY_SETTINGS})
            )
            fixed.extend(risks)
        if resources:
            for response in await admin.alter_configs(resources):
                for error_code, error_message, _type, name, *_ in response.resources:
                    if error_code:
                        raise for_code(error_code)(f"alter configs of {name}: {error_message}")
            log.warning(
                "topic_history_settings_set", topics=sorted({r.topic for r in fixed}), **HISTORY_SETTINGS
            )
        return fixed
    finally:
        await admin.close()


async def partition_offsets(
    bootstrap_servers: str, topics: Iterable[str]
) -> dict[TopicPartition, tuple[int, int]]:
    """(earliest, end) offset of every partition of existing topics: the first record still kept, and the next."""
    admin = admin_client(bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in sorted(t["partitions"], key=lambda p: int(p["partition"]))
    ]
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **security_options()
    )
    await consumer.start()
    try:
        earliest = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp: (int(earliest[tp]), int(end[tp])) for tp in partitions}


async def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> None:
    """Delete topics (tests clean up after themselves)."""
    admin = admin_client(bootstrap_servers)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(list(topics))
    finally:
        await admin.close()


async def kafka_reachable(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request within the deadline."""
    admin = admin_client(bootstrap_servers, request_timeout_ms=int(timeout * 1000))
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


async def kafka_readiness(
    bootstrap_servers: str, history_topics: Iterable[str], timeout: float = 3.0
) -> tuple[bool, list[HistoryRisk]]:
    """Whether the broker answers, and which of `history_topics` would drop events: one admin session."""
    admin = admin_client(bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    topics = list(history_topics)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            await admin.list_topics()
    except Exception:
        return False, []
    try:
        async with asyncio.timeout(timeout):
            # A broker that answers metadata but not DescribeConfigs (ACLs) is reachable: the retention check
            # is then left to `kencana topics check`, readiness does not fail on it.
            return True, await _risks(admin, topics) if topics else []
    except Exception as exc:
        log.warning("topic_history_check_failed", error=type(exc).__name__)
        return True, []
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await admin.close()
