"""API models of yearly targets."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

from pydantic import Field

from shared.regions import CODE_SCHEMA
from shared.web.schemas import ApiInput, ApiInt, ApiOutput

if TYPE_CHECKING:
    from uppka.targets.service import TargetProgress, TargetTotals


class TargetCreate(ApiInput):
    year: ApiInt = Field(ge=2000, le=2100)
    province_code: str = Field(description="Kemendagri province code, e.g. 15", json_schema_extra=CODE_SCHEMA)
    target_groups: ApiInt = Field(ge=0, le=1_000_000)


class TargetUpdate(ApiInput):
    target_groups: ApiInt = Field(ge=0, le=1_000_000)


class TargetRead(ApiOutput):
    id: uuid.UUID
    year: int
    province_code: str
    target_groups: int
    version: int
    achieved_groups: int = 0
    progress_pct: float | None = None
    reached: bool = False

    @classmethod
    def from_domain(cls, t: TargetProgress) -> Self:
        p = t.progress
        return cls.from_row(
            t.target, achieved_groups=p.achieved_groups, progress_pct=p.progress_pct, reached=p.reached
        )


class TargetSummary(ApiOutput):
    year: int
    provinces: int
    target_groups: int
    achieved_groups: int
    progress_pct: float | None

    @classmethod
    def from_domain(cls, totals: TargetTotals) -> Self:
        p = totals.progress
        return cls(
            year=totals.year,
            provinces=totals.provinces,
            target_groups=p.target_groups,
            achieved_groups=p.achieved_groups,
            progress_pct=p.progress_pct,
        )
