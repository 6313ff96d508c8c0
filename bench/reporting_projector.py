"""Reporting projector throughput on a realistic event mix, beside a bare consumer reading the same topics.

Produces N registry/uppka/dashat envelopes (families with persons, KB changes, measurements, stunting cases,
UPPKA groups with members and reports, DASHAT kitchens with enrolments, meals and ledger entries) to unique
topics (6 partitions each), then times:
- a bare Kafka consumer that parses the envelopes and does nothing (the ceiling);
- the reporting projector (`reporting.consumer.build_runner`, with its fact rollup loop) into a fresh migrated
  database, as one process, until every event is applied and rolled up into the facts;
- two projector processes in one consumer group on the same topics (from empty tables again), while the
  database's backends are sampled for lock waits (`pg_stat_activity.wait_event_type = 'Lock'`).
The three sides run in alternating rounds and each side's best round counts (as in bench/consumer.py): on this
shared machine the same work's CPU time was seen to vary by half from one minute to the next, so a single round
of each measured the machine as much as the projector. Every round's figures are reported beside the best.
The shared runner with no-op handlers is measured in bench/consumer.py.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from reporting.config import Settings
from reporting.consumer import TOPICS, build_runner
from reporting.projection import rollup
from sqlalchemy import text

from shared.consumer import ConsumerRunner
from shared.db import create_engine, create_sessionmaker
from shared.events import CloudEvent, build_envelope
from shared.events import dashat as de
from shared.events import registry as re
from shared.events import uppka as ue
from shared.events.envelope import EventData, parse_data
from shared.events.vocab import MKJP_METHODS
from shared.kafka import delete_topics, make_consumer, make_producer
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique

PARTITIONS = 6
PROVINCES = ["15", "32", "33", "35", "73"]
METHODS = ["iud", "implant", "suntik", "pil", "kondom"]
CATEGORIES = ["remaja", "pus", "lansia", "lainnya"]
ROUNDS = 3


def _villages(rng: random.Random, count: int = 200) -> list[str]:
    return [
        f"{rng.choice(PROVINCES)}.{rng.randint(1, 20):02d}.{rng.randint(1, 15):02d}.{2000 + rng.randint(1, 20)}"
        for _ in range(count)
    ]


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, tzinfo=UTC)


class _Mix:
    """Deterministic generator of a demo-like stream; `events` holds (envelope) in production order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.villages = _villages(self.rng)
        self.kkbs = {v: uuid.UUID(int=self.rng.getrandbits(128)) for v in self.villages[::3]}
        self.events: list[CloudEvent] = []
        self.start = date(2025, 1, 1)

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def day(self) -> date:
        return self.start + timedelta(days=self.rng.randint(0, 540))

    def emit(self, data: EventData, key: uuid.UUID, when: date) -> None:
        self.events.append(build_envelope(data, key=str(key), time=_at(when)))

    def family(self) -> None:
        r = self.rng
        fid, village = self.uid(), r.choice(self.villages)
        kkb = self.kkbs.get(village)
        reg = self.day()
        self.emit(
            re.FamilyRegistered(
                family_id=fid, village_code=village, kampung_kb_id=kkb, welfare_decile=r.randint(1, 10)
            ),
            fid,
            reg,
        )
        persons = []
        for relation, sex, pus in (("kepala_keluarga", "L", False), ("istri", "P", True)):
            pid = self.uid()
            persons.append(pid)
            self.emit(
                re.PersonRegistered(
                    person_id=pid,
                    family_id=fid,
                    village_code=village,
                    sex=sex,
                    birth_date=date(1990, 1, 1),
                    relation=relation,
                    marital_status="kawin",
                    has_nik=True,
                    pus=pus,
                    rule_version="pus-1",
                ),
                fid,
                reg,
            )
            if pus:
                method = r.choice([*METHODS, None])
                since = reg + timedelta(days=r.randint(0, 200))
                self.emit(
                    re.KbStatusChanged(
                        person_id=pid,
                        family_id=fid,
                        village_code=village,
                        method=method,
                        is_user=method is not None,
                        mkjp=method in MKJP_METHODS,
                        since=since,
                        reason_non_use=None if method else "ingin_anak_segera",
                        pus=True,
                    ),
                    fid,
                    since,
                )
        for _ in range(r.randint(0, 2)):
            cid = self.uid()
            self.emit(
                re.PersonRegistered(
                    person_id=cid,
                    family_id=fid,
                    village_code=village,
                    sex=r.choice(["L", "P"]),
                    birth_date=reg - timedelta(days=r.randint(30, 600)),
                    relation="anak",
                    marital_status="belum_kawin",
                    has_nik=True,
                    pus=False,
                    rule_version="pus-1",
                ),
                fid,
                reg,
            )
            measured = reg
            for _ in range(r.randint(1, 3)):
                measured += timedelta(days=r.randint(20, 90))
                haz = round(r.gauss(-1.2, 1.1), 2)
                cls = "severely_stunted" if haz < -3 else "stunted" if haz < -2 else "normal"
                mid = self.uid()
                self.emit(
                    re.ChildMeasured(
                        measurement_id=mid,
                        person_id=cid,
                        family_id=fid,
                        village_code=village,
                        sex="L",
                        measured_on=measured,
                        age_days=r.randint(60, 720),
                        weight_kg=9.0,
                        lenhei_cm=75.0,
                        position="l",
                        haz=haz,
                        haz_class=cls,
                        rule_version="who-2006",
                    ),
                    fid,
                    measured,
                )
                if cls != "normal":
                    self.emit(
                        re.BadutaStuntingDetected(
                            case_id=self.uid(),
                            person_id=cid,
                            family_id=fid,
                            village_code=village,
                            measurement_id=mid,
                            measured_on=measured,
                            haz=haz,
                            age_days=300,
                            rule_version="case-1",
                            severity=cls,
                            sex="L",
                            birth_date=reg - timedelta(days=300),
                        ),
                        fid,
                        measured,
                    )
                    break
        if r.random() < 0.3:
            self.emit(
                re.StuntingRiskChanged(
                    family_id=fid,
                    village_code=village,
                    at_risk=True,
                    reasons=["air_minum"],
                    rule_version="krs-1",
                ),
                fid,
                reg + timedelta(days=10),
            )

    def group(self) -> None:
        r = self.rng
        gid, village = self.uid(), r.choice(self.villages)
        founded = self.day()
        self.emit(
            ue.GroupRegistered(
                group_id=gid,
                code=f"G{gid.hex[:6]}",
                village_code=village,
                kampung_kb_id=self.kkbs.get(village),
                status="active",
                name="Kelompok",
            ),
            gid,
            founded,
        )
        for _ in range(r.randint(3, 8)):
            kb_method = r.choice([*METHODS, None])
            self.emit(
                ue.MemberJoined(
                    group_id=gid,
                    member_id=self.uid(),
                    person_id=self.uid(),
                    family_id=self.uid(),
                    village_code=village,
                    category=r.choice(CATEGORIES),
                    role="anggota",
                    joined_on=founded,
                    kb_method=kb_method,
                    kb_user=kb_method is not None,
                    mkjp=kb_method in MKJP_METHODS,
                ),
                gid,
                founded,
            )
        month = founded.replace(day=1)
        for _ in range(r.randint(2, 6)):
            month = (month + timedelta(days=32)).replace(day=1)
            self.emit(
                ue.ReportSubmitted(
                    group_id=gid,
                    report_id=self.uid(),
                    village_code=village,
                    period=month.isoformat()[:7],
                    omzet=r.randint(0, 5_000_000),
                    costs=100_000,
                    profit=50_000,
                    capital_balance=1_000_000,
                    members_present=5,
                    active_members=6,
                    new_kb_acceptors=r.randint(0, 2),
                    mkjp_switchers=0,
                    submitted_on=month + timedelta(days=35),
                    late=r.random() < 0.2,
                ),
                gid,
                month + timedelta(days=35),
            )
            if r.random() < 0.4:
                self.emit(
                    ue.ActivityHeld(
                        group_id=gid,
                        activity_id=self.uid(),
                        village_code=village,
                        activity_type="socialisation",
                        held_on=month + timedelta(days=10),
                        attendance=r.randint(5, 30),
                    ),
                    gid,
                    month + timedelta(days=10),
                )

    def kitchen(self) -> None:
        r = self.rng
        kid, village = self.uid(), r.choice(self.villages)
        opened = self.day()
        self.emit(
            de.KitchenOpened(
                kitchen_id=kid,
                name="Dapur",
                village_code=village,
                kampung_kb_id=self.kkbs.get(village),
                management_model="social",
                capacity_per_day=40,
                opened_on=opened,
            ),
            kid,
            opened,
        )
        for _ in range(r.randint(4, 10)):
            start = opened + timedelta(days=r.randint(1, 60))
            eid, pid = self.uid(), self.uid()
            self.emit(
                de.BeneficiaryEnrolled(
                    enrolment_id=eid,
                    kitchen_id=kid,
                    person_id=pid,
                    family_id=self.uid(),
                    village_code=village,
                    category=r.choice(["baduta_stunting", "ibu_hamil", "balita_stunting"]),
                    source="automatic",
                    enrolled_at=_at(start),
                    triggered_at=_at(start) - timedelta(hours=r.randint(1, 48)),
                    start_date=start,
                    planned_end_date=start + timedelta(days=90),
                    priority=1,
                ),
                kid,
                start,
            )
        day = opened
        for _ in range(r.randint(10, 25)):
            day += timedelta(days=r.randint(1, 4))
            self.emit(
                de.MealsServed(
                    kitchen_id=kid,
                    batch_id=self.uid(),
                    village_code=village,
                    served_on=day,
                    slot="lunch",
                    portions_cooked=30,
                    portions_delivered=29,
                    portions_consumed=28,
                    beneficiaries_served=28,
                    by_category={"baduta_stunting": 10, "ibu_hamil": 18},
                ),
                kid,
                day,
            )
            if r.random() < 0.3:
                self.emit(
                    de.ExpenseRecorded(
                        kitchen_id=kid,
                        entry_id=self.uid(),
                        village_code=village,
                        category="ingredients",
                        amount=r.randint(100_000, 900_000),
                        spent_on=day,
                    ),
                    kid,
                    day,
                )
        self.emit(
            de.FundsReceived(
                kitchen_id=kid,
                entry_id=self.uid(),
                village_code=village,
                source="apbd",
                amount=10_000_000,
                received_on=opened,
            ),
            kid,
            opened,
        )


def build_mix(n: int, seed: int = 7) -> list[CloudEvent]:
    """About 80% registry, 10% uppka, 10% dashat events (the demo's proportions), n in total."""
    mix = _Mix(seed)
    while len(mix.events) < n:
        roll = mix.rng.random()
        if roll < 0.9:
            mix.family()
        elif roll < 0.95:
            mix.group()
        else:
            mix.kitchen()
    return mix.events[:n]


def _topic_of(settings: Settings, env: CloudEvent) -> str:
    return str(settings.topic(f"kencana.{env.type.split('.', 1)[0]}"))


async def produce(settings: Settings, envelopes: list[CloudEvent]) -> None:
    producer = make_producer(settings.kafka_bootstrap_servers, client_id="bench-projector-producer")
    await producer.start()
    try:
        futures = [
            await producer.send(
                _topic_of(settings, env),
                orjson.dumps(env.model_dump(mode="json", exclude_none=True)),
                key=env.partitionkey.encode(),
            )
            for env in envelopes
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _seen(runner: ConsumerRunner) -> int:
    return runner.outcome.applied + runner.outcome.duplicates + runner.outcome.dead_lettered


async def _bare(settings: Settings, n: int, timeout: float) -> float:
    """A consumer that parses each envelope and its payload like the runner does, then does nothing."""
    consumer = make_consumer(
        settings.kafka_bootstrap_servers,
        *[settings.topic(t) for t in TOPICS],
        group_id=unique("bench.bare."),
        client_id="bench-bare",
    )
    await consumer.start()
    seen, first = 0, 0
    started: float | None = None
    try:
        async with asyncio.timeout(timeout):
            while seen < n:
                batches = await consumer.getmany(timeout_ms=300, max_records=200)
                for records in batches.values():
                    for record in records:
                        env = CloudEvent.model_validate(orjson.loads(record.value or b""))
                        parse_data(env)
                        seen += 1
                if batches:
                    await consumer.commit()
                    if started is None:
                        # Timed like the projector: from the end of the first batch on.
                        first, started = seen, time.perf_counter()
    finally:
        await consumer.stop()
    assert started is not None
    return (time.perf_counter() - started) / (n - first)


@dataclass(frozen=True)
class _Run:
    """What one projector process did: events seen in its first poll, when that poll ended, when it saw
    every event applied (CLOCK_MONOTONIC, comparable between processes), events dead-lettered."""

    first: int
    started: float | None
    done: float
    dead_lettered: int
    settle_s: float  # from seeing every event applied to the facts holding them all (the rollup's lag)


def _instance(url: str, suffix: str, group: str, instances: int, n: int, timeout: float) -> _Run:
    """One projector process (own interpreter, as in production) polling until the inbox holds all n events."""
    return asyncio.run(_instance_run(url, suffix, group, instances, n, timeout))


async def _instance_run(url: str, suffix: str, group: str, instances: int, n: int, timeout: float) -> _Run:
    settings = Settings(database_url=url, topic_suffix=suffix, topic_partitions=PARTITIONS)
    engine = create_engine(url, pool_size=3)
    sessionmaker = create_sessionmaker(engine)
    runner = build_runner(settings, sessionmaker, name=group)
    first, started, checked = 0, None, 0.0
    # As in production (reporting.consumer.run): each process runs the rollup loop beside its projector.
    stopping = asyncio.Event()
    rollups = asyncio.create_task(
        rollup.run_rollups(sessionmaker, stopping, settings.fact_rollup_interval_seconds)
    )
    await runner.start()
    try:
        async with asyncio.timeout(timeout):
            # Start work only once every instance has joined: the figure is the group's steady rate, and a
            # rebalance in the middle of a poll trips the runner (see the report of this bench).
            share = -(-PARTITIONS * len(TOPICS) // instances)
            while not 0 < len(runner.assignment()) <= share:  # noqa: ASYNC110 (the consumer has no event for it)
                await asyncio.sleep(0.05)
            while True:
                if await runner.poll_once(timeout_ms=200) and started is None:
                    first, started = _seen(runner), time.monotonic()
                if time.monotonic() - checked > 0.1:
                    checked = time.monotonic()
                    async with engine.connect() as conn:
                        applied = (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
                    if applied >= n:
                        # Done when the facts hold every event: the rollup's lag counts.
                        await rollup.settle(sessionmaker)
                        done = time.monotonic()
                        return _Run(first, started, done, runner.outcome.dead_lettered, done - checked)
    finally:
        stopping.set()
        await rollups
        await runner.close()
        await engine.dispose()


@dataclass
class _Locks:
    """Samples of the bench database's backends every 20 ms while projectors run."""

    samples: int = 0
    waiting: int = 0  # samples in which some backend waited for a lock
    row_waiting: int = 0  # of those, a wait for a row (tuple, transactionid), not e.g. a table file's growth
    most: int = 0  # most backends waiting at once
    statements: dict[str, int] = field(default_factory=dict)  # what the waiting backends were running


async def _lock_waits(dsn: str, stop: asyncio.Event) -> _Locks:
    conn = await asyncpg.connect(dsn)
    out = _Locks()
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS q"
                " FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            out.samples += 1
            out.waiting += int(bool(rows))
            out.row_waiting += int(any(r["wait_event"] in ("tuple", "transactionid") for r in rows))
            out.most = max(out.most, len(rows))
            for r in rows:
                what = f"{r['wait_event']}: {r['q']}"
                out.statements[what] = out.statements.get(what, 0) + 1
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return out


async def _projectors(
    url: str, settings: Settings, instances: int, n: int, timeout: float
) -> tuple[float, _Locks, float]:
    """Seconds per event of `instances` projector processes in one consumer group, the lock waits seen, and
    the seconds the first one to finish waited for the rollup after every event was applied."""
    async with create_engine(url, pool_size=1).begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE inbox, rep_fact, rep_fact_pending, rep_place_stock, rep_entity, rep_place, rep_enrolment,"
                " projection_status"
            )
        )
    group = unique("bench.projector.")
    stop = asyncio.Event()
    sampler = asyncio.create_task(_lock_waits(url.replace("postgresql+asyncpg://", "postgresql://"), stop))
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(instances, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _instance, url, settings.topic_suffix, group, instances, n, timeout
                )
                for _ in range(instances)
            )
        )
    stop.set()
    locks = await sampler
    assert all(r.dead_lettered == 0 for r in runs), "the bench stream must apply cleanly"
    starts = [r.started for r in runs if r.started is not None]
    first = sum(r.first for r in runs)
    finisher = min(runs, key=lambda r: r.done)
    return (finisher.done - min(starts)) / (n - first), locks, finisher.settle_s


async def run(n: int = 30_000, timeout: float = 900.0) -> dict[str, Any]:
    """Events/s of one and of two projector processes (one consumer group) and of a bare consumer; lock waits.

    Durations are seconds per event, timed from the end of each consumer's first poll (group join excluded).
    """
    url = await recreate_database(f"bench_reporting_projector_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=PARTITIONS)
    await ensure_service_topics(settings, TOPICS)
    envelopes = build_mix(n)
    await produce(settings, envelopes)
    engine = create_engine(url, pool_size=2)
    bare: list[float] = []
    one: list[tuple[float, _Locks, float]] = []
    two: list[tuple[float, _Locks, float]] = []
    try:
        for _ in range(ROUNDS):
            bare.append(await _bare(settings, n, timeout))
            one.append(await _projectors(url, settings, 1, n, timeout))
            two.append(await _projectors(url, settings, 2, n, timeout))
        async with engine.connect() as conn:
            facts = (await conn.execute(text("SELECT count(*) FROM rep_fact"))).scalar_one()
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
    kinds: dict[str, int] = {}
    for env in envelopes:
        kinds[env.type.split(".", 1)[0]] = kinds.get(env.type.split(".", 1)[0], 0) + 1
    bare_s = min(bare)
    one_s, _, one_settle = min(one, key=lambda r: r[0])
    two_s = min(s for s, _, _ in two)
    two_locks = _Locks()
    for _, locks, _ in two:
        two_locks.samples += locks.samples
        two_locks.waiting += locks.waiting
        two_locks.row_waiting += locks.row_waiting
        two_locks.most = max(two_locks.most, locks.most)
        for what, count in locks.statements.items():
            two_locks.statements[what] = two_locks.statements.get(what, 0) + count
    return {
        "events": n,
        "by_producer": kinds,
        "fact_rows": int(facts),
        "rounds": ROUNDS,
        "projector_events_per_s": round(1 / one_s),
        "two_projectors_events_per_s": round(1 / two_s),
        "bare_consumer_events_per_s": round(1 / bare_s),
        "projector_vs_bare_ratio": round(bare_s / one_s, 3),
        "two_vs_one_ratio": round(one_s / two_s, 3),
        "rounds_events_per_s": {
            "bare": [round(1 / s) for s in bare],
            "projector": [round(1 / s) for s, _, _ in one],
            "two_projectors": [round(1 / s) for s, _, _ in two],
        },
        "rounds_projector_vs_bare_ratio": [round(b / o, 3) for b, (o, _, _) in zip(bare, one, strict=True)],
        "lock_samples": two_locks.samples,
        "two_projectors_lock_wait_samples": two_locks.waiting,
        "two_projectors_row_lock_wait_samples": two_locks.row_waiting,
        "two_projectors_most_waiting": two_locks.most,
        "two_projectors_waiting_on": two_locks.statements,
        "one_projector_lock_wait_samples": sum(locks.waiting for _, locks, _ in one),
        "one_projector_rollup_settle_s": round(one_settle, 2),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)), indent=2))
