"""A job run once a day at a programme hour (Asia/Jakarta), catching up missed days, inside a long-lived process.

Every replica runs the loop; the job itself takes an advisory lock and keeps a watermark of the last day done, so
whichever replica wins does each day once and a failed round is repeated by the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from shared.clock import PROGRAMME_ZONE, now_utc
from shared.logging import get_logger

log = get_logger(__name__)

# Looked at again at least this often, so a replica that lost the lock or a changed clock is caught up soon.
_RECHECK = timedelta(hours=1)


def due_through(now: datetime, hour: int) -> datetime:
    """The last day whose run is due at `now` (WIB): today from `hour` on, yesterday before it."""
    local = now.astimezone(PROGRAMME_ZONE)
    return local if local.hour >= hour else local - timedelta(days=1)


def seconds_to_next_run(now: datetime, hour: int) -> float:
    """Seconds until the next `hour`:00 WIB, at most an hour."""
    local = now.astimezone(PROGRAMME_ZONE)
    run = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if run <= local:
        run += timedelta(days=1)
    return min((run - local).total_seconds(), _RECHECK.total_seconds())


async def run_daily(name: str, hour: int, job: Callable[[date], Awaitable[Mapping[str, Any] | None]]) -> None:
    """Run `job(through_day)` now and after each wake-up until cancelled; log what it reports as `<name>_done`."""
    while True:
        try:
            done = await job(due_through(now_utc(), hour).date())
            if done:
                log.info(f"{name}_done", **done)
        except Exception:
            # A failed round must not stop the process it runs in; the job's watermark says where to start again.
            log.exception(f"{name}_failed")
        await asyncio.sleep(seconds_to_next_run(now_utc(), hour))
