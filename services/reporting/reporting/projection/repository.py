"""All SQL of the projections: entity timelines, fact deltas, places, freshness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import event, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from reporting.projection import domain
from reporting.projection.models import Entity, Place, ProjectionStatus


async def load_entity(session: AsyncSession, kind: str, entity_id: str) -> Entity | None:
    """The entity row, locked so two consumers never interleave on one entity."""
    return (
        await session.execute(
            select(Entity)
            .where(Entity.kind == kind, Entity.entity_id == entity_id)
            .with_for_update()
            # Rows are written with Core upserts, so never trust an object cached earlier in the transaction.
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def load_entities(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Entity]:
    """Several entity rows (an entity and its owner) in one round trip, locked like `load_entity`."""
    rows = (
        await session.execute(
            select(Entity)
            .where(tuple_(Entity.kind, Entity.entity_id).in_(keys))
            .order_by(Entity.kind, Entity.entity_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalars()
    return {(e.kind, e.entity_id): e for e in rows}


async def dependants(session: AsyncSession, owner_id: str) -> list[Entity]:
    """Entities located through an owner (persons of a family, members of a group, meals of a kitchen)."""
    return list(
        (
            await session.execute(
                select(Entity)
                .where(Entity.owner_id == owner_id)
                .order_by(Entity.kind, Entity.entity_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )


async def save_entity(
    session: AsyncSession,
    *,
    kind: str,
    entity_id: str,
    owner_id: str | None,
    entries: list[dict[str, Any]],
    contribution: Mapping[str, int],
) -> None:
    stmt = insert(Entity).values(
        kind=kind, entity_id=entity_id, owner_id=owner_id, entries=entries, contribution=dict(contribution)
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Entity.kind, Entity.entity_id],
            set_={
                "owner_id": stmt.excluded.owner_id,
                "entries": stmt.excluded.entries,
                "contribution": stmt.excluded.contribution,
                "updated_at": func.now(),
            },
        )
    )


# All fact deltas and freshness counts of one transaction are summed in memory and written once, just before
# it commits: the consumer applies a whole poll in one transaction, and upserting the same national and
# provincial rows (and the per-topic status row) once per event made PostgreSQL walk ever longer chains of
# row versions. Nothing reads rep_fact or projection_status inside a projection transaction, so deferring
# the writes to its end changes nothing that anyone can observe.
_UPSERT_FACTS = text(
    """
    INSERT INTO rep_fact (region, grain, period_start, measure, level, value)
    SELECT * FROM unnest(
        CAST(:regions AS text[]), CAST(:grains AS text[]), CAST(:starts AS date[]),
        CAST(:measures AS text[]), CAST(:levels AS smallint[]), CAST(:vals AS bigint[])
    )
    ON CONFLICT (region, grain, period_start, measure) DO UPDATE SET value = rep_fact.value + excluded.value
    """
)
_BUFFER = "reporting.projection.pending"


@dataclass
class _Pending:
    """Writes owed by the current transaction; flushed by `before_commit`."""

    facts: dict[tuple[str, str, date, str], list[int]] = field(default_factory=dict)
    status: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    broken: bool = False


def _pending(session: AsyncSession) -> _Pending:
    pending = session.info.get(_BUFFER)
    if pending is None:
        pending = session.info[_BUFFER] = _Pending()
        event.listen(session.sync_session, "before_commit", _flush)
        event.listen(session.sync_session, "after_soft_rollback", _rolled_back)
    return cast(_Pending, pending)


def _flush(sync_session: Session) -> None:
    # Runs inside the async session's greenlet, so the sync execute is fine here.
    pending: _Pending = sync_session.info[_BUFFER]
    if pending.broken:
        raise RuntimeError("a savepoint was rolled back over buffered projection writes")
    rows = sorted((k, lvl, v) for k, (lvl, v) in pending.facts.items() if v)
    pending.facts = {}
    if rows:
        sync_session.execute(
            _UPSERT_FACTS,
            {
                "regions": [r for (r, _, _, _), _, _ in rows],
                "grains": [g for (_, g, _, _), _, _ in rows],
                "starts": [p for (_, _, p, _), _, _ in rows],
                "measures": [m for (_, _, _, m), _, _ in rows],
                "levels": [lvl for _, lvl, _ in rows],
                "vals": [v for _, _, v in rows],
            },
        )
    status, pending.status = pending.status, {}
    for topic, (event_time, count) in sorted(status.items()):
        stmt = insert(ProjectionStatus).values(
            topic=topic, last_event_time=event_time, last_applied_at=func.now(), events_applied=count
        )
        sync_session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ProjectionStatus.topic],
                set_={
                    "last_event_time": func.greatest(
                        ProjectionStatus.last_event_time, stmt.excluded.last_event_time
                    ),
                    "last_applied_at": func.now(),
                    "events_applied": ProjectionStatus.events_applied + stmt.excluded.events_applied,
                },
            )
        )


def _rolled_back(sync_session: Session, transaction: SessionTransaction) -> None:
    pending: _Pending = sync_session.info[_BUFFER]
    if transaction.nested:
        # Which buffered writes belonged to the savepoint is unknown: fail the commit rather than guess.
        pending.broken = bool(pending.facts or pending.status)
    else:
        pending.facts, pending.status, pending.broken = {}, {}, False


async def apply_delta(session: AsyncSession, delta: Mapping[str, int]) -> None:
    """Add a contribution difference to every fact row it rolls up into, when the transaction commits."""
    facts = _pending(session).facts
    for k, (level, v) in domain.expand(delta).items():
        row = facts.setdefault(k, [level, 0])
        row[1] += v


async def upsert_place(session: AsyncSession, region: str, village_code: str, kampung_kb: str | None) -> None:
    stmt = insert(Place).values(region=region, village_code=village_code, kampung_kb=kampung_kb)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Place.region],
            set_={"village_code": stmt.excluded.village_code, "kampung_kb": stmt.excluded.kampung_kb},
        )
    )


async def upsert_row(session: AsyncSession, table: Any, values: dict[str, Any], key: list[str]) -> None:
    stmt = insert(table).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=key, set_={k: stmt.excluded[k] for k in values if k not in key}
        )
    )


async def touch_status(session: AsyncSession, topic: str, event_time: datetime) -> None:
    """Freshness: latest event time applied on a topic (never moves back for a late event), at commit."""
    status = _pending(session).status
    latest, count = status.get(topic, (event_time, 0))
    status[topic] = (max(latest, event_time), count + 1)


async def set_offset_lag(session: AsyncSession, lags: Mapping[str, int]) -> None:
    for topic, lag in lags.items():
        stmt = insert(ProjectionStatus).values(topic=topic, events_applied=0, offset_lag=lag)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[ProjectionStatus.topic], set_={"offset_lag": lag})
        )
