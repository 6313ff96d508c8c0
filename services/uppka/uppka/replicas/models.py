"""Local, event-fed copies of what uppka needs from the registry (persons) and DASHAT (kitchens)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Integer, Text, false
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from uppka.models import Base


class PersonReplica(Base):
    """A registry person as the registry's events describe it; never edited through the API."""

    __tablename__ = "person_replica"

    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    village_code: Mapped[str | None] = mapped_column(Text, index=True)
    rw: Mapped[str | None] = mapped_column(Text)
    sex: Mapped[str | None] = mapped_column(Text)
    # Indexed for the daily category sweep, which looks members up by the birth dates that reach an age that day.
    birth_date: Mapped[date | None] = mapped_column(Date, index=True)
    marital_status: Mapped[str | None] = mapped_column(Text)
    pus: Mapped[bool | None] = mapped_column(Boolean)
    # False while only a KB or death event has been seen: the person's own facts are not known yet.
    facts_known: Mapped[bool] = mapped_column(Boolean, server_default=false(), nullable=False)
    died_on: Mapped[date | None] = mapped_column(Date)
    moved_out_on: Mapped[date | None] = mapped_column(Date)
    merged_into: Mapped[uuid.UUID | None] = mapped_column()
    kb_method: Mapped[str | None] = mapped_column(Text)
    is_user: Mapped[bool] = mapped_column(Boolean, server_default=false(), nullable=False)
    mkjp: Mapped[bool] = mapped_column(Boolean, server_default=false(), nullable=False)
    ever_kb_user: Mapped[bool] = mapped_column(Boolean, server_default=false(), nullable=False)
    kb_since: Mapped[date | None] = mapped_column(Date)
    # Envelope times of the last applied facts / KB events: older events are ignored (out-of-order delivery).
    facts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kb_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class KitchenReplica(Base):
    """A DASHAT kitchen as DASHAT's events describe it; contributions may only go to a known one."""

    __tablename__ = "kitchen_replica"

    kitchen_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    village_code: Mapped[str] = mapped_column(Text, index=True)
    rws: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}", nullable=False)
    kampung_kb_id: Mapped[uuid.UUID | None] = mapped_column()
    management_model: Mapped[str | None] = mapped_column(Text)
    capacity_per_day: Mapped[int | None] = mapped_column(Integer)
    operator_group_id: Mapped[uuid.UUID | None] = mapped_column()
    opened_on: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    # False when only a "closed" event has been seen so far.
    facts_known: Mapped[bool] = mapped_column(Boolean, server_default=false(), nullable=False)
    facts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
