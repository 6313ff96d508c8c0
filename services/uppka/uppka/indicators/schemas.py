"""API models of the derived indicators (the figures of `indicators/domain.py`, field for field)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from shared.web.schemas import ApiOutput

if TYPE_CHECKING:
    from uppka.indicators.service import AreaReporting, GroupIndicators, GroupTrend


class GroupIndicatorsRead(ApiOutput):
    group_id: uuid.UUID
    period: str = Field(description="YYYY-MM")
    members: int
    members_by_category: dict[str, int]
    kb_users: int
    kb_by_method: dict[str, int]
    mkjp_users: int
    mkjp_share: float | None
    kb_participation: float | None
    attendance_rate: float | None
    reporting_status: Literal["reported", "late", "missing", "not_due"] = Field(
        description="The month's report: reported, late, missing, or not_due (absent, deadline still ahead)"
    )
    omzet: int | None
    profit: int | None
    rule_version: str

    @classmethod
    def from_domain(cls, found: GroupIndicators) -> Self:
        return cls.model_validate({"group_id": found.group_id, **asdict(found.month)})


class TrendPointRead(ApiOutput):
    period: str
    omzet: int | None
    profit: int | None
    omzet_change: int | None
    profit_change: int | None


class GroupTrendRead(ApiOutput):
    group_id: uuid.UUID
    points: list[TrendPointRead]
    direction: Literal["up", "down", "flat", "unknown"] = Field(
        description="Last reported month's omzet against the first reported one's"
    )
    total_omzet: int
    total_profit: int

    @classmethod
    def from_domain(cls, found: GroupTrend) -> Self:
        return cls.model_validate({"group_id": found.group_id, **asdict(found.trend)})


class CoverageRead(ApiOutput):
    existing: int
    reporting: int
    due: int
    on_time: int
    late: int
    missing: int
    not_due: int
    reporting_rate: float | None
    completeness: float | None
    by_area: dict[str, CoverageRead] = Field(description="The same figures per area one level down")


class ReportingRateRead(ApiOutput):
    # The area's own figures after its name, period and rule (the order the answer has always had).
    region: str | None = Field(description="The area counted; null for the nation")
    period: str
    rule_version: str
    existing: int
    reporting: int
    due: int
    on_time: int
    late: int
    missing: int
    not_due: int
    reporting_rate: float | None
    completeness: float | None
    by_area: dict[str, CoverageRead] = Field(description="The same figures per area one level down")

    @classmethod
    def from_domain(cls, found: AreaReporting) -> Self:
        return cls.model_validate(
            {
                "region": found.region,
                "period": found.period,
                "rule_version": found.rule_version,
                **asdict(found.coverage),
            }
        )
