"""Scenario 8: every topic replayed from offset 0 into every consumer changes no state, and the reporting
rebuild (a replay into fresh tables) equals what the incremental projector built."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from shared.kafka import security_options
from tests.e2e.stack import Stack
from tests.faults.observe import GROUPS, Databases, group_lag, partitions_of

CONSUMING = {"uppka": "uppka.projector", "dashat": "dashat.projector", "reporting": "reporting.projector"}
# Bookkeeping, not state: which events were seen, stored answers to retried requests, the schema version.
NOT_STATE = {"inbox", "alembic_version", "idempotency_key", "idempotency_keys"}
# Wall-clock columns a rebuild writes anew (the incremental projector wrote them when it applied the event).
WALL_CLOCK = ("updated_at", "seen_at", "last_applied_at", "queued_at", "enrolled_at")
PROJECTION = ["rep_fact", "rep_place_stock", "rep_entity", "rep_place", "rep_enrolment"]
# A figure is the sum of its rows: the incremental rollup leaves a row at 0 where a fact was added and later
# taken back in another round (a retracted case), the rebuild nets them in one round and writes no row; the
# same holds for a place's stock as at a month.
SAME_FIGURES = {"rep_fact": "value <> 0", "rep_place_stock": "value <> 0"}


async def digests(
    dbs: Databases,
    service: str,
    tables: list[str] | None = None,
    *,
    drop: tuple[str, ...] = (),
    where: dict[str, str] | None = None,
) -> dict[str, str]:
    """Per table: row count and an md5 over its rows (as JSON, minus `drop` columns), order-independent."""
    pool = dbs.conns[service]
    if tables is None:
        tables = [
            r[0]
            for r in await pool.fetch(
                "select tablename from pg_tables where schemaname = 'public' order by 1"
            )
            if r[0] not in NOT_STATE
        ]
    out = {}
    for table in tables:
        row = await pool.fetchrow(
            f"select count(*) as n, md5(coalesce(string_agg(j, ',' order by j), '')) as h"  # noqa: S608
            f' from (select (to_jsonb(t) - $1::text[])::text as j from "{table}" t'
            f" where {(where or {}).get(table, 'true')}) x",
            list(drop),
        )
        assert row is not None
        out[table] = f"{row['n']}:{row['h']}"
    return out


async def _rewind(bootstrap: str, stack: Stack, group: str) -> int:
    """Commit offset 0 on every partition the (stopped) group reads; returns the records it will see again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000, **security_options())
    await admin.start()
    try:
        partitions = await partitions_of(admin, [t + stack.suffix for t in GROUPS[group]])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group + stack.suffix,
        enable_auto_commit=False,
        **security_options(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in partitions})
        return sum(ends.values())
    finally:
        await consumer.stop()


async def _caught_up(bootstrap: str, stack: Stack, timeout: float) -> float:
    t0 = time.monotonic()
    calm = 0
    while calm < 3:
        lag = await group_lag(bootstrap, stack)
        calm = calm + 1 if not any(lag.values()) else 0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"replay not consumed after {timeout}s: {lag}")
        await asyncio.sleep(0.5)
    return time.monotonic() - t0


async def replay_and_rebuild(stack: Stack, dbs: Databases, bootstrap: str, log_dir: Path) -> dict[str, Any]:
    before = {s: await digests(dbs, s) for s in CONSUMING}
    for service in CONSUMING:
        await asyncio.to_thread(stack.stop, service, "consumer")
    replayed = {g: await _rewind(bootstrap, stack, g) for g in GROUPS}
    for service in CONSUMING:
        stack.start(service, "consumer")
    replay_seconds = await _caught_up(bootstrap, stack, timeout=600)
    after = {s: await digests(dbs, s) for s in CONSUMING}
    changed = {
        f"{s}.{t}": (before[s].get(t), after[s].get(t))
        for s in CONSUMING
        for t in before[s].keys() | after[s].keys()
        if before[s].get(t) != after[s].get(t)
    }

    # The rebuild: projector stopped, every topic replayed into fresh tables, swapped in.
    incremental = await digests(dbs, "reporting", PROJECTION, drop=WALL_CLOCK, where=SAME_FIGURES)
    await asyncio.to_thread(stack.stop, "reporting", "consumer")
    t0 = time.monotonic()
    with (log_dir / "reporting-rebuild.log").open("ab") as out:
        done = await asyncio.to_thread(
            subprocess.run,
            [str(Path(sys.executable).parent / "kencana"), "reporting", "rebuild", "--timeout", "600"],
            env=stack.env("reporting"),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=660,
        )
    rebuild_seconds = time.monotonic() - t0
    stack.start("reporting", "consumer")
    rebuilt = await digests(dbs, "reporting", PROJECTION, drop=WALL_CLOCK, where=SAME_FIGURES)
    return {
        "replay": {
            "records_replayed": replayed,
            "seconds": round(replay_seconds, 1),
            "tables_compared": sum(len(v) for v in before.values()),
            "tables_changed": changed,
        },
        "rebuild": {
            "exit_code": done.returncode,
            "seconds": round(rebuild_seconds, 1),
            "tables_compared": len(PROJECTION),
            "tables_different": {
                t: (incremental[t], rebuilt[t]) for t in PROJECTION if incremental[t] != rebuilt[t]
            },
        },
    }
