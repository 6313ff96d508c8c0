"""The daily sweep: outcome flags, ageing out, planned ends, waitlist refills.

It runs inside every consumer process (`sweep_periodically`, at start and then every
`DASHAT_SWEEP_INTERVAL_SECONDS`) and can also be run on its own from a scheduler (`python -m dashat.sweep`).
An advisory lock lets only one of them sweep at a time; the others skip that round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashat.config import Settings
from dashat.enrolment.service import sweep
from shared.db import create_engine, create_sessionmaker
from shared.logging import configure_logging, get_logger

log = get_logger(__name__)

SweepResult = dict[str, int] | None


async def sweep_once(sessionmaker: async_sessionmaker[AsyncSession]) -> SweepResult:
    """One sweep in its own session; None when another process held the lock."""
    async with sessionmaker() as session:
        counts = await sweep(session)
    if counts is None:
        log.info("sweep_skipped", reason="another process is sweeping")
    else:
        log.info("sweep_done", **counts)
    return counts


async def sweep_periodically(
    sessionmaker: async_sessionmaker[AsyncSession],
    interval_seconds: float,
    *,
    after_each: Callable[[SweepResult], Awaitable[None]] | None = None,
) -> None:
    """Sweep now and then every interval until cancelled; a failed round is logged and retried next time."""
    while True:
        try:
            result = await sweep_once(sessionmaker)
        except Exception:
            # A broken round must not stop the consumer it runs in; the next round starts from the database again.
            log.exception("sweep_failed")
        else:
            if after_each is not None:
                await after_each(result)
        await asyncio.sleep(interval_seconds)


async def run(settings: Settings) -> SweepResult:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        return await sweep_once(create_sessionmaker(engine))
    finally:
        await engine.dispose()


def main() -> None:
    configure_logging("dashat-sweep")
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
