"""API models of the indicator endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

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
    indicators: dict[str, Value] = Field(
        description="Indicator values by name; every ratio comes with `<ratio>_numerator` and "
        "`<ratio>_denominator` beside it."
    )
    small_numbers: list[str] = Field(
        default_factory=list,
        description="Ratios whose denominator (`<ratio>_denominator`, the n) is under 25 cases (DHS rule): "
        "too few to read as a rate.",
    )


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
    indicators: dict[str, Value] = Field(
        description="Indicator values by name; every ratio comes with `<ratio>_numerator` and "
        "`<ratio>_denominator` beside it."
    )
    small_numbers: list[str] = Field(
        default_factory=list,
        description="Ratios whose denominator (`<ratio>_denominator`, the n) is under 25 cases (DHS rule): "
        "too few to read as a rate.",
    )
    freshness: list[Freshness]


class SeriesPoint(ApiOutput):
    period: str
    value: Value
    numerator: Value = Field(default=None, description="For a ratio: its numerator in the period")
    denominator: Value = Field(default=None, description="For a ratio: its denominator (n) in the period")
    small_number: bool = Field(default=False, description="For a ratio: n under 25 cases (DHS rule)")


class SeriesRead(ApiOutput):
    indicator: str
    region: str
    name: str | None
    level: str
    suppressed: bool
    points: list[SeriesPoint]
    freshness: list[Freshness]
