"""Every query on businesses, products and capital sources."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.web.pagination import PageParams, keyset_page
from uppka.businesses.models import Business, CapitalSource, Product
from uppka.common import one_or_none


async def get(
    session: AsyncSession, group_id: uuid.UUID, business_id: uuid.UUID, *, lock: bool = False
) -> Business | None:
    return await one_or_none(
        session, select(Business).where(Business.id == business_id, Business.group_id == group_id), lock=lock
    )


async def products_of(session: AsyncSession, business_ids: list[uuid.UUID]) -> list[Product]:
    stmt = (
        select(Product).where(Product.business_id.in_(business_ids)).order_by(Product.created_at, Product.id)
    )
    return list((await session.execute(stmt)).scalars())


async def capital_of(session: AsyncSession, business_ids: list[uuid.UUID]) -> list[CapitalSource]:
    stmt = (
        select(CapitalSource)
        .where(CapitalSource.business_id.in_(business_ids))
        .order_by(CapitalSource.created_at, CapitalSource.id)
    )
    return list((await session.execute(stmt)).scalars())


async def list_for_group(
    session: AsyncSession, group_id: uuid.UUID, params: PageParams, *, supplies_dashat: bool | None
) -> tuple[list[Business], str | None]:
    stmt = select(Business).where(Business.group_id == group_id)
    if supplies_dashat is not None:
        stmt = stmt.where(Business.supplies_dashat.is_(supplies_dashat))
    return await keyset_page(session, stmt, params, Business.created_at, Business.id)
