"""Children's measurements as announced by the registry, for the HAZ trajectory of enrolled children."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Boolean, Date, Float, Integer
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin


class ChildMeasurement(TimestampedMixin, Base):
    __tablename__ = "child_measurement"

    measurement_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(nullable=False, index=True)
    measured_on: Mapped[date] = mapped_column(Date, nullable=False)
    age_days: Mapped[int] = mapped_column(Integer, nullable=False)
    haz: Mapped[float | None] = mapped_column(Float)
    haz_flag: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # A corrected measurement is superseded by its correction; a retracted one never counts.
    superseded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    retracted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
