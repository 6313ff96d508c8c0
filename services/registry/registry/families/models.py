"""Kampung KB, families (KK), persons, family membership history and the PII access log."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, synonym

from registry.models import Base
from shared.db import TimestampedMixin, new_id


class KampungKb(TimestampedMixin, Base):
    """A designated Kampung KB: a village, or some RWs of it."""

    __tablename__ = "kampung_kb"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    village_code: Mapped[str] = mapped_column(Text, index=True)
    rw_list: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # The APIs call an RW list `rws` (kitchens, Kampung KB); the column keeps its first name.
    rws: Mapped[list[str]] = synonym("rw_list")
    designated_on: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Family(TimestampedMixin, Base):
    """A family (Kartu Keluarga) under a stable Kencana id; the KK number is encrypted and may change."""

    __tablename__ = "family"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kk_key_id: Mapped[str | None] = mapped_column(Text)
    kk_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    kk_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    kk_masked: Mapped[str | None] = mapped_column(Text)
    village_code: Mapped[str] = mapped_column(Text)
    rw: Mapped[str | None] = mapped_column(Text)
    rt: Mapped[str | None] = mapped_column(Text)
    street: Mapped[str | None] = mapped_column(Text)
    kampung_kb_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("kampung_kb.id"), index=True)
    welfare_decile: Mapped[int | None] = mapped_column(Integer)
    drinking_water_source: Mapped[str | None] = mapped_column(Text)
    latrine_type: Mapped[str | None] = mapped_column(Text)
    head_person_id: Mapped[uuid.UUID | None] = mapped_column()
    krs: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    krs_reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    krs_target: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    rule_version: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Server-side values (timestamps, version) come back with the INSERT/UPDATE (RETURNING), not a re-read.
    __mapper_args__ = {"eager_defaults": True}

    __table_args__ = (
        Index("ix_family_village_code", "village_code", postgresql_ops={"village_code": "text_pattern_ops"}),
        Index("ix_family_updated_at_id", "updated_at", "id"),
        Index("uq_family_kk_index", "kk_index", unique=True, postgresql_where=text("deleted_at IS NULL")),
    )


class FamilyKkHistory(Base):
    """Every KK number a family has carried, with when it was recorded and why it changed."""

    __tablename__ = "family_kk_history"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    kk_key_id: Mapped[str] = mapped_column(Text)
    kk_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    kk_index: Mapped[bytes] = mapped_column(LargeBinary, index=True)
    kk_masked: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)


class Person(TimestampedMixin, Base):
    """A person; NIK encrypted with a blind index, name kept only here (never in logs or events)."""

    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    family_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("family.id"))
    nik_key_id: Mapped[str | None] = mapped_column(Text)
    nik_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    nik_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    nik_masked: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    sex: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date] = mapped_column(Date)
    relation: Mapped[str] = mapped_column(Text)
    marital_status: Mapped[str] = mapped_column(Text)
    education: Mapped[str | None] = mapped_column(Text)
    occupation: Mapped[str | None] = mapped_column(Text)
    died_on: Mapped[date | None] = mapped_column(Date)
    moved_out_on: Mapped[date | None] = mapped_column(Date)
    legal_basis: Mapped[str] = mapped_column(Text)
    guardian_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    # NIK rule 5 conflicts (birth date / sex disagree with the NIK) accepted by a bulk import with
    # `on_mismatch=flag`: the record stands but is marked for review.
    nik_conflicts: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # A merged duplicate stays as a tombstone (deleted_at set) pointing at the record that survived.
    merged_into_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    # Normalised name for duplicate detection, kept by the database so every write path agrees on it.
    name_key: Mapped[str] = mapped_column(
        Text, Computed("btrim(regexp_replace(lower(name), '[^0-9a-z]+', ' ', 'g'))", persisted=True)
    )
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __mapper_args__ = {"eager_defaults": True}

    __table_args__ = (
        Index("ix_person_family_id", "family_id"),
        Index("ix_person_name_key_birth_date", "name_key", "birth_date"),
        # The age sweep finds the day's birthdays by range scans on the birth date (registry/ageing).
        Index("ix_person_birth_date", "birth_date"),
        Index("ix_person_updated_at_id", "updated_at", "id"),
        Index("uq_person_nik_index", "nik_index", unique=True, postgresql_where=text("deleted_at IS NULL")),
    )


class FamilyMembership(Base):
    """A person's membership of a family over time: moves are new rows, never overwrites."""

    __tablename__ = "family_membership"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("family.id"), index=True)
    relation: Mapped[str] = mapped_column(Text)
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AccessLog(Base):
    """Append-only record of every unmasked read of a NIK/KK number (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "access_log"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    accessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    person_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    purpose: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text))
    request_id: Mapped[str | None] = mapped_column(Text)
