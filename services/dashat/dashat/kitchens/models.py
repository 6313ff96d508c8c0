"""Kitchens (dapur DASHAT)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, Date, Integer, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin, new_id


class Kitchen(TimestampedMixin, Base):
    """A community kitchen serving a village (all of it, or the listed RWs)."""

    __tablename__ = "kitchen"
    __table_args__ = (
        CheckConstraint("capacity_per_day >= 0", name="capacity_non_negative"),
        CheckConstraint("status in ('active', 'closed')", name="status_known"),
        CheckConstraint(
            "management_model in ('social', 'commercial', 'combined')", name="management_model_known"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kampung_kb_id: Mapped[uuid.UUID | None] = mapped_column()
    village_code: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    rws: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    management_model: Mapped[str] = mapped_column(Text, nullable=False)
    operator_group_id: Mapped[uuid.UUID | None] = mapped_column()
    capacity_per_day: Mapped[int] = mapped_column(Integer, nullable=False)
    opened_on: Mapped[date] = mapped_column(Date, nullable=False)
    closed_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="active")
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
