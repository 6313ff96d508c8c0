"""The recount use case: one read-only transaction over DASHAT's own tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.statistics import repository as repo
from shared.statistics import Recount, Window

RULE_VERSION = "dashat-statistics-2026.12"


async def statistics(session: AsyncSession, w: Window) -> Recount:
    """Beneficiaries, enrolments and portions served."""
    async with session.begin():
        counts = await repo.counts(session, w)
        areas = await repo.areas(session, w)
    return Recount(w, RULE_VERSION, counts, areas)
