"""Tables of UPPKA groups: the group, its status history, funding sources, and its members."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import TimestampedMixin, new_id
from uppka.models import Base


class Group(TimestampedMixin, Base):
    """An UPPKA group of acceptor families in one village (often a Kampung KB)."""

    __tablename__ = "uppka_group"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    register_number: Mapped[str | None] = mapped_column(Text, unique=True)
    sk_number: Mapped[str | None] = mapped_column(Text)
    sk_date: Mapped[date | None] = mapped_column(Date)
    founded_on: Mapped[date | None] = mapped_column(Date)
    kampung_kb_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    village_code: Mapped[str] = mapped_column(Text, index=True)
    rw: Mapped[str | None] = mapped_column(Text)
    pembina_name: Mapped[str | None] = mapped_column(Text)
    pembina_officer_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    status_since: Mapped[date] = mapped_column(Date)
    dissolved_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (CheckConstraint("status IN ('active', 'inactive', 'dissolved')", name="status"),)


class GroupStatusChange(Base):
    """Every status a group has had, with the date it took effect."""

    __tablename__ = "group_status_change"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    status: Mapped[str] = mapped_column(Text)
    previous_status: Mapped[str | None] = mapped_column(Text)
    changed_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)


class GroupFunding(TimestampedMixin, Base):
    """Money a group received, by source (APBN, APBD, Dana Desa, swadaya, CSR, KUR), in integer rupiah."""

    __tablename__ = "group_funding"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    source: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    received_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("amount >= 0", name="amount_non_negative"),)


class Member(TimestampedMixin, Base):
    """A registry person's membership of a group; KB facts are copied from the registry's events."""

    __tablename__ = "member"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    family_id: Mapped[uuid.UUID] = mapped_column()
    village_code: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    category_rule_version: Mapped[str] = mapped_column(Text)
    # The day the current category took effect (the join, or the last change by age or the registry's facts).
    category_since: Mapped[date | None] = mapped_column(Date)
    joined_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    left_reason: Mapped[str | None] = mapped_column(Text)
    kb_method: Mapped[str | None] = mapped_column(Text)
    kb_user: Mapped[bool] = mapped_column(Boolean, server_default=false())
    mkjp: Mapped[bool] = mapped_column(Boolean, server_default=false())
    kb_changed_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        # One current membership per person and group; one current holder of each officer role.
        Index(
            "uq_member_active_person",
            "group_id",
            "person_id",
            unique=True,
            postgresql_where=text("left_on IS NULL"),
        ),
        Index(
            "uq_member_active_officer",
            "group_id",
            "role",
            unique=True,
            postgresql_where=text("left_on IS NULL AND role <> 'anggota'"),
        ),
        CheckConstraint("role IN ('ketua', 'sekretaris', 'bendahara', 'anggota')", name="role"),
    )
