"""The ledger of a kitchen: income by source and expenses by category, in whole rupiah."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin, new_id


class LedgerEntry(TimestampedMixin, Base):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("kind in ('income', 'expense')", name="kind_known"),
        CheckConstraint(
            "(kind = 'income' and source is not null and category is null)"
            " or (kind = 'expense' and category is not null and source is null)",
            name="source_or_category",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kitchen_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kitchen.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    entry_on: Mapped[date] = mapped_column(Date, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    contribution_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    group_id: Mapped[uuid.UUID | None] = mapped_column()
    recorded_by: Mapped[str | None] = mapped_column(Text)
