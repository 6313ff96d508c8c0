"""The recount use case: one read-only transaction over uppka's own tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.statistics import Recount, Window
from uppka.statistics import repository as repo

RULE_VERSION = "uppka-statistics-2026.12"


async def statistics(session: AsyncSession, w: Window) -> Recount:
    """Groups existing, members and their KB participation as at the window's end."""
    async with session.begin():
        counts = await repo.counts(session, w)
        areas = await repo.areas(session, w)
    return Recount(w, RULE_VERSION, counts, areas)
