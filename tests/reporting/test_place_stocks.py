"""Stocks of Kampung KB areas and kitchens as at each month (rep_place_stock): the rollup keeps them equal to
the sum of rep_fact's monthly deltas however the deltas arrive (backdated, ahead of the others, cancelling,
in batches of any size), the migration's fill gives the same rows, and a period reads the same stock from
them as from the deltas."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date

import pytest
from reporting.indicators import repository as indicators_repo
from reporting.indicators.domain import parse_period
from reporting.projection import domain
from reporting.projection import repository as projection_repo
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_sessionmaker
from tests.reporting.conftest import scratch_engine

pytestmark = pytest.mark.integration

KITCHENS = [f"k{i}" for i in range(4)]
AREAS = ["KKB-A", "KKB-B", "KKB-C"]
MONTHS = [date(2025 + (i // 12), i % 12 + 1, 1) for i in range(20)]  # 2025-01 .. 2026-08


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with scratch_engine("place_stock") as engine:
        yield engine


def deltas(seed: int) -> list[tuple[str, int]]:
    """Queued fact deltas (key, value) at kitchens and areas in a random order of months: some backdated,
    some months ahead of everything before, some cancelling earlier ones; with village-only noise."""
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    for _ in range(300):
        month = rng.choice(MONTHS)
        area = rng.choice(AREAS)
        kitchen = rng.choice(KITCHENS)
        place = domain.Place("15.71.01.1001", area, kitchen if rng.random() < 0.7 else None)
        measure = rng.choice(
            [*domain.KITCHEN_STOCKS, *domain.AREA_STOCKS, "s.reg.families", "f.dashat.expenses"]
        )
        value = rng.choice([-2, -1, 1, 1, 2, 3])
        out.append((domain.key(place, "m", month, measure), value))
        if rng.random() < 0.1:
            out.append((domain.key(place, "m", month, measure), -value))
    return out


async def roll_up(engine: AsyncEngine, queued: list[tuple[str, int]], batch: int) -> None:
    sessionmaker = create_sessionmaker(engine)
    for i in range(0, len(queued), batch):
        async with sessionmaker() as session, session.begin():
            for k, v in queued[i : i + batch]:
                await session.execute(
                    text("INSERT INTO rep_fact_pending (fact_key, value) VALUES (:k, :v)"), {"k": k, "v": v}
                )
        async with sessionmaker() as session, session.begin():
            assert await projection_repo.try_lock_rollup(session)
            await projection_repo.roll_up_pending(session, batch)


def expected_rows(queued: list[tuple[str, int]]) -> set[tuple[str, date, str, int]]:
    """Each place stock as at every month from its first delta to the latest month of any: non-zero rows."""
    per_key: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for k, v in queued:
        place, _, start, measure = domain.parse_key(k)
        if measure in domain.AREA_STOCKS and place.kampung_kb:
            per_key[(f"kkb:{place.kampung_kb}", measure)][start] += v
        if measure in domain.KITCHEN_STOCKS and place.kitchen:
            per_key[(f"dapur:{place.kitchen}", measure)][start] += v
    horizon = max(m for months in per_key.values() for m in months)
    out = set()
    for (region, measure), months in per_key.items():
        running = 0
        for m in (m for m in MONTHS if min(months) <= m <= horizon):
            running += months.get(m, 0)
            if running:
                out.add((measure, m, region, running))
    return out


async def table(engine: AsyncEngine) -> set[tuple[str, date, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT measure, month, region, value FROM rep_place_stock WHERE value <> 0")
        )
        return {(m, d, r, int(v)) for m, d, r, v in rows}


@pytest.mark.parametrize(("seed", "batch"), [(1, 1), (2, 7), (3, 1000)])
async def test_the_rollup_keeps_each_place_stock_as_at_every_month(
    engine: AsyncEngine, seed: int, batch: int
) -> None:
    queued = deltas(seed)
    await roll_up(engine, queued, batch)
    assert await table(engine) == expected_rows(queued)

    # The migration's fill from rep_fact gives the same rows.
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE rep_place_stock"))
        await conn.execute(text(projection_repo.place_stocks_from_facts()))
    assert await table(engine) == expected_rows(queued)


@pytest.mark.parametrize("period", ["2024-06", "2025-01", "2025-07", "2026-Q1", "2026-03", "2026-08", "2027"])
async def test_a_period_reads_the_stock_the_deltas_add_up_to(engine: AsyncEngine, period: str) -> None:
    """Before any delta, inside the history, at the horizon and after it (nothing changes there)."""
    await roll_up(engine, deltas(4), 50)
    p = parse_period(period)
    kitchens = [f"dapur:{k}" for k in KITCHENS]
    areas = [f"kkb:{a}" for a in AREAS]
    async with create_sessionmaker(engine)() as session:
        from_deltas = await indicators_repo.resolved_measures(session, p, regions=kitchens + areas)
        got_kitchens = await indicators_repo.place_stocks(
            session, p, domain.LEVEL_KITCHEN, domain.KITCHEN_STOCKS
        )
        got_areas = await indicators_repo.place_stocks(
            session, p, domain.LEVEL_KAMPUNG_KB, domain.AREA_STOCKS, areas[:2]
        )
    want_kitchens = {
        r: {m: v for m, v in ms.items() if m in domain.KITCHEN_STOCKS and v}
        for r, ms in from_deltas.items()
        if r in kitchens
    }
    want_areas = {
        r: {m: v for m, v in ms.items() if m in domain.AREA_STOCKS and v}
        for r, ms in from_deltas.items()
        if r in areas[:2]
    }
    assert _nonzero(got_kitchens) == _nonzero(want_kitchens)
    assert _nonzero(got_areas) == _nonzero(want_areas)


def _nonzero(values: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out = {r: {m: v for m, v in ms.items() if v} for r, ms in values.items()}
    return {r: ms for r, ms in out.items() if ms}
