"""Runs the age sweep once a day inside the registry API process (every replica tries; the lock picks one)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.ageing.service import sweep
from shared.daily import run_daily


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
            "persons_updated": result.persons_updated,
            "families_changed": result.families_changed,
        }

    await run_daily("age_sweep", hour, job)
