"""API models of enrolments and the waitlist."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field

from shared.events.vocab import DashatCategory
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from dashat.enrolment.models import Enrolment
    from dashat.enrolment.service import EnrolmentOutcome

EnrolmentStatus = Literal["active", "completed", "exited", "retracted"]
WaitlistStatus = Literal["waiting", "enrolled", "cancelled"]


class EnrolmentCreate(ApiInput):
    """A manual enrolment by a field officer."""

    person_id: uuid.UUID
    kitchen_id: uuid.UUID
    category: DashatCategory
    start_date: ApiDate | None = None
    note: str | None = Field(default=None, max_length=500)


class EnrolmentExit(ApiInput):
    reason: str = Field(pattern="^(refused|moved|died|completed)$", description="Why the enrolment ends")
    exited_on: ApiDate | None = None


class Explanation(ApiOutput):
    """Why this person was enrolled: the rule, its version, the triggering event and the facts seen."""

    source: str
    rule_id: str | None
    rule_version: str | None
    trigger_event_id: str | None
    facts: dict[str, Any]
    enrolled_by: str | None
    waitlist_id: uuid.UUID | None


class EnrolmentRead(ApiOutput):
    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID | None
    kitchen_id: uuid.UUID
    village_code: str
    rw: str | None
    category: str
    status: EnrolmentStatus
    reason: str | None = Field(
        description="Why the enrolment ended (as in `dashat.beneficiary.exited`); null while it runs"
    )
    exited_on: date | None = Field(description="The day the enrolment ended; null while it runs")
    causing_event_id: str | None = Field(
        description="The id of the event that ended it (a rule-driven or event-driven exit); null for a manual exit"
    )
    exit_rule_version: str | None = Field(
        default=None,
        description="The rule version that decided a rule-driven exit (recovered, aged_out, completed)",
    )
    exit_reason: str | None = Field(
        deprecated=True, description="Deprecated (kept for one version): use `reason`"
    )
    exit_causing_event_id: str | None = Field(
        deprecated=True, description="Deprecated (kept for one version): use `causing_event_id`"
    )
    ended_on: date | None = Field(
        deprecated=True, description="Deprecated (kept for one version): use `exited_on`"
    )
    priority: int
    start_date: date
    planned_end_date: date
    triggered_at: datetime | None
    enrolled_at: datetime
    latency_ms: float | None = Field(description="enrolled_at - triggered_at")
    version: int
    explanation: Explanation

    @classmethod
    def from_domain(cls, e: Enrolment) -> Self:
        latency = (e.enrolled_at - e.triggered_at).total_seconds() * 1000 if e.triggered_at else None
        return cls(
            id=e.id,
            person_id=e.person_id,
            family_id=e.family_id,
            kitchen_id=e.kitchen_id,
            village_code=e.village_code,
            rw=e.rw,
            category=e.category,
            status=e.status,
            reason=e.exit_reason,
            exited_on=e.ended_on,
            causing_event_id=e.exit_causing_event_id,
            exit_rule_version=e.exit_rule_version,
            exit_reason=e.exit_reason,
            exit_causing_event_id=e.exit_causing_event_id,
            ended_on=e.ended_on,
            priority=e.priority,
            start_date=e.start_date,
            planned_end_date=e.planned_end_date,
            triggered_at=e.triggered_at,
            enrolled_at=e.enrolled_at,
            latency_ms=latency,
            version=e.version,
            explanation=Explanation(
                source=e.source,
                rule_id=e.rule_id,
                rule_version=e.rule_version,
                trigger_event_id=e.trigger_event_id,
                facts=e.facts,
                enrolled_by=e.enrolled_by,
                waitlist_id=e.waitlist_id,
            ),
        )


class HazPoint(ApiOutput):
    measured_on: date
    haz: float


class OutcomeRead(ApiOutput):
    enrolment_id: uuid.UUID
    baseline_haz: float | None
    latest_haz: float | None
    change: float | None
    improved: bool | None
    flagged_no_improvement_on: date | None
    points: list[HazPoint]

    @classmethod
    def from_domain(cls, found: EnrolmentOutcome) -> Self:
        t = found.trajectory
        return cls(
            enrolment_id=found.enrolment.id,
            baseline_haz=t.baseline,
            latest_haz=t.latest,
            change=t.change,
            improved=t.improved,
            flagged_no_improvement_on=found.enrolment.outcome_flagged_on,
            points=[HazPoint(measured_on=p.measured_on, haz=p.haz) for p in t.points],
        )


class WaitlistRead(ApiOutput):
    id: uuid.UUID
    person_id: uuid.UUID
    village_code: str
    rw: str | None
    category: str
    kitchen_id: uuid.UUID | None
    reason: str
    status: WaitlistStatus
    priority: int
    rule_id: str
    rule_version: str
    trigger_event_id: str | None
    facts: dict[str, Any]
    triggered_at: datetime | None
    waitlisted_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    enrolment_id: uuid.UUID | None
