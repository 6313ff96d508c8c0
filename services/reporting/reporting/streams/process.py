"""The streams process of the reporting service (`python -m reporting.relay`): curator, relay, webhooks.

Three loops in one process, each with its own mechanism from shared/: the curator is a `ConsumerRunner` in
the consumer group `reporting.streams`; the relay is the outbox `Relay` (one leader per service by advisory
lock, so per-subject order holds on every consumer topic); the deliverer POSTs webhooks. Beside them, every
consumer's topic is created when missing (with the public retention), since the broker creates no topic itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from prometheus_client import start_http_server
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.config import Settings
from reporting.models import inbox, outbox
from reporting.streams import handlers
from reporting.streams import repository as repo
from reporting.streams.webhooks import Deliverer
from shared.consumer import ConsumerRunner
from shared.db import create_engine, create_sessionmaker
from shared.kafka import ensure_topics, use_security
from shared.logging import configure_logging, describe_error, get_logger
from shared.outbox import Relay
from shared.runtime import build_consumer_runner, build_relay, ensure_service_topics
from shared.topics import EVENT_TOPICS, public_topic, topic_config

log = get_logger(__name__)

PURPOSE = "streams"
# Only the registry's events are curated so far (reporting/streams/contract.py).
TOPICS: list[str] = list(EVENT_TOPICS)


def build_curator(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> ConsumerRunner:
    return build_consumer_runner(
        settings,
        sessionmaker,
        purpose=PURPOSE,
        logical_topics=TOPICS,
        handlers=handlers.handlers(settings.streams_pseudonym_key),
        batch_handler=handlers.batch_handler(settings.streams_pseudonym_key),
        inbox=inbox,
    )


async def ensure_consumer_topics(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Create the topic of every registered consumer that has none yet."""
    async with sessionmaker() as session:
        names = [c.name for c in await repo.all_consumers(session)]
    if names:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [settings.topic(public_topic(n)) for n in names],
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config=topic_config("public", replication_factor=settings.topic_replication_factor),
        )


async def _every(
    seconds: float, stopping: asyncio.Event, step: Callable[[], Awaitable[None]], what: str
) -> None:
    while not stopping.is_set():
        try:
            await step()
        except Exception as exc:
            log.warning("streams_step_failed", step=what, error=describe_error(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)


async def run(settings: Settings) -> None:
    configure_logging(f"{settings.service_name}-streams")
    use_security(settings.kafka_security())
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(settings.database_url, pool_size=4)
    sessionmaker = create_sessionmaker(engine)
    relay: Relay
    relay, relay_engine = build_relay(settings, outbox)
    curator = build_curator(settings, sessionmaker)
    deliverer = Deliverer(settings, sessionmaker)
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        relay.stop()
        curator.stop()
        deliverer.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    log.info("streams_started", group=curator.name)
    try:
        await asyncio.gather(
            _every(10.0, stopping, lambda: ensure_consumer_topics(settings, sessionmaker), "consumer topics"),
            relay.run(),
            curator.run(),
            deliverer.run(),
        )
    finally:
        stop()
        await deliverer.close()
        await engine.dispose()
        await relay_engine.dispose()  # type: ignore[attr-defined]
