"""Period-resolved measures read only the history a figure needs, and still give every figure of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from reporting.indicators import repository as repo
from reporting.indicators.domain import parse_period
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine, create_sessionmaker
from shared.testing.plugin import migrated_database

REGION = "99.01"  # a code no other test writes
FACTS = [
    # (grain, first day, measure, value): stocks as monthly deltas since 2023, flows and distinct counts by month
    ("m", date(2023, 3, 1), "s.reg.families", 10),
    ("m", date(2025, 11, 1), "s.reg.families", 5),
    ("m", date(2026, 5, 1), "s.reg.families", -2),
    ("m", date(2026, 8, 1), "s.reg.families", 7),
    ("m", date(2024, 6, 1), "f.dashat.expenses", 1000),
    ("m", date(2025, 12, 1), "f.dashat.expenses", 300),
    ("m", date(2026, 2, 1), "f.dashat.expenses", 40),
    ("m", date(2026, 6, 1), "f.dashat.expenses", 6),
    ("m", date(2025, 6, 1), "d.uppka.groups_reporting", 9),
    ("m", date(2026, 6, 1), "d.uppka.groups_reporting", 4),
    ("q", date(2026, 4, 1), "d.uppka.groups_reporting", 11),
    ("y", date(2025, 1, 1), "d.uppka.target_groups", 3),
    ("y", date(2026, 1, 1), "d.uppka.target_groups", 8),
]


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await migrated_database("reporting"), pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM rep_fact WHERE region = :r"), {"r": REGION})
        for grain, day, measure, value in FACTS:
            await conn.execute(
                text(
                    "INSERT INTO rep_fact (region, grain, period_start, measure, level, value, slot)"
                    " VALUES (:r, :g, :d, :m, 2, :v, 0)"
                ),
                {"r": REGION, "g": grain, "d": day, "m": measure, "v": value},
            )
    yield engine
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM rep_fact WHERE region = :r"), {"r": REGION})
    await engine.dispose()


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        # a stock counts every delta up to the period's end, from any year; a flow only inside the period
        (
            "2026-06",
            {
                "s.reg.families": 13,
                "f.dashat.expenses": 6,
                "d.uppka.groups_reporting": 4,
                "d.uppka.target_groups": 8,
            },
        ),
        (
            "2026-Q2",
            {
                "s.reg.families": 13,
                "f.dashat.expenses": 6,
                "d.uppka.groups_reporting": 11,
                "d.uppka.target_groups": 8,
            },
        ),
        ("2026", {"s.reg.families": 20, "f.dashat.expenses": 46, "d.uppka.target_groups": 8}),
        ("2025-12", {"s.reg.families": 15, "f.dashat.expenses": 300, "d.uppka.target_groups": 3}),
        ("2023", {"s.reg.families": 10}),
    ],
)
async def test_figures_as_at_a_period_from_the_history_they_need(
    engine: AsyncEngine, period: str, expected: dict[str, int]
) -> None:
    async with create_sessionmaker(engine)() as session:
        resolved = await repo.resolved_measures(session, parse_period(period), regions=[REGION])
    assert resolved.get(REGION, {}) == expected
