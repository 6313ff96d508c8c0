"""Queries of kitchens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment
from dashat.kitchens.models import Kitchen
from shared.regions.scope import within
from shared.web.pagination import PageParams, keyset_page


async def get(session: AsyncSession, kitchen_id: uuid.UUID, *, lock: bool = False) -> Kitchen | None:
    stmt = select(Kitchen).where(Kitchen.id == kitchen_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_in_village(session: AsyncSession, village_code: str) -> list[Kitchen]:
    """Active kitchens of a village, locked: placing people must not overfill a kitchen concurrently."""
    stmt = (
        select(Kitchen)
        .where(Kitchen.village_code == village_code, Kitchen.status == "active")
        .order_by(Kitchen.id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def active_enrolment_counts(
    session: AsyncSession, kitchen_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not kitchen_ids:
        return {}
    rows = await session.execute(
        select(Enrolment.kitchen_id, func.count())
        .where(Enrolment.kitchen_id.in_(kitchen_ids), Enrolment.status == "active")
        .group_by(Enrolment.kitchen_id)
    )
    counts = {k: 0 for k in kitchen_ids}
    counts.update({r[0]: int(r[1]) for r in rows})
    return counts


async def page(
    session: AsyncSession,
    params: PageParams,
    *,
    regions: list[str | None],
    village_code: str | None = None,
    rw: str | None = None,
    status: str | None = None,
) -> tuple[list[Kitchen], str | None]:
    """One page of the kitchens inside every region given, and the next cursor."""
    stmt = select(Kitchen).where(*(within(Kitchen.village_code, r) for r in regions))
    if village_code:
        stmt = stmt.where(Kitchen.village_code == village_code)
    if rw:
        # kitchens.domain.serves in SQL: no RW listed = the whole village (RWs are stored normalised).
        stmt = stmt.where(or_(func.cardinality(Kitchen.rws) == 0, literal(rw) == func.any(Kitchen.rws)))
    if status:
        stmt = stmt.where(Kitchen.status == status)
    return await keyset_page(session, stmt, params, Kitchen.id)


async def active_in_villages(session: AsyncSession, village_codes: Sequence[str]) -> list[Kitchen]:
    """`active_in_village` for several villages at once (locked, in id order)."""
    if not village_codes:
        return []
    stmt = (
        select(Kitchen)
        .where(Kitchen.village_code.in_(village_codes), Kitchen.status == "active")
        .order_by(Kitchen.id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())
