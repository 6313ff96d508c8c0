"""Tables of a group's businesses, their products and capital sources."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Integer, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import TimestampedMixin, new_id
from uppka.models import Base


class Business(TimestampedMixin, Base):
    __tablename__ = "business"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uppka_group.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    sector: Mapped[str] = mapped_column(Text)
    started_on: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    supplies_dashat: Mapped[bool] = mapped_column(Boolean, server_default=false())
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint(
            "sector IN ('food_processing', 'crafts', 'agriculture', 'livestock', 'trade', 'services', 'other')",
            name="sector",
        ),
    )


class Product(TimestampedMixin, Base):
    """A product with its price in integer rupiah and the licences it holds."""

    __tablename__ = "product"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("business.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    price: Mapped[int] = mapped_column(BigInteger)
    keunggulan: Mapped[str | None] = mapped_column(Text)
    nib_number: Mapped[str | None] = mapped_column(Text)
    pirt_number: Mapped[str | None] = mapped_column(Text)
    halal_number: Mapped[str | None] = mapped_column(Text)
    bpom_number: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("price >= 0", name="price_non_negative"),)


class CapitalSource(TimestampedMixin, Base):
    """Where a business's capital came from (own savings, group funds, KUR loan, grants...)."""

    __tablename__ = "capital_source"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("business.id"), index=True)
    source: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    received_on: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (CheckConstraint("amount >= 0", name="amount_non_negative"),)
