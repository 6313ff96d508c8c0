"""The category sweep's watermark: the last day whose birthdays have been applied to the members' categories."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from uppka.models import Base


class CategorySweep(Base):
    """One row per sweep (`name`): advanced in the same transaction as the categories and events of its day."""

    __tablename__ = "category_sweep"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    last_swept_on: Mapped[date] = mapped_column(Date)
    swept_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
