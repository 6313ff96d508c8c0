"""Fixtures of the uppka tests: the migrated database, sessions, the in-process API, event helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from uppka.config import Settings
from uppka.consumer import BATCH_HANDLER, HANDLERS
from uppka.main import create_app
from uppka.models import inbox

from shared.clock import business_today
from shared.consumer import ConsumerRunner
from shared.db import create_sessionmaker, utcnow
from shared.events import CloudEvent, EventData, build_envelope
from shared.events.dashat import KitchenOpened
from shared.events.registry import KbStatusChanged, PersonRegistered
from shared.kafka import security_options
from shared.testing.plugin import bearer, migrated_database, rolled_back_session, running_app, unique

# Kota Jambi (15.71), Kecamatan Kota Baru (15.71.01): villages used throughout the tests.
VILLAGE = "15.71.01.1001"
OTHER_VILLAGE = "15.71.01.1002"
FAR_VILLAGE = "15.05.01.2002"
REGION = "15.71"
RW = "003"
WRITE = "uppka:read uppka:write"


@pytest.fixture(scope="session")
async def db_url() -> str:
    return await migrated_database("uppka")


@pytest.fixture(scope="session")
async def engine(db_url: str, pg_engine_factory: Callable[[str], AsyncEngine]) -> AsyncEngine:
    return pg_engine_factory(db_url)


@pytest.fixture(scope="session")
def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A real sessionmaker: for tests whose data must be committed (relay, consumer)."""
    return create_sessionmaker(engine)


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with rolled_back_session(engine) as s:
        yield s


@pytest.fixture
async def client(db_url: str, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a rolled-back session, authorised for Kota Jambi with read+write."""
    async with running_app(create_app(Settings(database_url=db_url)), session) as c:
        c.headers.update(bearer(WRITE, region=REGION))
        yield c


def env(data: EventData, key: uuid.UUID | str, *, time: datetime | None = None) -> CloudEvent:
    return build_envelope(data, key=str(key), time=time)


def person_facts(
    person_id: uuid.UUID | None = None,
    *,
    family_id: uuid.UUID | None = None,
    village: str = VILLAGE,
    birth: date = date(1990, 5, 1),
    sex: str = "P",
    marital: str = "kawin",
    pus: bool = True,
) -> PersonRegistered:
    return PersonRegistered(
        person_id=person_id or uuid.uuid4(),
        family_id=family_id or uuid.uuid4(),
        village_code=village,
        rw=RW,
        sex=sex,  # type: ignore[arg-type]
        birth_date=birth,
        relation="istri",
        marital_status=marital,  # type: ignore[arg-type]
        has_nik=True,
        pus=pus,
        rule_version="test",
    )


def kb_change(
    p: PersonRegistered, method: str | None, *, previous: str | None = None, since: date | None = None
) -> KbStatusChanged:
    mkjp = method in {"iud", "implant", "mow", "mop"}
    return KbStatusChanged(
        person_id=p.person_id,
        family_id=p.family_id,
        village_code=p.village_code,
        method=method,  # type: ignore[arg-type]
        is_user=method is not None,
        mkjp=mkjp,
        since=since or business_today() - timedelta(days=30),
        previous_method=previous,  # type: ignore[arg-type]
        previous_mkjp=previous in {"iud", "implant", "mow", "mop"},
        pus=p.pus,
    )


def kitchen_opened(kitchen_id: uuid.UUID | None = None, village: str = VILLAGE) -> KitchenOpened:
    return KitchenOpened(
        kitchen_id=kitchen_id or uuid.uuid4(),
        name="Dapur Sehat Mawar",
        village_code=village,
        rws=[RW],
        management_model="social",
        capacity_per_day=40,
        opened_on=business_today() - timedelta(days=90),
    )


async def apply(session: AsyncSession, *envelopes: CloudEvent) -> None:
    """Run the consumer's handlers directly in a (rolled-back) session, as the runner would."""
    from shared.events import parse_data

    for e in envelopes:
        await HANDLERS[e.type](session, e, parse_data(e))
        # Ends the test's own (savepoint) transaction so the next API call can open its own.
        await session.commit()


async def seed_person(session: AsyncSession, *, kb: str | None = "implant", **kw: Any) -> PersonRegistered:
    """A registry person known to uppka, optionally a KB user."""
    p = person_facts(**kw)
    now = utcnow()
    await apply(session, env(p, p.family_id, time=now - timedelta(seconds=2)))
    if kb is not None:
        await apply(session, env(kb_change(p, kb), p.family_id, time=now - timedelta(seconds=1)))
    return p


async def seed_kitchen(session: AsyncSession, village: str = VILLAGE) -> uuid.UUID:
    k = kitchen_opened(village=village)
    await apply(session, env(k, k.kitchen_id))
    return k.kitchen_id


async def produce(bootstrap: str, topic: str, envelopes: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **security_options())
    await producer.start()
    try:
        for e in envelopes:
            await producer.send_and_wait(
                topic, orjson.dumps(e.model_dump(mode="json")), key=e.partitionkey.encode()
            )
    finally:
        await producer.stop()


def runner(sm: async_sessionmaker[AsyncSession], bootstrap: str, topics: list[str]) -> ConsumerRunner:
    return ConsumerRunner(
        name=unique("uppka.test."),
        topics=topics,
        handlers=HANDLERS,
        batch_handler=BATCH_HANDLER,
        sessionmaker=sm,
        inbox=inbox,
        bootstrap_servers=bootstrap,
        backoff_seconds=0.01,
    )


async def run_until(r: ConsumerRunner, done: Callable[[], bool], timeout: float = 45) -> None:
    """Poll until `done()` holds; `done` reads the runner's outcome (no sleeps, a hard deadline)."""
    await r.start()
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await r.poll_once(timeout_ms=300)
    finally:
        await r.close()


def group_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique("UPPKA-"),
        "name": "UPPKA Maju Bersama",
        "register_number": unique("REG-"),
        "sk_number": "SK/12/2023",
        "sk_date": "2023-02-01",
        "founded_on": "2023-02-01",
        "village_code": VILLAGE,
        "rw": RW,
        "pembina_name": "Ibu PLKB",
        "pembina_officer_id": "PLKB-001",
        "funding": [{"source": "apbd", "amount": 5_000_000}, {"source": "swadaya", "amount": 750_000}],
    }
    body.update(kw)
    return body


async def make_group(client: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    r = await client.post("/v1/groups", json=group_body(**kw))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_member(
    client: httpx.AsyncClient, session: AsyncSession, group_id: str, *, role: str = "anggota", **kw: Any
) -> dict[str, Any]:
    p = await seed_person(session, **kw)
    r = await client.post(
        f"/v1/groups/{group_id}/members", json={"person_id": str(p.person_id), "role": role}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def outbox_types(session: AsyncSession, key: str) -> list[str]:
    """Event types written to the outbox for one aggregate key, in order."""
    from sqlalchemy import select
    from uppka.models import outbox

    rows = await session.execute(
        select(outbox.c.event_type).where(outbox.c.partition_key == key).order_by(outbox.c.seq)
    )
    out = [r[0] for r in rows]
    await session.commit()
    return out


def rule_of(response: httpx.Response) -> str:
    """The rule named by a problem+json response (its first error)."""
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json"), body
    return str(body["errors"][0]["rule"])
