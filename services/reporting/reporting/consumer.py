"""The reporting consumer process: Kafka -> projections, each event applied once (`python -m reporting.consumer`).

Reporting publishes nothing, so it has no outbox relay.
"""

from __future__ import annotations

import asyncio
import signal

from reporting.config import Settings
from reporting.models import inbox
from reporting.projection import repository
from reporting.projection.handlers import handlers
from shared.consumer import ConsumerRunner, Handler
from shared.db import create_engine, create_sessionmaker
from shared.logging import configure_logging
from shared.runtime import ensure_service_topics

TOPICS: list[str] = ["kencana.registry", "kencana.uppka", "kencana.dashat"]
HANDLERS: dict[str, Handler] = handlers()
PURPOSE = "projector"


def consumer_name(settings: Settings) -> str:
    return f"{settings.service_name}.{PURPOSE}{settings.topic_suffix}"


def build_runner(settings: Settings, sessionmaker: object, *, name: str | None = None) -> ConsumerRunner:
    """The projector; after each poll it records the offset lag per logical topic for freshness."""
    logical = {settings.topic(t): t for t in TOPICS}
    runner: ConsumerRunner

    async def record_lag() -> None:
        consumer = runner._consumer
        if consumer is None:
            return
        lags: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = runner._processed.get(tp)
            if highwater is not None and position is not None and tp.topic in logical:
                lags[logical[tp.topic]] = lags.get(logical[tp.topic], 0) + max(highwater - position, 0)
        if lags:
            async with runner.sessionmaker() as session, session.begin():
                await repository.set_offset_lag(session, lags)

    runner = ConsumerRunner(
        name=name or consumer_name(settings),
        topics=[settings.topic(t) for t in TOPICS],
        handlers=HANDLERS,
        sessionmaker=sessionmaker,  # type: ignore[arg-type]
        inbox=inbox,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        max_attempts=settings.consumer_max_attempts,
        backoff_seconds=settings.consumer_backoff_seconds,
        before_offset_commit=record_lag,
    )
    return runner


async def run(settings: Settings) -> None:
    configure_logging(f"{settings.service_name}-consumer")
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(settings.database_url, pool_size=4)
    runner = build_runner(settings, create_sessionmaker(engine))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    try:
        await runner.run()
    finally:
        await engine.dispose()


def main() -> None:
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
