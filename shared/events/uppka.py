"""Events published by the UPPKA service on `kencana.uppka` (key = group id)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.envelope import EventData
from shared.events.vocab import GroupStatus, KbMethod, UppkaCategory


class GroupFacts(EventData):
    group_id: uuid.UUID
    code: str
    village_code: str
    rw: str | None = None
    kampung_kb_id: uuid.UUID | None = None
    status: GroupStatus
    founded_on: date | None = None


class GroupRegistered(GroupFacts):
    """An UPPKA group was registered."""

    event_type: ClassVar[str] = "uppka.group.registered.v1"
    name: str


class GroupUpdated(GroupFacts):
    """An UPPKA group's facts changed."""

    event_type: ClassVar[str] = "uppka.group.updated.v1"
    name: str


class GroupStatusChanged(EventData):
    """An UPPKA group became active, inactive or dissolved."""

    event_type: ClassVar[str] = "uppka.group.status_changed.v1"
    group_id: uuid.UUID
    village_code: str
    status: GroupStatus
    previous_status: GroupStatus
    changed_on: date


class MemberJoined(EventData):
    """A registry person joined an UPPKA group."""

    event_type: ClassVar[str] = "uppka.member.joined.v1"
    subject_field: ClassVar[str | None] = "member_id"
    group_id: uuid.UUID
    member_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    category: UppkaCategory
    role: Literal["ketua", "sekretaris", "bendahara", "anggota"]
    joined_on: date
    kb_method: KbMethod | None = None
    kb_user: bool
    mkjp: bool


class MemberLeft(EventData):
    """A member left the group (by choice, death, moving away, or the group dissolving)."""

    event_type: ClassVar[str] = "uppka.member.left.v1"
    subject_field: ClassVar[str | None] = "member_id"
    group_id: uuid.UUID
    member_id: uuid.UUID
    person_id: uuid.UUID
    village_code: str
    left_on: date
    reason: Literal["resigned", "died", "moved", "group_dissolved", "other"]


class MemberKbStatusChanged(EventData):
    """A member's KB status changed, as the group sees it (from the registry's event)."""

    event_type: ClassVar[str] = "uppka.member.kb_status_changed.v1"
    subject_field: ClassVar[str | None] = "member_id"
    group_id: uuid.UUID
    member_id: uuid.UUID
    person_id: uuid.UUID
    village_code: str
    kb_method: KbMethod | None = None
    kb_user: bool
    mkjp: bool
    previous_mkjp: bool
    changed_on: date


class MemberCategoryChanged(EventData):
    """A member's category (remaja, pus, lansia, lainnya) changed with age or the registry's facts.

    The envelope time is 00:00 Asia/Jakarta of `changed_on` (or the registry event that caused it, that day):
    reporting files it under that day.
    """

    event_type: ClassVar[str] = "uppka.member.category_changed.v1"
    subject_field: ClassVar[str | None] = "member_id"
    group_id: uuid.UUID
    member_id: uuid.UUID
    person_id: uuid.UUID
    village_code: str
    category: UppkaCategory
    previous_category: UppkaCategory
    changed_on: date


class BusinessRegistered(EventData):
    """A group registered a business."""

    event_type: ClassVar[str] = "uppka.business.registered.v1"
    subject_field: ClassVar[str | None] = "business_id"
    group_id: uuid.UUID
    business_id: uuid.UUID
    village_code: str
    sector: Literal["food_processing", "crafts", "agriculture", "livestock", "trade", "services", "other"]
    supplies_dashat: bool
    started_on: date | None = None


class ReportFacts(EventData):
    group_id: uuid.UUID
    report_id: uuid.UUID
    village_code: str
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    omzet: int = Field(ge=0, description="Revenue in rupiah")
    costs: int = Field(ge=0)
    profit: int
    capital_balance: int = Field(ge=0)
    members_present: int = Field(ge=0)
    active_members: int = Field(ge=0)
    new_kb_acceptors: int = Field(ge=0)
    mkjp_switchers: int = Field(ge=0)
    submitted_on: date
    late: bool


class ReportSubmitted(ReportFacts):
    """A group's monthly report was submitted."""

    event_type: ClassVar[str] = "uppka.report.submitted.v1"
    subject_field: ClassVar[str | None] = "report_id"


class ReportAmended(ReportFacts):
    """A monthly report was corrected; the figures replace the earlier ones."""

    event_type: ClassVar[str] = "uppka.report.amended.v1"
    subject_field: ClassVar[str | None] = "report_id"
    amendment_no: int = Field(ge=1)


class DashatContributionMade(EventData):
    """A group contributed cash or goods to a DASHAT kitchen."""

    event_type: ClassVar[str] = "uppka.dashat_contribution.made.v1"
    subject_field: ClassVar[str | None] = "contribution_id"
    group_id: uuid.UUID
    contribution_id: uuid.UUID
    kitchen_id: uuid.UUID
    village_code: str
    kind: Literal["cash", "in_kind"]
    amount: int = Field(ge=0, description="Rupiah; for goods their estimated value")
    goods: str | None = None
    contributed_on: date


class ActivityHeld(EventData):
    """One of the five PEK programme activities was held."""

    event_type: ClassVar[str] = "uppka.activity.held.v1"
    subject_field: ClassVar[str | None] = "activity_id"
    group_id: uuid.UUID
    activity_id: uuid.UUID
    village_code: str
    activity_type: Literal["kie_distribution", "socialisation", "orientation", "facilitation", "pek_stunting"]
    held_on: date
    attendance: int = Field(ge=0)


class TargetSet(EventData):
    """The yearly number of UPPKA groups to reach in a province was set."""

    event_type: ClassVar[str] = "uppka.target.set.v1"
    key_field: ClassVar[str | None] = "target_id"
    target_id: uuid.UUID
    year: int
    province_code: str
    target_groups: int = Field(ge=0)
