"""The projector's offset lag in `projection_status`: written when it is news, not after every poll."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from reporting.config import Settings
from reporting.consumer import build_runner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.consumer import ConsumerRunner
from shared.db import create_engine, create_sessionmaker
from shared.testing.plugin import migrated_database, unique

TOPIC = "kencana.registry"


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await migrated_database("reporting"), pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM projection_status"))
    yield engine
    await engine.dispose()


def _runner(engine: AsyncEngine) -> tuple[ConsumerRunner, Settings]:
    """The projector's runner, never started: its hook is called with the lag set by the test."""
    settings = Settings(database_url="postgresql+asyncpg://unused/unused", topic_suffix="." + unique())
    return build_runner(settings, create_sessionmaker(engine)), settings


async def _stored(engine: AsyncEngine) -> dict[int, int | None]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT partition, offset_lag FROM projection_status WHERE topic = :t"), {"t": TOPIC}
        )
        return {p: lag for p, lag in rows}


async def test_a_lag_still_shrinking_waits_and_caught_up_is_written_at_once(engine: AsyncEngine) -> None:
    runner, settings = _runner(engine)
    tp = TopicPartition(settings.topic(TOPIC), 0)
    hook = runner.before_offset_commit
    assert hook is not None
    lag = {tp: 500}
    runner.lag = lambda: lag  # type: ignore[method-assign]

    await hook()
    assert await _stored(engine) == {0: 500}, "the first lag is written"

    lag = {tp: 120}
    await hook()
    assert await _stored(engine) == {0: 500}, (
        "a lag still shrinking within the second waits (no write per poll)"
    )

    lag = {tp: 0}
    await hook()
    assert await _stored(engine) == {0: 0}, "caught up is written at once"

    # The partition went to another instance, which wrote its own lag, and came back: ours is written again.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE projection_status SET offset_lag = 42 WHERE topic = :t"), {"t": TOPIC}
        )
    runner.assignments += 1
    await hook()
    assert await _stored(engine) == {0: 0}
