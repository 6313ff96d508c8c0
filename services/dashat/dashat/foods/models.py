"""Local foods with nutrient values, menus (items x grams per portion) and monthly rotation plans."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashat.models import Base
from shared.db import TimestampedMixin, new_id


class Food(TimestampedMixin, Base):
    """A food item; nutrients per 100 g of edible portion."""

    __tablename__ = "food"
    __table_args__ = (
        CheckConstraint(
            "energy_kcal >= 0 and protein_g >= 0 and fat_g >= 0 and carbohydrate_g >= 0 and iron_mg >= 0",
            name="nutrients_non_negative",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    food_group: Mapped[str] = mapped_column(Text, nullable=False)
    energy_kcal: Mapped[float] = mapped_column(Float, nullable=False)
    protein_g: Mapped[float] = mapped_column(Float, nullable=False)
    fat_g: Mapped[float] = mapped_column(Float, nullable=False)
    carbohydrate_g: Mapped[float] = mapped_column(Float, nullable=False)
    iron_mg: Mapped[float] = mapped_column(Float, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    seeded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[str | None] = mapped_column(Text)


class Menu(TimestampedMixin, Base):
    """A recipe for one portion; a kitchen's own, or shared when kitchen_id is null."""

    __tablename__ = "menu"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kitchen_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("kitchen.id"), index=True)
    category: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class MenuItem(Base):
    __tablename__ = "menu_item"
    __table_args__ = (CheckConstraint("grams > 0", name="grams_positive"),)

    menu_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("menu.id", ondelete="CASCADE"), primary_key=True)
    food_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("food.id"), primary_key=True)
    grams: Mapped[float] = mapped_column(Float, nullable=False)


class RotationSlot(Base):
    """One day and meal slot of a kitchen's monthly menu rotation."""

    __tablename__ = "rotation_slot"
    __table_args__ = (
        UniqueConstraint("kitchen_id", "month", "day", "slot"),
        CheckConstraint("day between 1 and 31", name="day_in_month"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kitchen_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kitchen.id"), nullable=False)
    month: Mapped[str] = mapped_column(Text, nullable=False)
    day: Mapped[int] = mapped_column(Integer, nullable=False)
    slot: Mapped[str] = mapped_column(Text, nullable=False)
    menu_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("menu.id"), nullable=False)
