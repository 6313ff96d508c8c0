"""The recount use case: one read-only transaction over DASHAT's own tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.statistics import repository as repo
from shared.statistics import StatisticsRead, Window

RULE_VERSION = "dashat-statistics-2026.12"


async def statistics(session: AsyncSession, w: Window) -> StatisticsRead:
    """Beneficiaries, enrolments and portions served."""
    async with session.begin():
        counts = await repo.counts(session, w)
        areas = await repo.areas(session, w)
    return StatisticsRead(
        region=w.label, first=w.first, last=w.last, rule_version=RULE_VERSION, counts=counts, areas=areas
    )
