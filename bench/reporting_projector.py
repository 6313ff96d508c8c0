"""Reporting projector throughput on a realistic event mix, beside a bare consumer reading the same topics.

Produces N registry/uppka/dashat envelopes (families with persons, KB changes, measurements, stunting cases,
UPPKA groups with members and reports, DASHAT kitchens with enrolments, meals and ledger entries) to unique
topics, then times:
- the reporting projector (`reporting.consumer.build_runner`) into a fresh migrated database;
- the shared ConsumerRunner with no-op handlers (inbox row per event, no projection work), with a
  transaction per event and with one per poll (`batch_transaction=True`, as the projector runs);
- a bare Kafka consumer that parses the envelopes and does nothing (the ceiling).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from reporting.config import Settings
from reporting.consumer import TOPICS, build_runner
from reporting.models import inbox
from sqlalchemy import text

from shared.consumer import ConsumerRunner, Handler
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

PROVINCES = ["15", "32", "33", "35", "73"]
METHODS = ["iud", "implant", "suntik", "pil", "kondom"]
CATEGORIES = ["remaja", "pus", "lansia", "lainnya"]


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


async def _drain(runner: ConsumerRunner, n: int, timeout: float) -> float:
    """Seconds per event after the first poll (which also joins the group)."""
    await runner.start()
    try:
        async with asyncio.timeout(timeout):
            while not await runner.poll_once(timeout_ms=300):
                pass
            first = _seen(runner)
            started = time.perf_counter()
            while _seen(runner) < n:
                await runner.poll_once(timeout_ms=300)
            return (time.perf_counter() - started) / (n - first)
    finally:
        await runner.close()


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
                        # Timed like `_drain`: from the end of the first batch on.
                        first, started = seen, time.perf_counter()
    finally:
        await consumer.stop()
    assert started is not None
    return (time.perf_counter() - started) / (n - first)


async def _noop(session: Any, envelope: CloudEvent, data: Any) -> None:
    return None


async def run(n: int = 30_000, timeout: float = 900.0) -> dict[str, Any]:
    """Events/s of the projector, of the runner with no-op handlers and of a bare consumer; their ratios.

    Durations are seconds per event, timed from the end of each consumer's first poll (group join excluded).
    """
    url = await recreate_database(f"bench_reporting_projector_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=6)
    await ensure_service_topics(settings, TOPICS)
    envelopes = build_mix(n)
    await produce(settings, envelopes)
    engine = create_engine(url, pool_size=4)
    sessionmaker = create_sessionmaker(engine)
    try:
        bare_s = await _bare(settings, n, timeout)
        noop_handlers: dict[str, Handler] = {e.type: _noop for e in envelopes}
        noop_s: dict[bool, float] = {}
        for batch in (False, True):
            noop = ConsumerRunner(
                name=unique("bench.noop."),
                topics=[settings.topic(t) for t in TOPICS],
                handlers=noop_handlers,
                sessionmaker=sessionmaker,
                inbox=inbox,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                batch_transaction=batch,
            )
            noop_s[batch] = await _drain(noop, n, timeout)
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE inbox"))
        projector = build_runner(settings, sessionmaker, name=unique("bench.projector."))
        projector_s = await _drain(projector, n, timeout)
        assert projector.outcome.dead_lettered == 0, "the bench stream must apply cleanly"
        async with engine.connect() as conn:
            facts = (await conn.execute(text("SELECT count(*) FROM rep_fact"))).scalar_one()
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
    kinds: dict[str, int] = {}
    for env in envelopes:
        kinds[env.type.split(".", 1)[0]] = kinds.get(env.type.split(".", 1)[0], 0) + 1
    return {
        "events": n,
        "by_producer": kinds,
        "fact_rows": int(facts),
        "projector_events_per_s": round(1 / projector_s),
        "noop_runner_events_per_s": round(1 / noop_s[False]),
        "noop_batch_runner_events_per_s": round(1 / noop_s[True]),
        "bare_consumer_events_per_s": round(1 / bare_s),
        "projector_vs_bare_ratio": round(bare_s / projector_s, 3),
        "projector_vs_noop_batch_runner_ratio": round(noop_s[True] / projector_s, 3),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)), indent=2))
