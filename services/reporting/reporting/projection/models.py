"""Read-model tables of the reporting service: entity timelines, pre-aggregated facts, freshness."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Date, DateTime, Float, Index, SmallInteger, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from reporting.models import Base


class Fact(Base):
    """Additive value of one measure for one region (any level) and period.

    grain 'm' rows hold monthly flows and monthly deltas of stocks; grains 'm'/'q'/'y' also hold distinct
    counts (a child measured twice in a quarter counts once), which are not additive across months.
    Only the rollup writes these rows (`projection/rollup.py`, one at a time under an advisory lock): it
    adds each pending delta to the village row and to each ancestor row, so a national query reads only the
    national rows. It writes slot 0; rows in other slots come from before rep0004 (which folded them into
    slot 0) and a figure is still the sum of its rows over the slots.
    """

    __tablename__ = "rep_fact"

    # Level first: the key serves a region's rows (with its level, `domain.level_of`) and the rows of a level
    # inside a region (`level = 3 AND region LIKE '15.71.%'`, a prefix scan thanks to the "C" collation), so the
    # rollup keeps two indexes up to date per row, not three (rep0009).
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    region: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    grain: Mapped[str] = mapped_column(Text, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    measure: Mapped[str] = mapped_column(Text, primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (
        # Kampung KB areas and kitchens (levels 5, 6): a few measures of every kitchen, from the index alone.
        Index(
            "ix_rep_fact_place_measure",
            "level",
            "measure",
            "grain",
            "period_start",
            "region",
            postgresql_include=["value"],
            postgresql_where=text("level >= 5"),
        ),
    )


class PlaceStock(Base):
    """A stock of a Kampung KB area or kitchen as at the end of a month (not a delta): what rep_fact's monthly
    deltas add up to, for the few measures the DASHAT coverage figures read for every area and kitchen.

    A national figure reads one row per area or kitchen here instead of every month of its history. The
    rollup keeps it (`projection/repository.py`): each month from a place's first delta up to the latest
    month of any delta has its row (a missing row is a stock of 0), so the stock as at a month is the row of
    that month, or of the latest month if the period lies after it.
    """

    __tablename__ = "rep_place_stock"

    measure: Mapped[str] = mapped_column(Text, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    region: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)

    # A month's rows of a few measures, from the index alone (its first column also gives the horizon).
    __table_args__ = (
        Index(
            "ix_rep_place_stock_month", "month", "measure", "region", postgresql_include=["level", "value"]
        ),
    )


# A fact delta a projection transaction committed and the rollup has not yet added to rep_fact. The
# projector only appends here, to a table with no key and no index (no index insert, no conflict check: the
# cheapest write there is), so the consumers of different partitions never wait for each other. `fact_key`
# is `domain.parse_key`'s form (village, Kampung KB, kitchen, grain, period, measure). The rollup deletes
# the rows it folds, whichever committed rows it finds, so it needs no key either.
pending_facts = Table(
    "rep_fact_pending",
    Base.metadata,
    Column("fact_key", Text, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class Entity(Base):
    """One tracked thing (family, person, child, case, group, member, report, kitchen, enrolment, flow event).

    `entries` is its event timeline; `contribution` is what it last added to rep_fact, so a change (a late or
    corrected event, or a new Kampung KB of its owner) is applied as the difference between old and new.
    """

    __tablename__ = "rep_entity"

    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    entity_id: Mapped[str] = mapped_column(Text, primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    contribution: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (Index("ix_rep_entity_owner_id", "owner_id"),)


class Place(Base):
    """Where a Kampung KB ("kkb:<id>") or a kitchen ("dapur:<id>") lies, for region scope and filters.

    One row per slot that saw it (families, groups and kitchens of many partitions name the same Kampung KB,
    and a row shared between partitions would make their consumers wait for each other); readers take the
    row with the latest event time.
    """

    __tablename__ = "rep_place"

    # Same collation as rep_fact.region, so joins between the two can use rep_fact's primary key.
    region: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    village_code: Mapped[str] = mapped_column(Text(collation="C"), nullable=False, index=True)
    kampung_kb: Mapped[str | None] = mapped_column(Text, nullable=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Enrolment(Base):
    """DASHAT enrolments, for the distribution of detection-to-enrolment times and HAZ change."""

    __tablename__ = "rep_enrolment"

    enrolment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kitchen_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    village_code: Mapped[str] = mapped_column(Text(collation="C"), nullable=False, index=True)
    category: Mapped[str] = mapped_column(Text, nullable=False)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    wait_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class ProjectionStatus(Base):
    """Freshness per topic partition (one writer each): the last event applied, when, and how far behind."""

    __tablename__ = "projection_status"

    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    partition: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_event_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    events_applied: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    offset_lag: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
