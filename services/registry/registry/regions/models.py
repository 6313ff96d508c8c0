"""The Kemendagri region reference, dated so that a code change (split, renumbering) can be represented."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import Base


class Region(Base):
    """One region code valid from `valid_from` until `valid_to` (exclusive; null = still in force)."""

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    valid_from: Mapped[date] = mapped_column(Date, primary_key=True)
    valid_to: Mapped[date | None] = mapped_column(Date)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_region_parent_code", "parent_code"),)
