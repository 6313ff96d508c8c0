"""The recount use case: one read-only transaction over the registry's own tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from registry.statistics import repository as repo
from shared.ages import BADUTA_MONTHS, BALITA_MONTHS
from shared.statistics import Recount, Window

RULE_VERSION = "registry-statistics-2026.12"


async def statistics(session: AsyncSession, w: Window) -> Recount:
    """PUS couples by KB participation, KRS families, baduta and balita measured and stunted."""
    async with session.begin():
        # One snapshot for every count, so that they add up even while writes go on.
        counts = await repo.couples(session, w)
        counts["baduta_measured"], counts["baduta_stunted"] = await repo.measured(session, w, BADUTA_MONTHS)
        counts["balita_measured"], counts["balita_stunted"] = await repo.measured(session, w, BALITA_MONTHS)
        areas = await repo.areas(session, w)
    return Recount(w, RULE_VERSION, counts, areas)
