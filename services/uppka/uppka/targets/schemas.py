"""API models of yearly targets."""

from __future__ import annotations

import uuid

from pydantic import Field

from shared.regions import CODE_SCHEMA
from shared.web.schemas import ApiInput, ApiInt, ApiOutput


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


class TargetSummary(ApiOutput):
    year: int
    provinces: int
    target_groups: int
    achieved_groups: int
    progress_pct: float | None
