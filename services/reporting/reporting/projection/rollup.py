"""The fact rollup: adds the deltas the projector queued to the village-to-national rows, apart from it.

The projector appends each transaction's fact deltas to rep_fact_pending, keyed by the places its events
name; adding one delta to its village, district, regency, province and national rows (and its Kampung KB
and kitchen rows) was most of a poll's database time, and rows shared by every partition. The rollup does
it for many polls at once (a national row is written once per rollup, not once per poll) and, holding an
advisory lock, is the only writer of rep_fact: breakdowns read one row per region, however many projector
processes run. Until it has run, the freshness block says since when facts are pending.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.projection import repository as repo
from shared.logging import get_logger

log = get_logger(__name__)

# Deltas per rollup transaction: bounds its memory and how long it holds the national rows.
BATCH = 20_000


async def roll_up_once(sessionmaker: async_sessionmaker[AsyncSession]) -> int | None:
    """Fold up to BATCH queued deltas in one transaction; None when another process holds the rollup."""
    async with sessionmaker() as session, session.begin():
        if not await repo.try_lock_rollup(session):
            return None
        return await repo.roll_up_pending(session, BATCH)


async def settle(sessionmaker: async_sessionmaker[AsyncSession], poll_seconds: float = 0.05) -> int:
    """Roll up every delta committed so far; returns how many this call folded.

    What tests, the rebuild and the benches call before they read facts: afterwards rep_fact holds every
    projection transaction that committed before the call. While another process holds the rollup it polls
    rather than waits on the lock (a rollup that ran meanwhile committed what it took before this call's
    own rollup begins), so no backend ever queues on it.
    """
    total = 0
    while True:
        taken = await roll_up_once(sessionmaker)
        if taken is None:
            await asyncio.sleep(poll_seconds)
            continue
        total += taken
        if taken < BATCH:
            return total


async def run_rollups(
    sessionmaker: async_sessionmaker[AsyncSession], stopping: asyncio.Event, interval: float
) -> None:
    """The projector process's rollup loop: at most `interval` seconds between rollups, until stopped.

    Every projector process runs one; whichever takes the lock rolls up, the others skip that round.
    """
    while not stopping.is_set():
        try:
            taken = await roll_up_once(sessionmaker)
        except Exception:
            # The deltas stay queued (the transaction rolled back); the next round takes them again.
            log.exception("rollup_failed")
            taken = None
        if taken is not None and taken >= BATCH:
            continue  # behind: keep going without a pause
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
