"""Reads of the region reference: each in one read transaction."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from registry.regions import repository as repo
from registry.regions.models import Region
from shared.errors import NotFound


async def list_provinces(session: AsyncSession, on: date | None) -> list[Region]:
    """Provinces in force on the date (default today)."""
    async with session.begin():
        return await repo.provinces(session, on)


async def get_region(session: AsyncSession, code: str, on: date | None) -> Region:
    """One region in force on the date, else 404."""
    async with session.begin():
        row = await repo.region(session, code, on)
    if row is None:
        raise NotFound("region not found")
    return row


async def list_children(session: AsyncSession, code: str, on: date | None) -> list[Region]:
    """Direct children of a region in force on the date; 404 when the region itself is not."""
    async with session.begin():
        if not await repo.region_exists(session, code, on):
            raise NotFound("region not found")
        return await repo.children(session, code, on)
