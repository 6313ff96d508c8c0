"""Child measurements with WHO z-scores, and the stunting cases they open, resolve or retract."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import Base
from shared.db import TimestampedMixin, new_id


class Measurement(TimestampedMixin, Base):
    """One measurement; a correction is a new row pointing at the one it replaces (`status` corrected)."""

    __tablename__ = "measurement"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"))
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    measured_on: Mapped[date] = mapped_column(Date)
    age_days: Mapped[int] = mapped_column(Integer)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    lenhei_cm: Mapped[float | None] = mapped_column(Float)
    position: Mapped[str | None] = mapped_column(Text)
    oedema: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    haz: Mapped[float | None] = mapped_column(Float)
    waz: Mapped[float | None] = mapped_column(Float)
    whz: Mapped[float | None] = mapped_column(Float)
    haz_flag: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    waz_flag: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    whz_flag: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    standing_under_9_months: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    haz_class: Mapped[str | None] = mapped_column(Text)
    waz_class: Mapped[str | None] = mapped_column(Text)
    whz_class: Mapped[str | None] = mapped_column(Text)
    rule_version: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'active'"))
    corrects_measurement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("measurement.id"))
    recorded_by: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(Text)
    change_reason: Mapped[str | None] = mapped_column(Text)
    retracted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    __table_args__ = (
        Index("ix_measurement_person_id_measured_on", "person_id", "measured_on"),
        Index("ix_measurement_updated_at_id", "updated_at", "id"),
    )


class StuntingCase(TimestampedMixin, Base):
    """A baduta's stunting case: opened by a measurement, resolved by a later one, or retracted."""

    __tablename__ = "stunting_case"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"))
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    measurement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("measurement.id"), index=True)
    measured_on: Mapped[date] = mapped_column(Date)
    haz: Mapped[float] = mapped_column(Float)
    age_days: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'open'"))
    resolved_by_measurement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("measurement.id"))
    resolved_on: Mapped[date | None] = mapped_column(Date)
    retracted_on: Mapped[date | None] = mapped_column(Date)
    retraction_reason: Mapped[str | None] = mapped_column(Text)
    rule_version: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("uq_stunting_case_open", "person_id", unique=True, postgresql_where=text("status = 'open'")),
        Index("ix_stunting_case_updated_at_id", "updated_at", "id"),
    )
