"""pytest fixtures: real PostgreSQL databases built by migrations, real Kafka topics unique per test."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.auth import issue_dev_token
from shared.clock import frozen_at
from shared.config import REPO_ROOT, kafka_bootstrap_servers, pg_server_url
from shared.db import create_engine
from shared.kafka import delete_topics, ensure_topics, kafka_reachable, security_options
from shared.migrations import upgrade
from shared.web.deps import get_session

# Databases are per checkout, so two worktrees on one machine never share test data.
CHECKOUT_TAG = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]


def unique(prefix: str = "t") -> str:
    """A short unique name for topics, groups and keys."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def recreate_database(name: str) -> str:
    """Drop and create a test database on the project's server; returns its SQLAlchemy URL."""
    server = pg_server_url()
    conn = await asyncpg.connect(_asyncpg_dsn(server) + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{server}/{name}"


_migrated: dict[str, str] = {}


async def migrated_database(service: str) -> str:
    """A fresh database for `service`, built by its migrations once per test session."""
    if service not in _migrated:
        url = await recreate_database(f"test_{service}_{CHECKOUT_TAG}")
        await upgrade(service, url)
        _migrated[service] = url
    return _migrated[service]


@asynccontextmanager
async def rolled_back_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is rolled back; the code under test may commit freely."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


@asynccontextmanager
async def running_app(app: FastAPI, session: AsyncSession | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an HTTP client; with `session`, every request uses that session."""
    async with app.router.lifespan_context(app):
        if session is not None:

            async def _session() -> AsyncIterator[AsyncSession]:
                yield session

            app.dependency_overrides[get_session] = _session
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client
        finally:
            app.dependency_overrides.pop(get_session, None)


def bearer(scopes: str, region: str | None = None, sub: str = "tester") -> dict[str, str]:
    """Authorization header with a dev token."""
    return {"Authorization": f"Bearer {issue_dev_token(scopes=scopes.split(), region=region, sub=sub)}"}


async def consume(
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 30.0,
    bootstrap_servers: str | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the beginning until `until(records)` holds; fails the test at the deadline."""
    import asyncio

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers or kafka_bootstrap_servers(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security_options(),
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until(records):
            if loop.time() > deadline:
                pytest.fail(f"deadline: {len(records)} records on {topic} after {timeout}s")
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def wait_for(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> Any:
    """Poll an async check until it returns something truthy; fails the test at the deadline."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"deadline: {what} not reached after {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
def frozen_clock() -> Iterator[Callable[[datetime], datetime]]:
    """Freeze the shared clock (`shared.clock`) at an instant for the rest of the test: `frozen_clock(at)`.

    Every `now_utc()`/`business_today()`/`utcnow()` in the test's process answers from it; the clock is given
    back at teardown. Freezing again moves it.
    """
    with ExitStack() as stack:

        def freeze(instant: datetime) -> datetime:
            return stack.enter_context(frozen_at(instant))

        yield freeze


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> str:
    """The real broker; the suite fails (never skips) when it is not there."""
    servers = kafka_bootstrap_servers()
    if not await kafka_reachable(servers, timeout=20):
        pytest.fail(f"Kafka is not reachable at {servers}: run `make infra-up`")
    return servers


@pytest.fixture
async def topic_factory(kafka_bootstrap: str) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Creates uniquely named topics for one test and deletes them afterwards."""
    created: list[str] = []

    async def make(prefix: str = "t", partitions: int = 3) -> str:
        name = unique(f"{prefix}.")
        await ensure_topics(kafka_bootstrap, [name], partitions=partitions)
        created.append(name)
        return name

    yield make
    if created:
        await delete_topics(kafka_bootstrap, created)


@pytest.fixture(scope="session")
async def pg_engine_factory() -> AsyncIterator[Callable[[str], AsyncEngine]]:
    """Engines on test databases, disposed at the end of the session."""
    engines: list[AsyncEngine] = []

    def make(url: str) -> AsyncEngine:
        engine = create_engine(url, pool_size=5)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.dispose()
