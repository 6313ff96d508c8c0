"""Yearly targets: how many UPPKA groups each province should reach."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import TimestampedMixin, new_id
from uppka.models import Base


class Target(TimestampedMixin, Base):
    __tablename__ = "target"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    year: Mapped[int] = mapped_column(Integer)
    province_code: Mapped[str] = mapped_column(Text)
    target_groups: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        UniqueConstraint("year", "province_code"),
        CheckConstraint("target_groups >= 0", name="target_non_negative"),
    )
