"""Events published by the DASHAT service on `kencana.dashat` (key = kitchen id)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.envelope import EventData
from shared.events.vocab import DashatCategory, ExitReason, ExpenseCategory, FundSource, WaitlistReason


class KitchenFacts(EventData):
    kitchen_id: uuid.UUID
    name: str
    village_code: str
    rws: list[str] = Field(default_factory=list)
    kampung_kb_id: uuid.UUID | None = None
    management_model: Literal["social", "commercial", "combined"]
    capacity_per_day: int = Field(ge=0)
    operator_group_id: uuid.UUID | None = None


class KitchenOpened(KitchenFacts):
    """A DASHAT kitchen opened."""

    event_type: ClassVar[str] = "dashat.kitchen.opened.v1"
    opened_on: date


class KitchenUpdated(KitchenFacts):
    """A kitchen's facts changed (RWs served, capacity, operator)."""

    event_type: ClassVar[str] = "dashat.kitchen.updated.v1"


class KitchenClosed(EventData):
    """A kitchen closed."""

    event_type: ClassVar[str] = "dashat.kitchen.closed.v1"
    kitchen_id: uuid.UUID
    village_code: str
    closed_on: date


class BeneficiaryEnrolled(EventData):
    """A person was enrolled at a kitchen, automatically by a rule or manually."""

    event_type: ClassVar[str] = "dashat.beneficiary.enrolled.v1"
    enrolment_id: uuid.UUID
    kitchen_id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    category: DashatCategory
    source: Literal["automatic", "manual"]
    rule_id: str | None = None
    rule_version: str | None = None
    trigger_event_id: str | None = None
    triggered_at: datetime | None = Field(default=None, description="When the triggering fact was recorded")
    enrolled_at: datetime
    start_date: date
    planned_end_date: date
    priority: int
    waitlist_id: uuid.UUID | None = Field(
        default=None, description="The waiting entry it was given to, if any"
    )


class BeneficiaryWaitlisted(EventData):
    """A target could not be enrolled (no kitchen serves the place, or it is full) and waits, with the reason."""

    event_type: ClassVar[str] = "dashat.beneficiary.waitlisted.v1"
    waitlist_id: uuid.UUID
    kitchen_id: uuid.UUID | None = None
    person_id: uuid.UUID
    family_id: uuid.UUID
    village_code: str
    category: DashatCategory
    reason: WaitlistReason
    trigger_event_id: str | None = None
    waitlisted_at: datetime
    # Enough for reporting to count eligible targets per place (DASHAT coverage = enrolled / eligible).
    rw: str | None = None
    rule_id: str | None = None
    rule_version: str | None = None


class WaitlistResolved(EventData):
    """A waiting target left the waitlist: enrolled (a place was found) or cancelled (no longer a target, or
    no longer waiting: died, moved, recovered, merged...). With `beneficiary.waitlisted`, the targets waiting
    at any time can be counted (DASHAT coverage = enrolled / eligible targets)."""

    event_type: ClassVar[str] = "dashat.beneficiary.waitlist_resolved.v1"
    waitlist_id: uuid.UUID
    kitchen_id: uuid.UUID | None = None
    person_id: uuid.UUID
    village_code: str
    category: DashatCategory
    status: Literal["enrolled", "cancelled"]
    resolution: str = Field(description="enrolled, enrolled_manually, or why it was cancelled")
    enrolment_id: uuid.UUID | None = None
    resolved_at: datetime


class BeneficiaryExited(EventData):
    """An enrolment ended (completed, recovered, aged out, moved, died, refused, retracted)."""

    event_type: ClassVar[str] = "dashat.beneficiary.exited.v1"
    enrolment_id: uuid.UUID
    kitchen_id: uuid.UUID
    person_id: uuid.UUID
    village_code: str
    category: DashatCategory
    reason: ExitReason
    exited_on: date
    causing_event_id: str | None = None
    rule_version: str | None = Field(
        default=None,
        description="The DASHAT rule version that decided a rule-driven exit (recovered, aged_out, completed)",
    )


class MealsServed(EventData):
    """A batch of meals was recorded for a kitchen, date and slot."""

    event_type: ClassVar[str] = "dashat.meals.served.v1"
    subject_field: ClassVar[str | None] = "batch_id"
    kitchen_id: uuid.UUID
    batch_id: uuid.UUID
    village_code: str
    served_on: date
    slot: Literal["breakfast", "lunch", "dinner", "snack"]
    menu_id: uuid.UUID | None = None
    portions_cooked: int = Field(ge=0)
    portions_delivered: int = Field(ge=0)
    portions_consumed: int = Field(ge=0)
    beneficiaries_served: int = Field(ge=0)
    by_category: dict[str, int] = Field(default_factory=dict)


class FundsReceived(EventData):
    """Money (or goods valued in rupiah) came into a kitchen's ledger."""

    event_type: ClassVar[str] = "dashat.funds.received.v1"
    subject_field: ClassVar[str | None] = "entry_id"
    kitchen_id: uuid.UUID
    entry_id: uuid.UUID
    village_code: str
    source: FundSource
    amount: int = Field(ge=0, description="Rupiah")
    received_on: date
    contribution_id: uuid.UUID | None = None


class ExpenseRecorded(EventData):
    """A kitchen spent money."""

    event_type: ClassVar[str] = "dashat.expense.recorded.v1"
    subject_field: ClassVar[str | None] = "entry_id"
    kitchen_id: uuid.UUID
    entry_id: uuid.UUID
    village_code: str
    category: ExpenseCategory
    amount: int = Field(ge=0, description="Rupiah")
    spent_on: date


class ChildOutcomeFlagged(EventData):
    """An enrolled child showed no HAZ improvement after the planned duration."""

    event_type: ClassVar[str] = "dashat.child.no_improvement_flagged.v1"
    enrolment_id: uuid.UUID
    kitchen_id: uuid.UUID
    person_id: uuid.UUID
    village_code: str
    haz_at_enrolment: float
    haz_latest: float
    flagged_on: date
