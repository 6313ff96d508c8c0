"""Entry points shared by every service's relay and consumer processes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from prometheus_client import start_http_server
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config import ServiceSettings
from shared.consumer import BatchHandler, ConsumerRunner, Handler
from shared.db import create_engine, create_sessionmaker
from shared.kafka import ensure_topics, history_risks_on_broker, use_security, when_kafka_answers
from shared.logging import configure_logging, get_logger
from shared.outbox import Relay
from shared.topics import REPAIR_COMMAND, topic_config

log = get_logger(__name__)


# Seconds between cancelling the work and the hard exit (closing clients is bounded by about that much).
_HARD_EXIT_AFTER_CANCEL = 8.0
_EXIT_DEADLINE_PASSED = 70


def _on_signals(stop: Callable[[], None], grace: float) -> None:
    """SIGTERM/SIGINT: ask the loop to stop; after `grace` seconds cancel it; shortly after that, exit.

    A shutdown must have a deadline: after the broker went away, consumers ignored SIGTERM until they were
    SIGKILLed (their last offset commit waited for a broker reconnect). Leaving early loses nothing: effects and
    outbox marks are committed per batch, and the rest is delivered or sent again.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signalled = False

    def hard_exit() -> None:
        log.error("shutdown_deadline_passed", action="exit")
        os._exit(_EXIT_DEADLINE_PASSED)

    def give_up() -> None:
        log.warning("shutdown_deadline_passed", action="cancel", grace_seconds=grace)
        if main is not None:
            main.cancel()
        loop.call_later(_HARD_EXIT_AFTER_CANCEL, hard_exit)

    def on_signal() -> None:
        nonlocal signalled
        stop()
        if not signalled:
            signalled = True
            loop.call_later(grace, give_up)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


async def ensure_service_topics(settings: ServiceSettings, logical_topics: list[str]) -> None:
    """Create the service's event topics (idempotent) with their history settings; waits out an outage.

    A topic that already existed is checked, not changed: one whose retention would delete events is logged as
    an error at every start (and the APIs' readiness reports it) until `kencana topics repair` fixes it.
    """
    topics = [settings.topic(t) for t in logical_topics]
    existing = await when_kafka_answers(
        lambda: ensure_topics(
            settings.kafka_bootstrap_servers,
            topics,
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config=topic_config("events", replication_factor=settings.topic_replication_factor),
        ),
        what="create topics",
    )
    if existing:
        risks = await when_kafka_answers(
            lambda: history_risks_on_broker(settings.kafka_bootstrap_servers, existing),
            what="check topic retention",
        )
        for risk in risks:
            log.error(
                "topic_drops_event_history",
                topic=risk.topic,
                setting=risk.setting,
                value=risk.value,
                why=risk.why,
                fix=REPAIR_COMMAND,
            )


def build_relay(settings: ServiceSettings, outbox: Table) -> tuple[Relay, object]:
    engine = create_engine(settings.database_url, pool_size=2)
    relay = Relay(
        service=settings.service_name,
        sessionmaker=create_sessionmaker(engine),
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_for=settings.topic,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval_seconds,
        send_timeout=settings.relay_send_timeout_seconds,
        retention=timedelta(hours=settings.relay_retention_hours),
    )
    return relay, engine


async def run_relay(settings: ServiceSettings, outbox: Table) -> None:
    """Relay process: outbox -> `kencana.<service>` until SIGTERM."""
    configure_logging(f"{settings.service_name}-relay")
    use_security(settings.kafka_security())
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    await ensure_service_topics(settings, [f"kencana.{settings.service_name}"])
    relay, engine = build_relay(settings, outbox)
    _on_signals(relay.stop, settings.shutdown_grace_seconds)
    log.info("relay_started")
    try:
        await relay.run()
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


def create_consumer_engine(url: str) -> AsyncEngine:
    """The engine of a consumer process (a small pool; pings only connections idle for a while, see shared.db)."""
    return create_engine(url, pool_size=4)


async def serve_consumer(
    settings: ServiceSettings,
    logical_topics: list[str],
    build: Callable[[async_sessionmaker[AsyncSession]], ConsumerRunner],
) -> None:
    """Run a consumer process until SIGTERM: logging, metrics, topics, engine, graceful stop."""
    configure_logging(f"{settings.service_name}-consumer")
    use_security(settings.kafka_security())
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    await ensure_service_topics(settings, logical_topics)
    engine = create_consumer_engine(settings.database_url)
    runner = build(create_sessionmaker(engine))
    _on_signals(runner.stop, settings.shutdown_grace_seconds)
    log.info("consumer_started", group=runner.name, topics=runner.topics)
    try:
        await runner.run()
    finally:
        await engine.dispose()


def consumer_group(settings: ServiceSettings, purpose: str) -> str:
    """Consumer group of a service's purpose, e.g. `dashat.projector`."""
    return f"{settings.service_name}.{purpose}{settings.topic_suffix}"


def build_consumer_runner(
    settings: ServiceSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    purpose: str,
    logical_topics: list[str],
    handlers: Mapping[str, Handler],
    inbox: Table,
    batch_handler: BatchHandler | None = None,
    name: str | None = None,
    max_records: int = 200,
    before_offset_commit: Callable[[], Awaitable[None]] | None = None,
) -> ConsumerRunner:
    """The one way a service's consumer runner is built from its settings: group `<service>.<purpose>` (or
    `name`, for a rebuild's shadow group), retries, poll interval and the dead-letter topic's replication."""
    return ConsumerRunner(
        name=name or consumer_group(settings, purpose),
        topics=[settings.topic(t) for t in logical_topics],
        handlers=handlers,
        batch_handler=batch_handler,
        sessionmaker=sessionmaker,
        inbox=inbox,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        max_attempts=settings.consumer_max_attempts,
        backoff_seconds=settings.consumer_backoff_seconds,
        max_poll_interval_seconds=settings.consumer_max_poll_interval_seconds,
        dead_letter_replication_factor=settings.topic_replication_factor,
        max_records=max_records,
        before_offset_commit=before_offset_commit,
    )


async def run_consumer(
    settings: ServiceSettings,
    *,
    purpose: str,
    logical_topics: list[str],
    handlers: Mapping[str, Handler],
    inbox: Table,
    batch_handler: BatchHandler | None = None,
) -> None:
    """Consumer process: one consumer group `<service>.<purpose>` applying handlers until SIGTERM."""

    def build(sessionmaker: async_sessionmaker[AsyncSession]) -> ConsumerRunner:
        return build_consumer_runner(
            settings,
            sessionmaker,
            purpose=purpose,
            logical_topics=logical_topics,
            handlers=handlers,
            inbox=inbox,
            batch_handler=batch_handler,
        )

    await serve_consumer(settings, logical_topics, build)
