"""The demo's closing summary: flows are shown for the last complete month, stocks for today."""

from __future__ import annotations

from datetime import date

import pytest
from kencana_cli.demo.story import MAIN_INDICATORS
from kencana_cli.demo.summary import FLOW_INDICATORS, last_complete_month


@pytest.mark.parametrize(
    ("today", "expected"),
    [(date(2026, 12, 1), "2026-11"), (date(2026, 12, 31), "2026-11"), (date(2027, 1, 15), "2026-12")],
)
def test_last_complete_month(today: date, expected: str) -> None:
    assert last_complete_month(today) == expected


def test_every_flow_shown_is_a_main_indicator() -> None:
    assert set(MAIN_INDICATORS) >= FLOW_INDICATORS
