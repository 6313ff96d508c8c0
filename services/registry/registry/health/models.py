"""KB (contraception) status history, catin screenings and pregnancies."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import Base
from shared.db import TimestampedMixin, new_id


class KbStatus(TimestampedMixin, Base):
    """One KB status of a person; a change adds a row and closes the previous one (`current` false)."""

    __tablename__ = "kb_status"
    # Server-side values (timestamps, defaults) come back with the INSERT/UPDATE (RETURNING), not a re-read.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"))
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    method: Mapped[str | None] = mapped_column(Text)
    is_user: Mapped[bool] = mapped_column(Boolean)
    mkjp: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[date] = mapped_column(Date)
    reason_non_use: Mapped[str | None] = mapped_column(Text)
    service_source: Mapped[str | None] = mapped_column(Text)
    current: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    recorded_by: Mapped[str] = mapped_column(Text)
    rule_version: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_kb_status_person_id", "person_id"),
        Index("uq_kb_status_current", "person_id", unique=True, postgresql_where=text("current")),
        Index("ix_kb_status_updated_at_id", "updated_at", "id"),
    )


class Catin(TimestampedMixin, Base):
    """A bride/groom-to-be with the pre-marriage screening and the derived risk."""

    __tablename__ = "catin"
    # Server-side values (timestamps, defaults) come back with the INSERT/UPDATE (RETURNING), not a re-read.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    planned_marriage_date: Mapped[date] = mapped_column(Date)
    screened_on: Mapped[date] = mapped_column(Date)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    bmi: Mapped[float | None] = mapped_column(Float)
    lila_cm: Mapped[float | None] = mapped_column(Float)
    hb_g_dl: Mapped[float | None] = mapped_column(Float)
    at_risk: Mapped[bool] = mapped_column(Boolean)
    risks: Mapped[list[str]] = mapped_column(ARRAY(Text))
    rule_version: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_catin_updated_at_id", "updated_at", "id"),)


class Pregnancy(TimestampedMixin, Base):
    """A pregnancy with maternal risk facts; ended by a birth (creating the child) or a loss."""

    __tablename__ = "pregnancy"
    # Server-side values (timestamps, defaults) come back with the INSERT/UPDATE (RETURNING), not a re-read.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    lmp: Mapped[date | None] = mapped_column(Date)
    expected_delivery: Mapped[date] = mapped_column(Date)
    lila_cm: Mapped[float | None] = mapped_column(Float)
    hb_g_dl: Mapped[float | None] = mapped_column(Float)
    kek: Mapped[bool] = mapped_column(Boolean)
    anaemia: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'ongoing'"))
    outcome: Mapped[str | None] = mapped_column(Text)
    ended_on: Mapped[date | None] = mapped_column(Date)
    child_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    rule_version: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_pregnancy_updated_at_id", "updated_at", "id"),
        Index("uq_pregnancy_ongoing", "person_id", unique=True, postgresql_where=text("status = 'ongoing'")),
    )
