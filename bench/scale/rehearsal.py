"""The rehearsal: the four services as real processes on databases and topics of their own, the province file
imported through `POST /v1/imports`, then a wait (with a deadline) until every consumer has caught up.

Caught up means: every outbox drained (registry, uppka, dashat) and every consumer group (uppka, dashat,
reporting) at lag 0 on all the topics it reads, at the same moment. Figures are sampled every few seconds from
outside the processes (Kafka admin offsets, the outbox tables, /proc), so the rehearsal measures the services
exactly as they run, without touching their code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.proc import cpu_seconds
from shared.auth import issue_dev_token
from shared.config import kafka_bootstrap_servers, pg_server_url
from shared.kafka import delete_topics, security_options
from shared.testing.plugin import CHECKOUT_TAG, unique
from tests.e2e.stack import ROLES, SERVICES, Stack

CONSUMERS = {  # consumer group purpose and the logical topics each service's consumer reads
    "uppka": ["kencana.registry", "kencana.dashat"],
    "dashat": ["kencana.registry", "kencana.uppka"],
    "reporting": ["kencana.registry", "kencana.uppka", "kencana.dashat"],
}
PUBLISHERS = ("registry", "uppka", "dashat")  # services with an outbox
LOGICAL_TOPICS = ("kencana.registry", "kencana.uppka", "kencana.dashat")
DATABASE_PREFIX = "scale"


@dataclass
class ScaleStack(Stack):
    """The end-to-end stack, on `scale_*` databases, production-like partitions and a large import body."""

    partitions: int = 6
    import_max_bytes: int = 256 * 1024 * 1024

    def env(self, service: str) -> dict[str, str]:
        env = super().env(service)
        env[f"{service.upper()}_TOPIC_PARTITIONS"] = str(self.partitions)
        if service == "registry":
            env["REGISTRY_IMPORT_MAX_BYTES"] = str(self.import_max_bytes)
        return env

    def topic(self, logical: str) -> str:
        return logical + self.suffix

    def group(self, service: str) -> str:
        return f"{service}.projector{self.suffix}"


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def token() -> str:
    # A fresh token per call: a rehearsal outlives a dev token's expiry.
    return issue_dev_token(scopes=["registry:import", "registry:read"], region=None, sub="scale-rehearsal")


def parts(path: Path, max_bytes: int) -> Iterator[bytes]:
    """The file cut into uploads of about `max_bytes`, each with the header, never splitting a family."""
    with path.open("rb") as fh:
        header = fh.readline()
        buf: list[bytes] = [header]
        size = len(header)
        last_kk = b""
        for line in fh:
            kk = line.split(b",", 1)[0]
            if size >= max_bytes and kk != last_kk:
                yield b"".join(buf)
                buf, size = [header], len(header)
            buf.append(line)
            size += len(line)
            last_kk = kk
        if len(buf) > 1:
            yield b"".join(buf)


def proc_figures(pid: int) -> tuple[int, int, float]:
    """(current RSS, peak RSS) in bytes and CPU seconds (user + system) of a live process, from /proc."""
    rss = hwm = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, max(rss, hwm), cpu_seconds(pid) or 0.0


@dataclass
class Sample:
    t: float  # seconds since the first upload
    consumed: dict[str, int]  # consumer service -> committed offsets summed over its topics
    lag: dict[str, int]
    pending: dict[str, int]  # publishing service -> unpublished outbox rows
    published: dict[str, int]  # logical topic -> end offsets summed


@dataclass
class Observer:
    """Samples offsets, outboxes and process memory; keeps the timeline for the figures."""

    stack: ScaleStack
    bootstrap: str
    samples: list[Sample] = field(default_factory=list)
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    _admin: AIOKafkaAdminClient | None = None
    _consumer: AIOKafkaConsumer | None = None
    _pools: dict[str, asyncpg.Connection] = field(default_factory=dict)
    _partitions: dict[str, list[TopicPartition]] = field(default_factory=dict)

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **security_options())
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, **security_options()
        )
        await self._consumer.start()
        for service in PUBLISHERS:
            self._pools[service] = await asyncpg.connect(dsn(self.stack.urls[service]))

    async def close(self) -> None:
        for conn in self._pools.values():
            with contextlib.suppress(Exception):
                await conn.close()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        if topic not in self._partitions:
            assert self._consumer is not None
            found = self._consumer.partitions_for_topic(topic)
            if not found:
                await self._consumer._client.force_metadata_update()
                found = self._consumer.partitions_for_topic(topic)
            if not found:
                return []
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(found)]
        return self._partitions[topic]

    async def end_offsets(self, topics: list[str]) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        tps = [tp for t in topics for tp in await self.partitions(t)]
        if not tps:
            return {}
        return dict(await self._consumer.end_offsets(tps))

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        assert self._admin is not None
        offsets = await self._admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def sample(self, t0: float) -> Sample:
        topics = [self.stack.topic(t) for t in LOGICAL_TOPICS]
        ends = await self.end_offsets(topics)
        published = {
            logical: sum(v for tp, v in ends.items() if tp.topic == self.stack.topic(logical))
            for logical in LOGICAL_TOPICS
        }
        consumed, lag = {}, {}
        for service, logical in CONSUMERS.items():
            mine = {self.stack.topic(t) for t in logical}
            done = await self.committed(self.stack.group(service))
            consumed[service] = sum(v for tp, v in done.items() if tp.topic in mine)
            lag[service] = sum(max(0, v - done.get(tp, 0)) for tp, v in ends.items() if tp.topic in mine)
        pending = {
            s: int(await c.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
            for s, c in self._pools.items()
        }
        for (service, role), proc in self.stack.procs.items():
            if proc.poll() is None:
                rss, hwm, cpu = proc_figures(proc.pid)
                key = f"{service}-{role}"
                self.peak_rss[key] = max(self.peak_rss.get(key, 0), hwm, rss)
                self.cpu_seconds[key] = cpu
        s = Sample(round(time.monotonic() - t0, 2), consumed, lag, pending, published)
        self.samples.append(s)
        return s

    async def dead_letters(self) -> dict[str, int]:
        out = {}
        for service in CONSUMERS:
            topic = self.stack.group(service) + ".dlq"
            ends = await self.end_offsets([topic])
            out[service] = sum(ends.values())
        return out


@dataclass
class Settings:
    """What one rehearsal run does."""

    file: Path
    work_dir: Path
    part_bytes: int = 50 * 1024 * 1024
    partitions: int = 6
    deadline_seconds: float = 2 * 3600
    sample_seconds: float = 3.0
    keep: bool = False


async def _upload_and_import(
    stack: ScaleStack, settings: Settings, observer: Observer, t0: float
) -> dict[str, Any]:
    """POST every part (each becomes a job), then poll the jobs to the end while sampling."""
    figures: dict[str, Any] = {"parts": 0, "jobs": []}
    base = stack.base_url("registry")
    timeout = httpx.Timeout(600, connect=10)
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
        locations: list[str] = []
        for body in parts(settings.file, settings.part_bytes):
            r = await client.post(
                "/v1/imports",
                params={"mode": "commit"},
                content=body,
                headers={"Authorization": f"Bearer {token()}", "Content-Type": "text/csv"},
            )
            if r.status_code not in (201, 202):
                raise RuntimeError(
                    f"the registry refused part {len(locations) + 1}: {r.status_code} {r.text}"
                )
            locations.append(r.headers["Location"])
            figures["parts"] += 1
            print(f"[scale] uploaded part {len(locations)} ({len(body) / 1e6:.0f} MB)", flush=True)
        figures["upload_seconds"] = round(time.monotonic() - t0, 1)
        jobs: dict[str, dict[str, Any]] = {}
        last_print = 0.0
        while True:
            for loc in locations:
                if jobs.get(loc, {}).get("status") not in ("done", "failed"):
                    r = await client.get(loc, headers={"Authorization": f"Bearer {token()}"})
                    r.raise_for_status()
                    jobs[loc] = r.json()
            sample = await observer.sample(t0)
            finished = [j for j in jobs.values() if j["status"] in ("done", "failed")]
            if time.monotonic() - last_print > 10 or len(finished) == len(locations):
                done_rows = sum(j["processed_rows"] or 0 for j in jobs.values())
                total_rows = sum(j["total_rows"] or 0 for j in jobs.values())
                print(
                    f"[scale] {sample.t:7.0f}s import {done_rows:,}/{total_rows:,} rows, "
                    f"{len(finished)}/{len(locations)} jobs; {_state(sample)}",
                    flush=True,
                )
                last_print = time.monotonic()
            if len(finished) == len(locations):
                break
            if time.monotonic() - t0 > settings.deadline_seconds:
                raise TimeoutError(f"the import did not finish within {settings.deadline_seconds:.0f} s")
            await asyncio.sleep(settings.sample_seconds)
    figures["import_seconds"] = round(time.monotonic() - t0, 1)
    figures["jobs"] = [
        {"status": j["status"], "rows": j["total_rows"], "summary": j.get("summary"), "error": j.get("error")}
        for j in jobs.values()
    ]
    failed = [j for j in jobs.values() if j["status"] == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} import job(s) failed: {[j.get('error') for j in failed]}")
    return figures


def _state(s: Sample) -> str:
    lag = " ".join(f"{k}={v:,}" for k, v in s.lag.items())
    pending = " ".join(f"{k}={v:,}" for k, v in s.pending.items())
    return f"outbox pending {pending}; lag {lag}"


async def _wait_caught_up(settings: Settings, observer: Observer, t0: float) -> bool:
    """Sample until every outbox is drained and every group is at lag 0 (twice in a row), or the deadline."""
    last_print, quiet = 0.0, 0
    while True:
        observer.stack.assert_alive()
        s = await observer.sample(t0)
        idle = not any(s.pending.values()) and not any(s.lag.values())
        quiet = quiet + 1 if idle else 0
        if time.monotonic() - last_print > 10 or quiet >= 2:
            print(f"[scale] {s.t:7.0f}s {_state(s)}", flush=True)
            last_print = time.monotonic()
        if quiet >= 2:
            return True
        if time.monotonic() - t0 > settings.deadline_seconds:
            return False
        await asyncio.sleep(settings.sample_seconds)


def _first_settled(samples: list[Sample], ok: Any) -> float | None:
    """Time of the first sample from which `ok` holds on every later sample."""
    settled = None
    for s in samples:
        if not ok(s):
            settled = None
        elif settled is None:
            settled = s.t
    return settled


def _rates(
    samples: list[Sample], service: str, caught_up: float | None, window: float = 15.0
) -> dict[str, Any]:
    """Events the group committed, over its active time (first progress to caught up), and its best window."""
    start = samples[0].consumed[service]
    moving = next((s.t for s in samples if s.consumed[service] > start), None)
    events = samples[-1].consumed[service] - start
    out: dict[str, Any] = {"events": events, "caught_up": caught_up is not None}
    # A consumer still behind at the deadline: its rate up to the last sample is what it reached.
    end = caught_up if caught_up is not None else samples[-1].t
    if moving is None or end <= moving:
        return out | {"events_per_s": None, "peak_events_per_s": None}
    # The sample before the first move bounds the start from below.
    first = max((s.t for s in samples if s.t < moving), default=moving)
    peak = 0.0
    j = 0
    for i, s in enumerate(samples):
        while samples[j].t < s.t - window:
            j += 1
        if i > j and s.t > samples[j].t:
            peak = max(peak, (s.consumed[service] - samples[j].consumed[service]) / (s.t - samples[j].t))
    return out | {
        "active_seconds": round(end - first, 1),
        "events_per_s": round(events / (end - first)),
        "peak_events_per_s": round(peak),
    }


async def _database_bytes(stack: ScaleStack) -> dict[str, int]:
    out = {}
    for service in SERVICES:
        conn = await asyncpg.connect(dsn(stack.urls[service]))
        try:
            out[service] = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()
    return out


async def _database_figures(stack: ScaleStack, empty: dict[str, int]) -> dict[str, Any]:
    """Database size and the largest tables per service; events per type with their size (registry outbox)."""
    out: dict[str, Any] = {}
    for service in SERVICES:
        conn = await asyncpg.connect(dsn(stack.urls[service]))
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            tables = await conn.fetch(
                "SELECT relname, n_live_tup, pg_total_relation_size(relid) AS bytes FROM pg_stat_user_tables "
                "ORDER BY pg_total_relation_size(relid) DESC LIMIT 6"
            )
            out[service] = {
                "database_mb": round(size / 1e6),
                # What the data added to the freshly migrated database (reference tables are not per family).
                "data_mb": round((size - empty[service]) / 1e6, 1),
                "largest_tables": {
                    r["relname"]: {"rows": r["n_live_tup"], "mb": round(r["bytes"] / 1e6, 1)} for r in tables
                },
            }
            if service in PUBLISHERS:
                # Sizes from a sample of the outbox: rendering millions of envelopes as text takes minutes.
                rows = await conn.fetch(
                    "WITH n AS (SELECT event_type, count(*) AS n FROM outbox GROUP BY event_type), "
                    "b AS (SELECT event_type, avg(octet_length(envelope::text))::int AS bytes "
                    "      FROM outbox TABLESAMPLE BERNOULLI (5) REPEATABLE (1) GROUP BY event_type) "
                    "SELECT n.event_type, n.n, coalesce(b.bytes, (SELECT avg(octet_length(envelope::text))::int "
                    "FROM outbox o WHERE o.event_type = n.event_type LIMIT 1)) AS bytes "
                    "FROM n LEFT JOIN b USING (event_type) ORDER BY n.n DESC"
                )
                out[service]["events_by_type"] = {r["event_type"]: {"count": r["n"], "avg_bytes": r["bytes"]}
                                                  for r in rows}  # fmt: skip
        finally:
            await conn.close()
    return out


async def _drop_databases(stack: ScaleStack) -> None:
    conn = await asyncpg.connect(dsn(pg_server_url()) + "/postgres")
    try:
        for service in SERVICES:
            await conn.execute(
                f'DROP DATABASE IF EXISTS "{DATABASE_PREFIX}_{service}_{CHECKOUT_TAG}" WITH (FORCE)'
            )
    finally:
        await conn.close()


async def rehearse(settings: Settings) -> dict[str, Any]:
    """Run the rehearsal on an already generated file; every process started here is stopped here."""
    bootstrap = kafka_bootstrap_servers()
    log_dir = settings.work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = ScaleStack(
        log_dir=log_dir,
        suffix="." + unique("scale"),
        database_prefix=DATABASE_PREFIX,
        partitions=settings.partitions,
        import_max_bytes=max(settings.part_bytes * 2, 16 * 1024 * 1024),
    )
    stages: dict[str, float | None] = {}
    result: dict[str, Any] = {"topic_suffix": stack.suffix, "partitions": settings.partitions}
    started = time.monotonic()
    print(f"[scale] migrating fresh databases, starting the services (logs in {log_dir})", flush=True)
    await stack.prepare()
    empty = await _database_bytes(stack)
    observer = Observer(stack, bootstrap)
    try:
        await stack.start_all()
        stages["start_services"] = round(time.monotonic() - started, 1)
        await observer.start()
        t0 = time.monotonic()
        await observer.sample(t0)
        result["import"] = {"parts": 0, "jobs": []}
        try:
            imported = await _upload_and_import(stack, settings, observer, t0)
            stages["upload"] = imported.pop("upload_seconds")
            stages["import_job"] = imported.pop("import_seconds")
            result["import"] = imported
            caught_up = await _wait_caught_up(settings, observer, t0)
        except (RuntimeError, TimeoutError, AssertionError, httpx.HTTPError) as exc:
            # An hour of figures is worth keeping even when the run fails: they say how far it got.
            print(f"[scale] FAILED: {exc}", flush=True)
            result["error"] = f"{type(exc).__name__}: {exc}"[:4000]
            caught_up = False
        result["caught_up"] = caught_up
        samples = observer.samples
        last = samples[-1]
        for service in PUBLISHERS:
            # Drained for good: nothing pending and nothing more to come (dashat's enrolments keep coming
            # as long as its consumer reads the registry's measurements).
            topic = f"kencana.{service}"
            drained = _first_settled(
                samples,
                lambda s, x=service, t=topic: s.pending[x] == 0 and s.published[t] == last.published[t],
            )
            stages[f"{service}_outbox_drained"] = drained if last.published[topic] else None
        consumers: dict[str, Any] = {}
        for service in CONSUMERS:
            # Caught up for good: no lag from then on (a consumer at lag 0 may get new events from another).
            # Also when another consumer missed the deadline: its own catching up is a figure of the run.
            at = _first_settled(samples, lambda s, x=service: s.lag[x] == 0)
            stages[f"{service}_caught_up"] = at
            consumers[service] = _rates(samples, service, at)
        stages["all_caught_up"] = samples[-1].t if caught_up else None
        result["consumers"] = consumers
        result["events_per_topic"] = samples[-1].published
        result["dead_letters"] = await observer.dead_letters()
        result["databases"] = await _database_figures(stack, empty)
        result["timeline"] = [
            {"t": s.t, "consumed": s.consumed, "lag": s.lag, "pending": s.pending, "published": s.published}
            for s in samples[:: max(1, len(samples) // 200)]
        ]
    finally:
        print("[scale] stopping the services, deleting the rehearsal's topics and databases", flush=True)
        await observer.close()
        stack.stop_all()
        if not settings.keep:
            await delete_topics(
                bootstrap,
                [stack.topic(t) for t in LOGICAL_TOPICS] + [stack.group(s) + ".dlq" for s in CONSUMERS],
            )
            await _drop_databases(stack)
    result["stages_seconds"] = stages
    result["peak_rss_mb"] = {k: round(v / 1e6) for k, v in sorted(observer.peak_rss.items())}
    result["cpu_seconds"] = {k: round(v, 1) for k, v in sorted(observer.cpu_seconds.items())}
    result["processes"] = [f"{s}-{r}" for s in SERVICES for r in ROLES[s]]
    return result
