"""Meals served: one batch per kitchen, date and slot, and one row per beneficiary served."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, Text, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin, new_id


class MealBatch(TimestampedMixin, Base):
    __tablename__ = "meal_batch"
    __table_args__ = (
        UniqueConstraint("kitchen_id", "served_on", "slot"),
        CheckConstraint(
            "portions_cooked >= 0 and portions_delivered >= 0 and portions_consumed >= 0",
            name="portions_non_negative",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kitchen_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kitchen.id"), nullable=False)
    served_on: Mapped[date] = mapped_column(Date, nullable=False)
    slot: Mapped[str] = mapped_column(Text, nullable=False)
    menu_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("menu.id"))
    portions_cooked: Mapped[int] = mapped_column(Integer, nullable=False)
    portions_delivered: Mapped[int] = mapped_column(Integer, nullable=False)
    portions_consumed: Mapped[int] = mapped_column(Integer, nullable=False)
    absent_person_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), nullable=False, default=list)
    capacity_override: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Hash of the submitted content: the same batch again is a replay, a different one a conflict.
    content_hash: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_by: Mapped[str | None] = mapped_column(Text)


class MealServing(Base):
    __tablename__ = "meal_serving"
    __table_args__ = (UniqueConstraint("person_id", "served_on", "slot"),)

    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meal_batch.id"), primary_key=True)
    enrolment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrolment.id"), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    served_on: Mapped[date] = mapped_column(Date, nullable=False)
    slot: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str] = mapped_column(Text, nullable=False)
