"""Every query of the Kemendagri region reference."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.regions.models import Region
from shared.clock import business_today


def _in_force(on: date | None) -> ColumnElement[bool]:
    d = on or business_today()
    return and_(Region.valid_from <= d, or_(Region.valid_to.is_(None), Region.valid_to > d))


async def provinces(session: AsyncSession, on: date | None) -> list[Region]:
    """Provinces in force on the date, by code."""
    rows = await session.scalars(
        select(Region).where(Region.level == "province", _in_force(on)).order_by(Region.code)
    )
    return list(rows)


async def region(session: AsyncSession, code: str, on: date | None) -> Region | None:
    """The region with this (normalised) code in force on the date."""
    return await session.scalar(select(Region).where(Region.code == code, _in_force(on)))


async def region_exists(session: AsyncSession, code: str, on: date | None) -> bool:
    """Whether a region with this (normalised) code is in force on the date."""
    found = await session.scalar(select(Region.code).where(Region.code == code, _in_force(on)))
    return found is not None


async def children(session: AsyncSession, code: str, on: date | None) -> list[Region]:
    """Direct children of the region in force on the date, by code."""
    rows = await session.scalars(
        select(Region).where(Region.parent_code == code, _in_force(on)).order_by(Region.code)
    )
    return list(rows)
