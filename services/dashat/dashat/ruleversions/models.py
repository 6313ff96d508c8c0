"""Stored rule versions (the code default is the seed version and is not stored)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin


class RuleVersion(TimestampedMixin, Base):
    """One complete set of enrolment rules, for a region prefix (None: national) from a date on; never edited."""

    __tablename__ = "rule_version"
    __table_args__ = (
        # Two versions for one region and one day would leave the decision to chance.
        # NULLS NOT DISTINCT: the national versions (no prefix) are one region too.
        Index(
            "uq_rule_version_region_effective",
            "region_prefix",
            "effective_from",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )

    version: Mapped[str] = mapped_column(Text, primary_key=True)
    region_prefix: Mapped[str | None] = mapped_column(Text, index=True)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
