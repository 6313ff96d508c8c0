"""The local, event-fed replica of what DASHAT needs to know about people, families and UPPKA groups."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin


class FamilyReplica(TimestampedMixin, Base):
    """A registry family as of the newest family event applied (`facts_at`)."""

    __tablename__ = "family_replica"

    family_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    village_code: Mapped[str | None] = mapped_column(Text, index=True)
    rw: Mapped[str | None] = mapped_column(Text)
    welfare_decile: Mapped[int | None] = mapped_column(Integer)
    krs: Mapped[bool | None] = mapped_column(Boolean)
    krs_reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, nullable=False)
    facts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    krs_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PersonReplica(TimestampedMixin, Base):
    """A registry person; fields may be partial when only a later event (e.g. stunting) has arrived yet."""

    __tablename__ = "person_replica"

    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    village_code: Mapped[str | None] = mapped_column(Text, index=True)
    rw: Mapped[str | None] = mapped_column(Text)
    sex: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[date | None] = mapped_column(Date)
    # Relation to the family's head (kepala_keluarga, istri, anak...): who is a baby's mother.
    relation: Mapped[str | None] = mapped_column(Text)
    alive: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    died_on: Mapped[date | None] = mapped_column(Date)
    moved_out: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    moved_on: Mapped[date | None] = mapped_column(Date)
    merged_into: Mapped[uuid.UUID | None] = mapped_column()
    # Copied from the family so that one row answers "who is this person" for an enrolment decision.
    welfare_decile: Mapped[int | None] = mapped_column(Integer)
    krs: Mapped[bool | None] = mapped_column(Boolean)
    krs_reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, nullable=False)
    pregnant: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    pregnancy_id: Mapped[uuid.UUID | None] = mapped_column()
    expected_delivery: Mapped[date | None] = mapped_column(Date)
    kek: Mapped[bool | None] = mapped_column(Boolean)
    anaemia: Mapped[str | None] = mapped_column(Text)
    lila_cm: Mapped[float | None] = mapped_column(Float)
    hb_g_dl: Mapped[float | None] = mapped_column(Float)
    last_birth_on: Mapped[date | None] = mapped_column(Date)
    catin_at_risk: Mapped[bool | None] = mapped_column(Boolean)
    catin_risks: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, nullable=False)
    planned_marriage_date: Mapped[date | None] = mapped_column(Date)
    # Envelope time of the newest full person-facts event; older updates are ignored.
    facts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    location_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GroupReplica(TimestampedMixin, Base):
    """An UPPKA group as last announced by the uppka service (possible kitchen operators)."""

    __tablename__ = "group_replica"

    group_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    village_code: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    facts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
