"""API models of kitchens."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import Field

from shared.regions import CODE_SCHEMA
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

KitchenStatus = Literal["active", "closed"]

ManagementModel = Literal["social", "commercial", "combined"]


class KitchenCreate(ApiInput):
    name: str = Field(min_length=1, max_length=200)
    kampung_kb_id: uuid.UUID | None = None
    village_code: str = Field(
        description="Kemendagri village code, e.g. 15.71.01.1001", json_schema_extra=CODE_SCHEMA
    )
    rws: list[str] = Field(default_factory=list, description="RWs served; empty = the whole village")
    management_model: ManagementModel
    operator_group_id: uuid.UUID | None = Field(default=None, description="UPPKA group operating the kitchen")
    capacity_per_day: int = Field(ge=0, le=100_000, description="Portions per day")
    opened_on: ApiDate


class KitchenUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kampung_kb_id: uuid.UUID | None = None
    rws: list[str] | None = None
    management_model: ManagementModel | None = None
    operator_group_id: uuid.UUID | None = None
    capacity_per_day: int | None = Field(default=None, ge=0, le=100_000)


class KitchenClose(ApiInput):
    closed_on: ApiDate


class KitchenRead(ApiOutput):
    id: uuid.UUID
    name: str
    kampung_kb_id: uuid.UUID | None
    village_code: str
    rws: list[str]
    management_model: str
    operator_group_id: uuid.UUID | None
    capacity_per_day: int
    opened_on: date
    closed_on: date | None
    status: KitchenStatus
    version: int
