"""API models of monthly reports and DASHAT contributions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from shared.web.schemas import ApiDate, ApiInput, ApiOutput
from uppka.common import Count, Period, Rupiah

if TYPE_CHECKING:
    from uppka.reports.service import ReportRecord


class ContributionIn(ApiInput):
    kitchen_id: uuid.UUID
    kind: Literal["cash", "in_kind"]
    amount: Rupiah = Field(description="Rupiah; for goods their estimated value")
    goods: str | None = Field(default=None, max_length=500, description="What was given, for in-kind")
    contributed_on: ApiDate | None = Field(default=None, description="Defaults to today")


class ContributionRead(ApiOutput):
    id: uuid.UUID
    group_id: uuid.UUID
    report_id: uuid.UUID | None
    kitchen_id: uuid.UUID
    kind: str
    amount: int
    goods: str | None
    contributed_on: date


class ReportFigures(ApiInput):
    omzet: Rupiah = Field(description="Revenue of the month")
    costs: Rupiah
    capital_balance: Rupiah
    members_present: Count = Field(description="Members present at the monthly meeting")
    active_members: Count
    new_kb_acceptors: Count = Field(description="New KB acceptors recruited by the group")
    mkjp_switchers: Count = Field(description="Members or families who switched to a long-term method")
    notes: str | None = Field(default=None, max_length=2000)


class ReportCreate(ReportFigures):
    period: Period
    dashat_contributions: list[ContributionIn] = Field(default_factory=list, max_length=50)


class ReportAmend(ReportFigures):
    reason: str = Field(min_length=1, max_length=1000)


class RevisionRead(ApiOutput):
    amendment_no: int
    omzet: int
    costs: int
    profit: int
    capital_balance: int
    members_present: int
    active_members: int
    new_kb_acceptors: int
    mkjp_switchers: int
    reason: str | None
    recorded_at: datetime


class ReportRead(ApiOutput):
    id: uuid.UUID
    group_id: uuid.UUID
    period: str
    omzet: int
    costs: int
    profit: int
    capital_balance: int
    members_present: int
    active_members: int
    new_kb_acceptors: int
    mkjp_switchers: int
    notes: str | None
    submitted_on: date
    late: bool
    rule_version: str
    amendment_no: int
    version: int
    dashat_contributions: list[ContributionRead] = Field(default_factory=list)
    revisions: list[RevisionRead] = Field(default_factory=list)

    @classmethod
    def from_domain(cls, record: ReportRecord) -> Self:
        return cls.from_row(
            record.report,
            dashat_contributions=[ContributionRead.model_validate(c) for c in record.dashat_contributions],
            revisions=[RevisionRead.model_validate(r) for r in record.revisions],
        )
