"""API models of groups and members."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from shared.regions import CODE_SCHEMA
from shared.web.schemas import ApiDate, ApiInput, ApiOutput
from uppka.common import Rupiah
from uppka.groups.domain import Category, GroupStatus, Role

if TYPE_CHECKING:
    from uppka.groups.service import GroupRecord

FundingSource = Literal["apbn", "apbd", "dana_desa", "swadaya", "csr", "kur"]
LeftReason = Literal["resigned", "died", "moved", "group_dissolved", "other"]


class FundingIn(ApiInput):
    source: FundingSource
    amount: Rupiah
    received_on: ApiDate | None = None
    note: str | None = Field(default=None, max_length=500)


class FundingRead(ApiOutput):
    id: uuid.UUID
    source: str
    amount: int
    received_on: date | None
    note: str | None


class GroupCreate(ApiInput):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._/-]+$")
    name: str = Field(min_length=1, max_length=200)
    register_number: str | None = Field(default=None, max_length=60)
    sk_number: str | None = Field(default=None, max_length=120)
    sk_date: ApiDate | None = None
    founded_on: ApiDate | None = None
    kampung_kb_id: uuid.UUID | None = None
    village_code: str = Field(
        description="Kemendagri village code, e.g. 15.71.01.1001", json_schema_extra=CODE_SCHEMA
    )
    rw: str | None = Field(default=None, max_length=10)
    pembina_name: str | None = Field(default=None, max_length=200)
    pembina_officer_id: str | None = Field(default=None, max_length=60)
    funding: list[FundingIn] = Field(default_factory=list, max_length=100)


class GroupUpdate(ApiInput):
    """Fields to change; omitted ones stay. The village is fixed: a group in another village is another group."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    register_number: str | None = Field(default=None, max_length=60)
    sk_number: str | None = Field(default=None, max_length=120)
    sk_date: ApiDate | None = None
    founded_on: ApiDate | None = None
    kampung_kb_id: uuid.UUID | None = None
    rw: str | None = Field(default=None, max_length=10)
    pembina_name: str | None = Field(default=None, max_length=200)
    pembina_officer_id: str | None = Field(default=None, max_length=60)
    status: GroupStatus | None = None
    status_changed_on: ApiDate | None = Field(
        default=None, description="When the new status took effect (today)"
    )


class OfficerRead(ApiOutput):
    role: Role
    member_id: uuid.UUID
    person_id: uuid.UUID


class StatusChangeRead(ApiOutput):
    status: GroupStatus
    previous_status: GroupStatus | None
    changed_on: date


class GroupRead(ApiOutput):
    id: uuid.UUID
    code: str
    name: str
    register_number: str | None
    sk_number: str | None
    sk_date: date | None
    founded_on: date | None
    kampung_kb_id: uuid.UUID | None
    village_code: str
    rw: str | None
    pembina_name: str | None
    pembina_officer_id: str | None
    status: GroupStatus
    status_since: date
    dissolved_on: date | None
    version: int
    officers: list[OfficerRead] = Field(default_factory=list)
    funding: list[FundingRead] = Field(default_factory=list)
    funding_total: int = 0
    status_history: list[StatusChangeRead] = Field(default_factory=list)

    @classmethod
    def from_domain(cls, record: GroupRecord) -> Self:
        return cls.from_row(
            record.group,
            officers=[
                OfficerRead(role=m.role, member_id=m.id, person_id=m.person_id) for m in record.officers
            ],
            funding=[FundingRead.model_validate(f) for f in record.funding],
            funding_total=sum(f.amount for f in record.funding),
            status_history=[StatusChangeRead.model_validate(h) for h in record.status_history],
        )


class GroupSummary(ApiOutput):
    id: uuid.UUID
    code: str
    name: str
    village_code: str
    rw: str | None
    kampung_kb_id: uuid.UUID | None
    status: GroupStatus
    version: int


class MemberCreate(ApiInput):
    person_id: uuid.UUID
    role: Role = "anggota"
    joined_on: ApiDate | None = Field(default=None, description="Defaults to today")


class MemberUpdate(ApiInput):
    role: Role


class MemberLeave(ApiInput):
    left_on: ApiDate | None = None
    reason: Literal["resigned", "other"] = "resigned"


class MemberRead(ApiOutput):
    id: uuid.UUID
    group_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    role: Role
    category: Category
    category_rule_version: str
    category_since: date | None = Field(
        default=None,
        description="The day the current category took effect (the join, a birthday, a PUS change)",
    )
    joined_on: date
    left_on: date | None
    left_reason: str | None
    kb_method: str | None
    kb_user: bool
    mkjp: bool
    kb_changed_on: date | None
    version: int
