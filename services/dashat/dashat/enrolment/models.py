"""Enrolments, the waitlist, and the stunting cases DASHAT has heard of."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin, new_id


class Enrolment(TimestampedMixin, Base):
    """A person fed by a kitchen for a planned time, with what caused it."""

    __tablename__ = "enrolment"
    __table_args__ = (
        # Duplicate triggers, racing consumers and API calls all end here: one active enrolment per category.
        Index(
            "uq_enrolment_person_category_active",
            "person_id",
            "category",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        CheckConstraint("status in ('active', 'completed', 'exited', 'retracted')", name="status_known"),
        CheckConstraint("source in ('automatic', 'manual')", name="source_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(nullable=False, index=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column()
    kitchen_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kitchen.id"), nullable=False, index=True)
    village_code: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    rw: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="active")
    exit_reason: Mapped[str | None] = mapped_column(Text)
    exit_causing_event_id: Mapped[str | None] = mapped_column(Text)
    ended_on: Mapped[date | None] = mapped_column(Date)
    # The rule version that decided the exit (recovery, ageing out, planned end); None for facts (death, move).
    exit_rule_version: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    rule_id: Mapped[str | None] = mapped_column(Text)
    rule_version: Mapped[str | None] = mapped_column(Text)
    trigger_event_id: Mapped[str | None] = mapped_column(Text)
    # The id of the thing that caused it (stunting case, pregnancy, catin screening) so later events find it.
    trigger_ref: Mapped[uuid.UUID | None] = mapped_column(index=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    enrolled_by: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    planned_end_date: Mapped[date] = mapped_column(Date, nullable=False)
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    waitlist_id: Mapped[uuid.UUID | None] = mapped_column()
    outcome_flagged_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class WaitlistEntry(TimestampedMixin, Base):
    """A target no kitchen could take yet; it stays visible until enrolled or no longer eligible."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        Index(
            "uq_waitlist_entry_person_category_waiting",
            "person_id",
            "category",
            unique=True,
            postgresql_where=text("status = 'waiting'"),
        ),
        CheckConstraint("status in ('waiting', 'enrolled', 'cancelled')", name="status_known"),
        CheckConstraint("reason in ('no_kitchen', 'kitchen_full')", name="reason_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(nullable=False, index=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column()
    village_code: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    rw: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text, nullable=False)
    kitchen_id: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="waiting")
    rule_id: Mapped[str] = mapped_column(Text, nullable=False)
    rule_version: Mapped[str] = mapped_column(Text, nullable=False)
    trigger_event_id: Mapped[str | None] = mapped_column(Text)
    trigger_ref: Mapped[uuid.UUID | None] = mapped_column(index=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    planned_days: Mapped[int] = mapped_column(Integer, nullable=False)
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    waitlisted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)
    enrolment_id: Mapped[uuid.UUID | None] = mapped_column()


class StuntingCase(TimestampedMixin, Base):
    """The registry's stunting cases as DASHAT heard of them; a retraction that arrives first is remembered."""

    __tablename__ = "stunting_case"
    __table_args__ = (
        CheckConstraint("status in ('detected', 'resolved', 'retracted')", name="status_known"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(nullable=False, index=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    detected_event_id: Mapped[str | None] = mapped_column(Text)
    closed_event_id: Mapped[str | None] = mapped_column(Text)
    haz: Mapped[float | None] = mapped_column()
    measured_on: Mapped[date | None] = mapped_column(Date)
