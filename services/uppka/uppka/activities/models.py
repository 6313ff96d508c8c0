"""Tables of PEK programme activities and who attended them."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import TimestampedMixin, new_id
from uppka.models import Base


class Activity(TimestampedMixin, Base):
    __tablename__ = "activity"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    activity_type: Mapped[str] = mapped_column(Text)
    held_on: Mapped[date] = mapped_column(Date)
    facilitator: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    attendance: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(
            "activity_type IN ('kie_distribution', 'socialisation', 'orientation', 'facilitation', 'pek_stunting')",
            name="activity_type",
        ),
    )


class ActivityAttendance(Base):
    __tablename__ = "activity_attendance"

    activity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("activity.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("member.id"), primary_key=True, index=True)
