"""The demo's closing summary: flows are shown for the last complete month, stocks for today."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from kencana_cli.demo.events import catalogue
from kencana_cli.demo.story import MAIN_INDICATORS
from kencana_cli.demo.summary import FLOW_INDICATORS, last_complete_month, print_event_counts
from rich.console import Console


@pytest.mark.parametrize(
    ("today", "expected"),
    [(date(2026, 12, 1), "2026-11"), (date(2026, 12, 31), "2026-11"), (date(2027, 1, 15), "2026-12")],
)
def test_last_complete_month(today: date, expected: str) -> None:
    assert last_complete_month(today) == expected


def test_every_flow_shown_is_a_main_indicator() -> None:
    assert set(MAIN_INDICATORS) >= FLOW_INDICATORS


def _printed(seen: Counter[str]) -> str:
    console = Console(record=True, width=200)
    print_event_counts(console, seen)
    return console.export_text()


def test_event_counts_name_every_catalogue_type_and_say_when_all_were_seen() -> None:
    types = catalogue()
    assert len(types) == len(set(types)) >= 42 and "dashat.kitchen.closed.v1" in types
    everything = Counter({t: 2 for t in types})
    text = _printed(everything)
    assert all(t in text for t in types)
    assert f"all {len(types)} event types seen ({2 * len(types):,} events)" in text


def test_event_counts_list_the_types_never_seen() -> None:
    types = catalogue()
    seen = Counter({t: 1 for t in types if t not in ("registry.person.merged.v1", "uppka.target.set.v1")})
    text = _printed(seen)
    assert "all " not in text
    assert (
        f"2 of the {len(types)} event types never appeared: registry.person.merged.v1, uppka.target.set.v1"
        in text
    )
