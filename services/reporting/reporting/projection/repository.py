"""All SQL of the projections: entity timelines, fact deltas, places, freshness."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.projection import domain
from reporting.projection.models import Entity, Fact, Place, ProjectionStatus

# Large deltas (a family moving with many facts) are written in slices to keep statements small.
_CHUNK = 1000


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


async def apply_delta(session: AsyncSession, delta: Mapping[str, int]) -> None:
    """Add a contribution difference to every fact row it rolls up into, in the caller's transaction."""
    rows = [
        {"region": r, "grain": g, "period_start": p, "measure": m, "level": lvl, "value": v}
        # Sorted so concurrent writers lock rows in the same order (no deadlocks).
        for (r, g, p, m), (lvl, v) in sorted(domain.expand(delta).items())
    ]
    for i in range(0, len(rows), _CHUNK):
        stmt = insert(Fact).values(rows[i : i + _CHUNK])
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Fact.region, Fact.grain, Fact.period_start, Fact.measure],
                set_={"value": Fact.value + stmt.excluded.value},
            )
        )


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
    """Freshness: latest event time applied on a topic (never moves back for a late event)."""
    stmt = insert(ProjectionStatus).values(
        topic=topic, last_event_time=event_time, last_applied_at=func.now(), events_applied=1
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ProjectionStatus.topic],
            set_={
                "last_event_time": func.greatest(
                    ProjectionStatus.last_event_time, stmt.excluded.last_event_time
                ),
                "last_applied_at": func.now(),
                "events_applied": ProjectionStatus.events_applied + 1,
            },
        )
    )


async def set_offset_lag(session: AsyncSession, lags: Mapping[str, int]) -> None:
    for topic, lag in lags.items():
        stmt = insert(ProjectionStatus).values(topic=topic, events_applied=0, offset_lag=lag)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[ProjectionStatus.topic], set_={"offset_lag": lag})
        )
