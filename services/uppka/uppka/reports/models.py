"""Tables of monthly reports (with amendment history) and DASHAT contributions."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import TimestampedMixin, new_id
from uppka.models import Base


class ReportFiguresMixin:
    omzet: Mapped[int] = mapped_column(BigInteger)
    costs: Mapped[int] = mapped_column(BigInteger)
    profit: Mapped[int] = mapped_column(BigInteger)
    capital_balance: Mapped[int] = mapped_column(BigInteger)
    members_present: Mapped[int] = mapped_column(Integer)
    active_members: Mapped[int] = mapped_column(Integer)
    new_kb_acceptors: Mapped[int] = mapped_column(Integer)
    mkjp_switchers: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)


class MonthlyReport(ReportFiguresMixin, TimestampedMixin, Base):
    """One group's report for one month; the figures are the current (latest amended) ones."""

    __tablename__ = "monthly_report"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    village_code: Mapped[str] = mapped_column(Text, index=True)
    period: Mapped[str] = mapped_column(Text)
    submitted_on: Mapped[date] = mapped_column(Date)
    late: Mapped[bool] = mapped_column(Boolean)
    rule_version: Mapped[str] = mapped_column(Text)
    amendment_no: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        UniqueConstraint("group_id", "period"),
        CheckConstraint(
            "omzet >= 0 AND costs >= 0 AND capital_balance >= 0 AND members_present >= 0"
            " AND active_members >= 0 AND new_kb_acceptors >= 0 AND mkjp_switchers >= 0",
            name="non_negative",
        ),
    )


class ReportRevision(ReportFiguresMixin, Base):
    """The figures of every submission and amendment of a report, never overwritten."""

    __tablename__ = "report_revision"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("monthly_report.id"), index=True)
    amendment_no: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("report_id", "amendment_no"),)


class DashatContribution(TimestampedMixin, Base):
    """Cash or goods (valued in rupiah) a group gave a DASHAT kitchen known from DASHAT's events."""

    __tablename__ = "dashat_contribution"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("monthly_report.id"), index=True)
    kitchen_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    goods: Mapped[str | None] = mapped_column(Text)
    contributed_on: Mapped[date] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("kind IN ('cash', 'in_kind')", name="kind"),
    )
