"""The daily sweep scheduled inside the consumer process, and the advisory lock that lets one process sweep."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from dashat import consumer
from dashat.config import Settings
from dashat.enrolment import service as enrolment_service
from dashat.enrolment.models import Enrolment
from dashat.enrolment.repository import SWEEP_LOCK_KEY
from dashat.sweep import SweepResult, sweep_once, sweep_periodically
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.ages import add_months
from shared.clock import business_today
from shared.testing.plugin import unique, wait_for
from tests.dashat.conftest import deliver, envelope, fresh_village, person, stunting
from tests.dashat.helpers import enrolments, open_kitchen, waiting

pytestmark = pytest.mark.integration


async def _due_enrolment(sm: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A committed active enrolment whose planned end has passed (what the sweep completes)."""
    village = fresh_village()
    pid = uuid.uuid4()
    async with sm() as session:
        await open_kitchen(session, village)
        await deliver(session, envelope(stunting(pid, uuid.uuid4(), village)))
        async with session.begin():
            await session.execute(
                update(Enrolment)
                .where(Enrolment.person_id == pid)
                .values(planned_end_date=business_today() - timedelta(days=1))
            )
    return pid


async def _status(sm: async_sessionmaker[AsyncSession], pid: uuid.UUID) -> str:
    async with sm() as s:
        return (await s.execute(select(Enrolment.status).where(Enrolment.person_id == pid))).scalar_one()


@contextlib.asynccontextmanager
async def _held_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Another process sweeping: a connection holding the sweep's lock for its transaction."""
    async with engine.connect() as conn, conn.begin():
        await conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK_KEY})
        yield


async def test_lock_prevents_a_concurrent_sweep(
    sm: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    pid = await _due_enrolment(sm)
    async with _held_lock(engine):
        assert await sweep_once(sm) is None
        assert await _status(sm, pid) == "active"
    counts = await sweep_once(sm)
    assert counts is not None and counts["completed"] >= 1
    assert await _status(sm, pid) == "completed"
    # The same day again: nothing left to do for this enrolment.
    assert await sweep_once(sm) is not None
    assert await _status(sm, pid) == "completed"


async def test_periodic_sweep_waits_for_the_lock_then_sweeps(
    sm: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    pid = await _due_enrolment(sm)
    rounds: list[SweepResult] = []

    async def record(result: SweepResult) -> None:
        rounds.append(result)

    async def skipped_twice() -> bool:
        return rounds.count(None) >= 2

    async def swept() -> bool:
        return any(r is not None for r in rounds)

    async with _held_lock(engine):
        task = asyncio.create_task(sweep_periodically(sm, 0.05, after_each=record))
        try:
            await wait_for(skipped_twice, timeout=30, interval=0.05, what="two skipped rounds")
            assert await _status(sm, pid) == "active"
        except BaseException:
            task.cancel()
            raise
    try:
        await wait_for(swept, timeout=30, interval=0.05, what="a sweeping round")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await _status(sm, pid) == "completed"


@pytest.mark.kafka
async def test_consumer_process_sweeps_at_start_and_periodically(
    sm: async_sessionmaker[AsyncSession], db_url: str, kafka_bootstrap: str
) -> None:
    settings = Settings(
        database_url=db_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_suffix="." + unique(),
        sweep_interval_seconds=0.2,
    )
    first = await _due_enrolment(sm)
    process = asyncio.create_task(consumer.run(settings))
    try:

        async def completed(pid: uuid.UUID) -> bool:
            assert not process.done(), process
            return await _status(sm, pid) == "completed"

        await wait_for(lambda: completed(first), timeout=60, what="the sweep at start")
        # Made due after the first round: only a later round can complete it.
        later = await _due_enrolment(sm)
        await wait_for(lambda: completed(later), timeout=60, what="a periodic sweep")
    finally:
        process.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await process
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def test_the_sweep_ages_a_breastfeeding_mother_out_on_her_babys_six_month_day(
    session: AsyncSession,
) -> None:
    """A mother enrolled from the registry (baby in her family card) leaves when the baby turns six months."""
    village = fresh_village()
    await open_kitchen(session, village)
    fid, wife, baby = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    born = business_today() - timedelta(days=100)
    await deliver(session, envelope(person(wife, fid, village)))
    await deliver(session, envelope(person(baby, fid, village, sex="L", birth_date=born, relation="anak")))
    six_months = add_months(born, 6)
    assert await enrolment_service.sweep(session, on=six_months - timedelta(days=1)) is not None
    assert [e.status for e in await enrolments(session, wife)] == ["active"]
    assert await enrolment_service.sweep(session, on=six_months) is not None
    [e] = await enrolments(session, wife)
    assert (e.status, e.exit_reason, e.ended_on, e.exit_rule_version) == (
        "exited",
        "aged_out",
        six_months,
        "dashat-enrolment-2026.1",
    )
    # The same day again: nothing left to do.
    assert await enrolment_service.sweep(session, on=six_months) is not None
    assert [e.status for e in await enrolments(session, wife)] == ["exited"]


async def test_the_sweep_ends_the_wait_of_those_past_the_age_limit(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=0)
    fid, wife, baby, child = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    born = business_today() - timedelta(days=100)
    await deliver(session, envelope(person(wife, fid, village)))
    await deliver(session, envelope(person(baby, fid, village, sex="L", birth_date=born, relation="anak")))
    # A stunted child of 23 months waiting too: the 24-month day comes within a month.
    child_born = add_months(business_today(), -23)
    await deliver(session, envelope(stunting(child, uuid.uuid4(), village, birth_date=child_born)))
    assert [w.status for w in await waiting(session, wife)] == ["waiting"]
    assert [w.status for w in await waiting(session, child)] == ["waiting"]
    await enrolment_service.sweep(session, on=add_months(child_born, 24))
    assert [w.status for w in await waiting(session, wife)] == ["waiting"]
    assert [(w.status, w.resolution) for w in await waiting(session, child)] == [("cancelled", "aged_out")]
    await enrolment_service.sweep(session, on=add_months(born, 6))
    assert [(w.status, w.resolution) for w in await waiting(session, wife)] == [("cancelled", "aged_out")]
