"""Fixtures for the shared library's own tests.

The mechanisms (outbox, inbox, idempotency) are tested on a dedicated database holding just their tables and a
probe table that stands for "the state change" of a real service. Service schemas are always built by their
migrations; this schema belongs to the tests alone, so it is created from its metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import Column, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth import require_scopes
from shared.config import ServiceSettings
from shared.consumer import inbox_table
from shared.db import create_engine, create_sessionmaker, make_metadata
from shared.events import EventData
from shared.outbox import outbox_table, publish
from shared.testing.plugin import CHECKOUT_TAG, recreate_database
from shared.web.app import create_service_app
from shared.web.deps import SessionDep
from shared.web.idempotency import idempotency_table
from shared.web.schemas import ApiInput

metadata: MetaData = make_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency = idempotency_table(metadata)
probe = Table("probe", metadata, Column("id", Integer, primary_key=True), Column("label", Text))
effect = Table(
    "effect",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("consumer", Text, nullable=False),
)


class ProbeHappened(EventData):
    """A test-only event (its producer is not a Kencana service, so it stays out of the catalogue)."""

    event_type: ClassVar[str] = "probe.thing.happened.v1"
    key: str
    n: int


class PoisonPill(EventData):
    """A test-only event whose handler always fails."""

    event_type: ClassVar[str] = "probe.thing.poisoned.v1"
    n: int


@pytest.fixture(scope="session")
async def shared_db_url() -> str:
    url = await recreate_database(f"test_shared_{CHECKOUT_TAG}")
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    return url


@pytest.fixture(scope="session")
async def shared_engine(shared_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(shared_db_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(shared_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(shared_engine)


class Echo(ApiInput):
    name: str
    count: int
    tags: list[str] = []


def make_test_app(db_url: str) -> FastAPI:
    router = APIRouter()

    @router.post("/v1/echo", status_code=201)
    async def echo(body: Echo, _: object = require_scopes("probe:write")) -> dict[str, object]:
        echo.calls += 1  # type: ignore[attr-defined]
        return {"name": body.name, "count": body.count, "call": echo.calls}  # type: ignore[attr-defined]

    echo.calls = 0  # type: ignore[attr-defined]

    @router.get("/v1/secret")
    async def secret(_: object = require_scopes("probe:read")) -> dict[str, str]:
        return {"ok": "yes"}

    @router.post("/v1/probe-events", status_code=201)
    async def probe_event(session: SessionDep, _: object = require_scopes("probe:write")) -> dict[str, str]:
        async with session.begin():
            envelope = await publish(session, outbox, ProbeHappened(key="corr", n=1), key="corr")
        return {"event_id": envelope.id}

    @router.post("/v1/probe-labels", status_code=201)
    async def probe_label(body: Echo, session: SessionDep) -> dict[str, int]:
        # Writes the body as given, so a test can make the database refuse it (duplicate id, NUL in text).
        async with session.begin():
            await session.execute(probe.insert().values(id=body.count, label=body.name))
        return {"id": body.count}

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail that must not leak 1571010101010001")

    settings = ServiceSettings(service_name="probe", database_url=db_url, max_body_bytes=2048)
    return create_service_app(
        settings, title="probe", description="probe", routers=[router], idempotency_table=idempotency
    )
