"""API models of the indicator endpoints."""

from __future__ import annotations

from datetime import datetime

from shared.web.schemas import ApiOutput

Value = int | float | None


class Freshness(ApiOutput):
    topic: str
    last_event_time: datetime | None
    last_applied_at: datetime | None
    lag_seconds: float | None
    offset_lag: int | None
    events_applied: int
    # Facts are rolled up apart from the projector: when set, events applied since then (of any topic) may
    # not be in the figures yet.
    facts_pending_since: datetime | None = None


class IndicatorRow(ApiOutput):
    region: str
    name: str | None
    level: str
    indicators: dict[str, Value]


class BreakdownRead(ApiOutput):
    region: str
    name: str | None
    level: str
    breakdown_level: str
    period: str
    suppressed: bool
    rows: list[IndicatorRow]
    freshness: list[Freshness]


class SummaryRead(ApiOutput):
    region: str
    name: str | None
    level: str
    period: str
    suppressed: bool
    indicators: dict[str, Value]
    freshness: list[Freshness]


class SeriesPoint(ApiOutput):
    period: str
    value: Value


class SeriesRead(ApiOutput):
    indicator: str
    region: str
    name: str | None
    level: str
    suppressed: bool
    points: list[SeriesPoint]
    freshness: list[Freshness]
