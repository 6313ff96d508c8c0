"""Helpers shared by the DASHAT test modules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.kitchens.models import Kitchen
from dashat.kitchens.schemas import KitchenCreate
from dashat.kitchens.service import create
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.testing.plugin import bearer

ADMIN = Principal(sub="tester", scopes=frozenset({"dashat:read", "dashat:write"}), region="33")
RW = bearer("dashat:read dashat:write", region="33")
RO = bearer("dashat:read", region="33")
OTHER = bearer("dashat:read dashat:write", region="15.71")


async def open_kitchen(
    session: AsyncSession, village: str, *, capacity: int = 10, rws: list[str] | None = None, **kw: Any
) -> Kitchen:
    body = KitchenCreate(
        name=kw.pop("name", "Dapur Sehat"),
        village_code=village,
        rws=rws or [],
        management_model="social",
        capacity_per_day=capacity,
        opened_on=datetime.now(UTC).date(),
        **kw,
    )
    return await create(session, body, ADMIN)


async def enrolments(session: AsyncSession, person_id: uuid.UUID) -> list[Enrolment]:
    async with session.begin():
        rows = await session.execute(select(Enrolment).where(Enrolment.person_id == person_id))
        return list(rows.scalars())


async def waiting(session: AsyncSession, person_id: uuid.UUID) -> list[WaitlistEntry]:
    async with session.begin():
        rows = await session.execute(select(WaitlistEntry).where(WaitlistEntry.person_id == person_id))
        return list(rows.scalars())
