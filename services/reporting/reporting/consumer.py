"""The reporting consumer process: Kafka -> projections, each event applied once (`python -m reporting.consumer`).

Its relay (`python -m reporting.relay`) publishes only the ministries' curated streams (reporting/streams).
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.config import Settings
from reporting.models import inbox
from reporting.projection import repository, rollup
from reporting.projection.handlers import apply_batch, handlers
from shared.consumer import ConsumerRunner
from shared.kafka_security import CONSUMES
from shared.runtime import build_consumer_runner, consumer_group, serve_consumer

# Written down once beside the ACLs that let this service read them (shared/kafka_security.py).
TOPICS: list[str] = list(CONSUMES["reporting"])
PURPOSE = "projector"
# A lag still shrinking is written at most this often; a lag of 0 (caught up) at once: not a transaction of its
# own after every poll, which at a trickle of events (one per poll) doubled the transactions.
LAG_RECORD_SECONDS = 1.0


def consumer_name(settings: Settings) -> str:
    return consumer_group(settings, PURPOSE)


def build_runner(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, name: str | None = None
) -> ConsumerRunner:
    """The projector; after each poll it records the offset lag per logical topic for freshness."""
    logical = {settings.topic(t): t for t in TOPICS}
    runner: ConsumerRunner
    recorded: dict[tuple[str, int], int] = {}
    recorded_at, recorded_assignment = 0.0, -1

    async def record_lag() -> None:
        nonlocal recorded, recorded_at, recorded_assignment
        if runner.assignments != recorded_assignment:
            # Partitions came (back) from another instance, which wrote their lag meanwhile: write ours.
            recorded, recorded_assignment = {}, runner.assignments
        lags = {
            (logical[tp.topic], tp.partition): behind
            for tp, behind in runner.lag().items()
            if tp.topic in logical
        }
        due = time.monotonic() - recorded_at >= LAG_RECORD_SECONDS or not any(lags.values())
        if lags and lags != recorded and due:
            async with runner.sessionmaker() as session, session.begin():
                await repository.set_offset_lag(session, lags)
            recorded, recorded_at = lags, time.monotonic()

    runner = build_consumer_runner(
        settings,
        sessionmaker,
        purpose=PURPOSE,
        name=name,
        logical_topics=TOPICS,
        handlers=handlers(settings.topic_partitions),
        inbox=inbox,
        before_offset_commit=record_lag,
        # A poll is folded set-based in its transaction (and one event at a time when a poll fails);
        # `handlers`, the same fold over one event, also say which event types the projector takes.
        batch_handler=apply_batch,
        # Larger polls share more district-to-national fact rows and round trips between their events.
        max_records=1000,
    )
    return runner


async def run(settings: Settings) -> None:
    """The projector and, beside it in the same process, the loop that rolls its fact deltas up."""
    stopping = asyncio.Event()
    rollups: list[asyncio.Task[None]] = []

    def build(sessionmaker: async_sessionmaker[AsyncSession]) -> ConsumerRunner:
        interval = settings.fact_rollup_interval_seconds
        rollups.append(asyncio.create_task(rollup.run_rollups(sessionmaker, stopping, interval)))
        return build_runner(settings, sessionmaker)

    try:
        await serve_consumer(settings, TOPICS, build)
    finally:
        stopping.set()
        await asyncio.gather(*rollups)


def main() -> None:
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
