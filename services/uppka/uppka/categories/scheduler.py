"""Runs the category sweep once a day inside every uppka consumer process (the advisory lock picks one)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.daily import run_daily
from uppka.categories.service import sweep


async def sweep_daily(sessionmaker: async_sessionmaker[AsyncSession], hour: int) -> None:
    """Sweep every day that is due (catching up missed ones) now and after each wake-up, until cancelled."""

    async def job(through: date) -> dict[str, Any] | None:
        async with sessionmaker() as session:
            result = await sweep(session, through)
        if not result.days:
            return None
        return {
            "through": result.through.isoformat(),
            "days": len(result.days),
            "members_changed": result.members_changed,
        }

    await run_daily("category_sweep", hour, job)
