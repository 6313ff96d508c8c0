"""All SQL of the projections: entity timelines, fact deltas (per slot), places, enrolments, freshness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import event, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from reporting.projection import domain
from reporting.projection.models import Enrolment, Entity

EntityKey = tuple[str, str]
# What a loaded entity row holds: owner id, timeline, contribution.
Timeline = tuple[str | None, list[dict[str, Any]], dict[str, int]]


_CLAIM_SHARED = text(
    """
    INSERT INTO rep_entity (kind, entity_id, entries, contribution)
    SELECT k, i, '[]', '{}' FROM unnest(CAST(:kinds AS text[]), CAST(:ids AS text[])) AS t(k, i)
    ORDER BY k, i
    ON CONFLICT (kind, entity_id) DO NOTHING
    """
)


# Timelines come back as text and are parsed with orjson: the JSONB type's json.loads was a visible cost.
_LOCK_ENTITIES = text(
    """
    SELECT e.kind, e.entity_id, e.owner_id, e.entries::text, e.contribution::text
    FROM rep_entity e
    JOIN unnest(CAST(:kinds AS text[]), CAST(:ids AS text[])) AS k(kind, entity_id)
      ON e.kind = k.kind AND e.entity_id = k.entity_id
    ORDER BY e.kind, e.entity_id
    FOR UPDATE OF e
    """
)


async def lock_entities(session: AsyncSession, keys: list[EntityKey]) -> dict[EntityKey, Timeline]:
    """The rows of the entities a batch writes, in one query, locked in key order (no deadlock between batches).

    Nearly every entity is written only by the consumer of its key's partition, so these locks are not waited
    for in normal running; they keep a late straggler of a rebalance from interleaving with a batch. A
    timeline that two topics write (`domain.SHARED_KINDS`) is created empty first when missing: a row lock
    cannot guard a row that does not exist yet, and two consumers creating it at once would each save only
    their own entries.
    """
    shared = sorted(k for k in keys if k[0] in domain.SHARED_KINDS)
    if shared:
        await session.execute(_CLAIM_SHARED, {"kinds": [k for k, _ in shared], "ids": [i for _, i in shared]})
    rows = await session.execute(_LOCK_ENTITIES, {"kinds": [k for k, _ in keys], "ids": [i for _, i in keys]})
    return {(k, i): (o, orjson.loads(e), orjson.loads(c)) for k, i, o, e, c in rows}


async def lock_dependants(session: AsyncSession, owner_ids: list[str]) -> dict[EntityKey, Timeline]:
    """Entities located through these owners (persons of a family, members of a group, meals of a kitchen)."""
    rows = await session.execute(
        select(Entity.kind, Entity.entity_id, Entity.owner_id, Entity.entries, Entity.contribution)
        .where(Entity.owner_id.in_(owner_ids))
        .order_by(Entity.kind, Entity.entity_id)
        .with_for_update()
    )
    return {(k, i): (o, e, c) for k, i, o, e, c in rows}


async def lock_household(session: AsyncSession, family_ids: list[str]) -> dict[EntityKey, Timeline]:
    """The persons of these families (a wife's couple figures read her husband's timeline).

    Every registry event of a family is keyed by the family, so these rows are written by the same consumer
    as the batch and the lock is not waited for in normal running. A move is the exception (keyed by the old
    family, it touches the new one's persons): rare, and a batch that fails on it is retried by the consumer.
    """
    rows = await session.execute(_LOCK_HOUSEHOLD, {"owners": family_ids})
    return {(k, i): (o, orjson.loads(e), orjson.loads(c)) for k, i, o, e, c in rows}


_LOCK_HOUSEHOLD = text(
    """
    SELECT e.kind, e.entity_id, e.owner_id, e.entries::text, e.contribution::text
    FROM rep_entity e
    WHERE e.owner_id = ANY(CAST(:owners AS text[])) AND e.kind = 'person'
    ORDER BY e.kind, e.entity_id
    FOR UPDATE OF e
    """
)


async def read_timelines(
    session: AsyncSession, keys: list[EntityKey]
) -> dict[EntityKey, list[dict[str, Any]]]:
    """Owners' timelines for their Kampung KB, read without a lock (another partition may own them)."""
    if not keys:
        return {}
    rows = await session.execute(
        select(Entity.kind, Entity.entity_id, Entity.entries).where(
            tuple_(Entity.kind, Entity.entity_id).in_(keys)
        )
    )
    return {(k, i): e for k, i, e in rows}


_SAVE_ENTITIES = text(
    """
    INSERT INTO rep_entity (kind, entity_id, owner_id, entries, contribution)
    SELECT k, i, o, CAST(e AS jsonb), CAST(c AS jsonb) FROM unnest(
        CAST(:kinds AS text[]), CAST(:ids AS text[]), CAST(:owners AS text[]),
        CAST(:entries AS text[]), CAST(:contributions AS text[])
    ) AS t(k, i, o, e, c)
    ON CONFLICT (kind, entity_id) DO UPDATE SET
        owner_id = excluded.owner_id, entries = excluded.entries,
        contribution = excluded.contribution, updated_at = now()
    """
)


async def save_entities(
    session: AsyncSession,
    rows: list[tuple[str, str, str | None, list[dict[str, Any]], Mapping[str, int]]],
) -> None:
    """Every entity a batch changed, in one statement."""
    if not rows:
        return
    await session.execute(
        _SAVE_ENTITIES,
        {
            "kinds": [r[0] for r in rows],
            "ids": [r[1] for r in rows],
            "owners": [r[2] for r in rows],
            "entries": [orjson.dumps(r[3]).decode() for r in rows],
            "contributions": [orjson.dumps(dict(r[4])).decode() for r in rows],
        },
    )


# All fact deltas and freshness counts of one transaction are summed in memory and written once, just before
# it commits: the consumer applies a whole poll in one transaction. Fact deltas are only appended to
# rep_fact_pending, at the places the events name (village, Kampung KB, kitchen): adding them to the
# district-to-national rows is the rollup's work (`roll_up_pending`), apart from the projector. Nothing reads
# facts or projection_status inside a projection transaction, so deferring the writes changes nothing that
# anyone can observe.
_QUEUE_FACTS = text(
    """
    INSERT INTO rep_fact_pending (fact_key, value)
    SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:vals AS bigint[]))
    """
)
_BUFFER = "reporting.projection.pending"


@dataclass
class _Pending:
    """Writes owed by the current transaction; flushed by `before_commit`."""

    facts: dict[str, int] = field(default_factory=dict)
    status: dict[tuple[str, int], tuple[datetime, int]] = field(default_factory=dict)
    broken: bool = False


def _pending(session: AsyncSession) -> _Pending:
    pending = session.info.get(_BUFFER)
    if pending is None:
        pending = session.info[_BUFFER] = _Pending()
        event.listen(session.sync_session, "before_commit", _flush)
        event.listen(session.sync_session, "after_soft_rollback", _rolled_back)
    return cast(_Pending, pending)


_UPSERT_STATUS = text(
    """
    INSERT INTO projection_status (topic, partition, last_event_time, last_applied_at, events_applied)
    SELECT t, p, e, now(), n FROM unnest(
        CAST(:topics AS text[]), CAST(:partitions AS smallint[]), CAST(:times AS timestamptz[]),
        CAST(:counts AS bigint[])
    ) AS x(t, p, e, n)
    ON CONFLICT (topic, partition) DO UPDATE SET
        last_event_time = greatest(projection_status.last_event_time, excluded.last_event_time),
        last_applied_at = now(),
        events_applied = projection_status.events_applied + excluded.events_applied
    """
)


def _flush(sync_session: Session) -> None:
    # Runs inside the async session's greenlet, so the sync execute is fine here.
    pending: _Pending = sync_session.info[_BUFFER]
    if pending.broken:
        raise RuntimeError("a savepoint was rolled back over buffered projection writes")
    facts, pending.facts = pending.facts, {}
    keys = [k for k, v in facts.items() if v]
    if keys:
        sync_session.execute(_QUEUE_FACTS, {"keys": keys, "vals": [facts[k] for k in keys]})
    status, pending.status = pending.status, {}
    if status:
        items = sorted(status.items())
        sync_session.execute(
            _UPSERT_STATUS,
            {
                "topics": [t for (t, _), _ in items],
                "partitions": [p for (_, p), _ in items],
                "times": [e for _, (e, _) in items],
                "counts": [n for _, (_, n) in items],
            },
        )


def _rolled_back(sync_session: Session, transaction: SessionTransaction) -> None:
    pending: _Pending = sync_session.info[_BUFFER]
    if transaction.nested:
        # Which buffered writes belonged to the savepoint is unknown: fail the commit rather than guess.
        pending.broken = bool(pending.facts or pending.status)
    else:
        pending.facts, pending.status, pending.broken = {}, {}, False


def add_facts(session: AsyncSession, delta: Mapping[str, int]) -> None:
    """Queue a contribution difference for the rollup, when the transaction commits."""
    facts = _pending(session).facts
    for k, v in delta.items():
        facts[k] = facts.get(k, 0) + v


# The rollup takes a bounded number of queued deltas per transaction (whichever are committed: the
# projector's later appends are other rows), sums them per fact key and adds each sum to every row it rolls
# up into, in one statement: the expansion is `domain.regions_of` in SQL (the nation, each prefix of the
# code, the Kampung KB, the kitchen), done by the database because it was most of the rollup's time in
# Python; tests/reporting/test_scale_out.py checks the two agree. Only one rollup runs at a time
# (`try_lock_rollup`) and nothing else writes rep_fact, so no row order is needed against deadlocks.
_ROLL_UP = text(
    """
    WITH taken AS (
        DELETE FROM rep_fact_pending
        WHERE ctid = ANY(ARRAY(SELECT ctid FROM rep_fact_pending LIMIT :limit))
        RETURNING fact_key, value
    ), leaf AS MATERIALIZED (
        SELECT k[1] AS code, k[2] AS kkb, k[3] AS kitchen, k[4] AS grain, CAST(k[5] AS date) AS period_start,
               array_to_string(k[6:], '|') AS measure, v AS value
        FROM (SELECT string_to_array(fact_key, '|') AS k, sum(value) AS v FROM taken GROUP BY fact_key) t
    ), expanded AS (
        SELECT r.region, r.level, l.grain, l.period_start, l.measure, l.value
        FROM leaf l
        CROSS JOIN LATERAL (
            SELECT CAST(:national AS text), CAST(:level_national AS int)
            UNION ALL
            SELECT array_to_string(p.parts[1:i], '.'), i
            FROM (SELECT string_to_array(l.code, '.') AS parts) p,
                 generate_series(1, cardinality(p.parts)) AS i
            UNION ALL
            SELECT 'kkb:' || l.kkb, CAST(:level_kkb AS int) WHERE l.kkb <> ''
            UNION ALL
            SELECT 'dapur:' || l.kitchen, CAST(:level_kitchen AS int) WHERE l.kitchen <> ''
        ) AS r(region, level)
    ), taken_count AS (SELECT count(*) AS n FROM taken), upserted AS (
        INSERT INTO rep_fact (level, region, grain, period_start, measure, slot, value)
        SELECT level, region COLLATE "C", grain, period_start, measure, 0, sum(value)
        FROM expanded
        GROUP BY level, region COLLATE "C", grain, period_start, measure
        HAVING sum(value) <> 0
        ON CONFLICT (level, region, grain, period_start, measure, slot)
            DO UPDATE SET value = rep_fact.value + excluded.value
    ), place_delta AS (
        SELECT region, min(level) AS level, period_start AS month, measure, sum(value) AS value
        FROM expanded
        WHERE grain = 'm' AND ((level = :level_kkb AND measure = ANY(:area_stocks))
                               OR (level = :level_kitchen AND measure = ANY(:kitchen_stocks)))
        GROUP BY region, period_start, measure
    ), horizon AS (
        SELECT old, GREATEST(old, (SELECT max(month) FROM place_delta)) AS new
        FROM (SELECT max(month) AS old FROM rep_place_stock) o
    ), stocked AS (
        -- rep_place_stock holds every month up to the horizon (the latest month of any delta): when it moves
        -- on, each place's stock is carried into the new months; a delta adds to its month and every later
        -- one up to the horizon. Summed per row first, as ON CONFLICT may touch a row only once.
        INSERT INTO rep_place_stock (measure, month, region, level, value)
        SELECT measure, month, region, min(level), sum(value)
        FROM (
            SELECT s.measure, CAST(g AS date) AS month, s.region, s.level, s.value
            FROM rep_place_stock s
            JOIN horizon h ON s.month = h.old AND h.new > h.old
            CROSS JOIN generate_series(h.old + interval '1 month', h.new, interval '1 month') AS g
            UNION ALL
            SELECT d.measure, CAST(g AS date), d.region, d.level, d.value
            FROM place_delta d
            CROSS JOIN horizon h
            CROSS JOIN generate_series(d.month, h.new, interval '1 month') AS g
        ) carried
        GROUP BY measure, month, region
        HAVING sum(value) <> 0
        ON CONFLICT (measure, month, region) DO UPDATE SET value = rep_place_stock.value + excluded.value
    )
    SELECT n FROM taken_count
    """
)


# What the rollup would have kept in rep_place_stock, from rep_fact's monthly deltas (the migration that
# added the table, the query bench's generated facts). Only code constants are filled in.
_PLACE_STOCKS_FROM_FACTS = """
INSERT INTO rep_place_stock (measure, month, region, level, value)
WITH d AS (
    SELECT region, measure, min(level) AS level, period_start AS month, sum(value) AS value
    FROM rep_fact
    WHERE grain = 'm' AND ((level = {level_kkb} AND measure IN ({area_stocks}))
                           OR (level = {level_kitchen} AND measure IN ({kitchen_stocks})))
    GROUP BY region, measure, period_start
), grid AS (
    -- every month from each place's first delta to the latest month of any, with that month's delta or 0
    SELECT measure, month, region, min(level) AS level, sum(value) AS value
    FROM (
        SELECT k.measure, CAST(g AS date) AS month, k.region, k.level, 0 AS value
        FROM (SELECT region, measure, min(level) AS level, min(month) AS first FROM d GROUP BY 1, 2) k
        CROSS JOIN (SELECT max(month) AS horizon FROM d) h
        CROSS JOIN generate_series(k.first, h.horizon, interval '1 month') AS g
        UNION ALL
        SELECT measure, month, region, level, value FROM d
    ) u
    GROUP BY measure, month, region
), running AS (
    SELECT measure, month, region, level,
           sum(value) OVER (PARTITION BY region, measure ORDER BY month) AS value
    FROM grid
)
SELECT measure, month, region, level, value FROM running WHERE value <> 0
"""


def place_stocks_from_facts() -> str:
    """SQL filling an empty rep_place_stock from rep_fact."""

    def listed(measures: tuple[str, ...]) -> str:
        return ", ".join(f"'{m}'" for m in measures)

    return _PLACE_STOCKS_FROM_FACTS.format(
        level_kkb=domain.LEVEL_KAMPUNG_KB,
        level_kitchen=domain.LEVEL_KITCHEN,
        area_stocks=listed(domain.AREA_STOCKS),
        kitchen_stocks=listed(domain.KITCHEN_STOCKS),
    )


# Any constant shared by every reporting process; transaction-scoped, so a crashed rollup frees it.
_ROLLUP_LOCK = 0x7265705F726F6C6C  # "rep_roll"


async def try_lock_rollup(session: AsyncSession) -> bool:
    """Become the one rollup for this transaction, or learn that another process is rolling up."""
    got = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _ROLLUP_LOCK})
    return bool(got.scalar_one())


async def roll_up_pending(session: AsyncSession, limit: int) -> int:
    """Add up to `limit` queued deltas to every fact row they roll up into; returns how many were taken."""
    # The grouping of a full batch spilled to disk with the default work_mem.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    taken = await session.execute(
        _ROLL_UP,
        {
            "limit": limit,
            "national": domain.NATIONAL,
            "level_national": domain.LEVEL_NATIONAL,
            "level_kkb": domain.LEVEL_KAMPUNG_KB,
            "level_kitchen": domain.LEVEL_KITCHEN,
            "area_stocks": list(domain.AREA_STOCKS),
            "kitchen_stocks": list(domain.KITCHEN_STOCKS),
        },
    )
    return int(taken.scalar_one())


_SAVE_PLACES = text(
    """
    INSERT INTO rep_place (region, slot, village_code, kampung_kb, seen_at)
    SELECT * FROM unnest(
        CAST(:regions AS text[]), CAST(:slots AS smallint[]), CAST(:villages AS text[]),
        CAST(:kkbs AS text[]), CAST(:seen AS timestamptz[])
    )
    ON CONFLICT (region, slot) DO UPDATE SET
        village_code = excluded.village_code, kampung_kb = excluded.kampung_kb, seen_at = excluded.seen_at
    WHERE rep_place.seen_at <= excluded.seen_at
    """
)


async def save_places(
    session: AsyncSession, places: list[tuple[str, int, str, str | None, datetime]]
) -> None:
    """Where Kampung KBs and kitchens lie, one row per region and slot (a late event never moves it back)."""
    rows = sorted(places)
    await session.execute(
        _SAVE_PLACES,
        {
            "regions": [p[0] for p in rows],
            "slots": [p[1] for p in rows],
            "villages": [p[2] for p in rows],
            "kkbs": [p[3] for p in rows],
            "seen": [p[4] for p in rows],
        },
    )


async def save_enrolments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """DASHAT enrolment rows (a redelivered or updated enrolment replaces its row)."""
    stmt = insert(Enrolment).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Enrolment.enrolment_id],
            set_={k: stmt.excluded[k] for k in rows[0] if k != "enrolment_id"},
        )
    )


def touch_status(session: AsyncSession, topic: str, partition: int, event_time: datetime, count: int) -> None:
    """Freshness per topic partition: latest event time applied (never moves back), events applied; at commit."""
    status = _pending(session).status
    latest, seen = status.get((topic, partition), (event_time, 0))
    status[(topic, partition)] = (max(latest, event_time), seen + count)


_SET_OFFSET_LAG = text(
    """
    INSERT INTO projection_status (topic, partition, events_applied, offset_lag)
    SELECT t, p, 0, l FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS smallint[]), CAST(:lags AS bigint[]))
        AS x(t, p, l)
    ON CONFLICT (topic, partition) DO UPDATE SET offset_lag = excluded.offset_lag
    WHERE projection_status.offset_lag IS DISTINCT FROM excluded.offset_lag
    """
)


async def set_offset_lag(session: AsyncSession, lags: Mapping[tuple[str, int], int]) -> None:
    """How far behind each assigned partition is, in one statement; each consumer writes only its own
    partitions' rows, and only those whose lag changed."""
    items = sorted(lags.items())
    await session.execute(
        _SET_OFFSET_LAG,
        {
            "topics": [t for (t, _), _ in items],
            "partitions": [p for (_, p), _ in items],
            "lags": [lag for _, lag in items],
        },
    )
