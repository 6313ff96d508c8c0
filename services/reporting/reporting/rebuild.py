"""Rebuild the projections: replay every topic from the beginning into shadow tables, then swap them in.

The projector should be stopped while this runs: events it applied after the replay's end offsets would
exist only in the old tables.

A rebuild from part of the history would swap in indicators that silently miss every deleted event, so it
refuses first when a topic no longer holds its first event (shared.history), and again before the swap when the
replay found offsets without events; the live tables are then left untouched.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from aiokafka import TopicPartition
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.config import Settings
from reporting.consumer import TOPICS, build_runner, consumer_name
from reporting.models import Base, inbox, load_all_models
from reporting.projection import rollup
from shared.db import create_engine, create_sessionmaker
from shared.history import IncompleteHistory, read_gaps, require_complete_history
from shared.logging import get_logger

log = get_logger(__name__)

SHADOW, OLD = "reporting_rebuild", "reporting_old"


def projection_tables() -> list[Table]:
    """The tables a rebuild replaces: every read model plus the inbox that says what they contain."""
    load_all_models()
    names = {
        "rep_fact",
        "rep_fact_pending",
        "rep_place_stock",
        "rep_entity",
        "rep_place",
        "rep_enrolment",
        "projection_status",
    }
    return [t for t in Base.metadata.sorted_tables if t.name in names] + [inbox]


@dataclass
class RebuildReport:
    events_applied: int
    duplicates: int
    dead_lettered: int
    facts: int


async def _create_shadow(engine: AsyncEngine, tables: list[Table]) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SHADOW}"))
        await conn.execute(text(f"SET LOCAL search_path TO {SHADOW}"))
        # Same DDL as the migrations (the drift test keeps models and migrations equal).
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))


async def _replay(
    settings: Settings,
    shadow_engine: AsyncEngine,
    timeout: float,
    start: dict[TopicPartition, tuple[int, int]],
) -> RebuildReport:
    group = f"{consumer_name(settings)}.rebuild.{uuid.uuid4().hex[:8]}"
    runner = build_runner(settings, create_sessionmaker(shadow_engine), name=group)
    await runner.start()
    try:
        async with asyncio.timeout(timeout):
            while not runner.assignment():
                await runner.poll_once(timeout_ms=300)
            partitions = sorted(runner.assignment())
            # The end offsets at the start are the replay's goal; later events belong to the projector.
            ends = await runner.end_offsets(partitions)
            while True:
                positions = [await runner.position(tp) for tp in partitions]
                if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                    break
                await runner.poll_once(timeout_ms=300)
            gaps = read_gaps(start, runner.records_read, dict(zip(partitions, positions, strict=True)))
    finally:
        await runner.close()
    if gaps:
        raise IncompleteHistory(gaps)
    # The swapped-in facts are complete: nothing the replay queued is left for the live rollup.
    await rollup.settle(create_sessionmaker(shadow_engine))
    async with shadow_engine.begin() as conn:
        # The live projector finds the replayed events in its inbox, so it never applies them twice.
        await conn.execute(text("UPDATE inbox SET consumer = :live"), {"live": consumer_name(settings)})
        facts = (await conn.execute(text("SELECT count(*) FROM rep_fact"))).scalar_one()
    o = runner.outcome
    return RebuildReport(o.applied, o.duplicates, o.dead_lettered, int(facts))


async def _applied_per_topic(engine: AsyncEngine, settings: Settings) -> dict[str, int]:
    """Distinct events the live projections were built from, per topic (the inbox; event types start with the
    service that owns the topic: `registry.family.registered.v1` came from `kencana.registry`)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT split_part(event_type, '.', 1), count(*) FROM inbox WHERE consumer = :live GROUP BY 1"
            ),
            {"live": consumer_name(settings)},
        )
        counts = {service: int(n) for service, n in rows}
    return {settings.topic(t): counts.get(t.removeprefix("kencana."), 0) for t in TOPICS}


async def _swap(engine: AsyncEngine, tables: list[Table]) -> None:
    """One transaction: readers see either the old tables or the new ones, never a mix."""
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {OLD} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {OLD}"))
        for table in tables:
            await conn.execute(text(f"ALTER TABLE public.{table.name} SET SCHEMA {OLD}"))
            await conn.execute(text(f"ALTER TABLE {SHADOW}.{table.name} SET SCHEMA public"))
        await conn.execute(text(f"DROP SCHEMA {OLD} CASCADE"))
        await conn.execute(text(f"DROP SCHEMA {SHADOW} CASCADE"))


async def rebuild(settings: Settings, *, timeout: float = 3600.0) -> RebuildReport:
    """Replay all topics into fresh tables and swap them in atomically.

    Raises IncompleteHistory, changing nothing, when a topic no longer holds its whole history.
    """
    tables = projection_tables()
    engine = create_engine(settings.database_url, pool_size=2)
    shadow_engine = create_engine(
        settings.database_url, pool_size=2, connect_args={"server_settings": {"search_path": SHADOW}}
    )
    try:
        topics = [settings.topic(t) for t in TOPICS]
        start, risks = await require_complete_history(
            settings.kafka_bootstrap_servers, topics, applied=await _applied_per_topic(engine, settings)
        )
        for risk in risks:
            log.warning(
                "rebuild_history_will_expire", topic=risk.topic, setting=risk.setting, value=risk.value
            )
        await _create_shadow(engine, tables)
        try:
            report = await _replay(settings, shadow_engine, timeout, start)
        except IncompleteHistory:
            await shadow_engine.dispose()
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE"))
            raise
        await shadow_engine.dispose()
        await _swap(engine, tables)
        log.info("rebuild_done", applied=report.events_applied, facts=report.facts)
        return report
    finally:
        await shadow_engine.dispose()
        await engine.dispose()
