"""Runs the category sweep once a day inside every uppka consumer process (the advisory lock picks one)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.logging import get_logger
from uppka.categories.service import JAKARTA, sweep

log = get_logger(__name__)

# Looked at again at least this often, so a replica that lost the lock or a changed clock is caught up soon.
_RECHECK = timedelta(hours=1)


def due_through(now: datetime, hour: int) -> datetime:
    """The last day whose sweep is due at `now` (WIB): today from `hour` on, yesterday before it."""
    local = now.astimezone(JAKARTA)
    return local if local.hour >= hour else local - timedelta(days=1)


def seconds_to_next_run(now: datetime, hour: int) -> float:
    """Seconds until the next `hour`:00 WIB, at most an hour."""
    local = now.astimezone(JAKARTA)
    run = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if run <= local:
        run += timedelta(days=1)
    return min((run - local).total_seconds(), _RECHECK.total_seconds())


async def sweep_daily(sessionmaker: async_sessionmaker[AsyncSession], hour: int) -> None:
    """Sweep every day that is due (catching up missed ones) now and after each wake-up, until cancelled."""
    while True:
        try:
            async with sessionmaker() as session:
                result = await sweep(session, due_through(datetime.now(JAKARTA), hour).date())
            if result.days:
                log.info(
                    "category_sweep_done",
                    through=result.through.isoformat(),
                    days=len(result.days),
                    members_changed=result.members_changed,
                )
        except Exception:
            # A failed round must not stop the consumer it runs in; the watermark says where the next one starts.
            log.exception("category_sweep_failed")
        await asyncio.sleep(seconds_to_next_run(datetime.now(JAKARTA), hour))
