"""The idempotency middleware's transaction on a probe app: what a 5xx, a running duplicate and a fast retry see.

The probe's routes write to the `probe` table through the request session and commit as a service does; the
requests really commit (no rolled-back session), so each test uses ids of its own. The app runs under uvicorn:
only a real server sends a response before the app call returns, which is when the old middleware stored it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import require_scopes
from shared.config import ServiceSettings
from shared.testing.plugin import bearer, running_app, unique
from shared.web.app import create_service_app
from shared.web.deps import SessionDep
from tests.shared.conftest import Echo, idempotency, probe
from tests.shared.retry_db import served

pytestmark = pytest.mark.integration

# Ids of probe rows written here, far above the other tests' (the probe table is shared by the session).
_ids = itertools.count(7_000_000 + (hash(unique()) % 1000) * 1000)


def probe_app(db_url: str, gate: asyncio.Event, entered: asyncio.Event | None = None) -> FastAPI:
    router = APIRouter()

    @router.post("/v1/labels", status_code=201)
    async def label(
        body: Echo, session: SessionDep, _: object = require_scopes("probe:write")
    ) -> dict[str, int]:
        async with session.begin():
            await session.execute(probe.insert().values(id=body.count, label=body.name))
        return {"id": body.count}

    @router.post("/v1/labels-then-fail", status_code=201)
    async def label_then_fail(
        body: Echo, session: SessionDep, _: object = require_scopes("probe:write")
    ) -> dict[str, int]:
        async with session.begin():
            await session.execute(probe.insert().values(id=body.count, label=body.name))
        raise RuntimeError("after the service's commit, before the response")

    @router.post("/v1/labels-with-aftermath", status_code=201)
    async def label_with_aftermath(
        body: Echo, session: SessionDep, tasks: BackgroundTasks, _: object = require_scopes("probe:write")
    ) -> dict[str, int]:
        async with session.begin():
            await session.execute(probe.insert().values(id=body.count, label=body.name))
        # Work after the response inside the app call (a background task; a yield dependency's exit on newer
        # FastAPI): a response sent before the app call returns would reach the client before its key is stored.
        tasks.add_task(asyncio.sleep, 0.3)
        return {"id": body.count}

    @router.post("/v1/slow-labels", status_code=201)
    async def slow_label(
        body: Echo, session: SessionDep, _: object = require_scopes("probe:write")
    ) -> dict[str, int]:
        async with session.begin():
            await session.execute(probe.insert().values(id=body.count, label=body.name))
        if entered is not None:
            entered.set()
        await asyncio.wait_for(gate.wait(), timeout=20)  # held until the test has sent its duplicates
        return {"id": body.count}

    settings = ServiceSettings(service_name="probe", database_url=db_url)
    return create_service_app(
        settings, title="probe", description="probe", routers=[router], idempotency_table=idempotency
    )


@pytest.fixture
def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
def entered() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def client(
    shared_db_url: str, gate: asyncio.Event, entered: asyncio.Event
) -> AsyncIterator[httpx.AsyncClient]:
    async with served(probe_app(shared_db_url, gate, entered)) as c:
        yield c


async def _labels(engine: AsyncEngine, ident: int) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).where(probe.c.id == ident))).scalar_one())


async def _stored(engine: AsyncEngine, key: str) -> int:
    async with engine.connect() as conn:
        q = select(func.count()).select_from(idempotency).where(idempotency.c.key == key)
        return int((await conn.execute(q)).scalar_one())


def _headers(key: str, sub: str) -> dict[str, str]:
    return {**bearer("probe:write", sub=sub), "Idempotency-Key": key}


async def test_a_5xx_after_the_services_commit_leaves_no_effect_and_no_key(
    client: httpx.AsyncClient, shared_engine: AsyncEngine
) -> None:
    ident, key, who = next(_ids), unique("idem-"), unique("caller-")
    body: dict[str, Any] = {"name": "x", "count": ident}
    for _ in range(2):  # the retry runs again: neither 409 nor a replay of the 500
        r = await client.post("/v1/labels-then-fail", json=body, headers=_headers(key, who))
        assert r.status_code == 500 and "idempotent-replayed" not in r.headers
        assert await _labels(shared_engine, ident) == 0
        assert await _stored(shared_engine, key) == 0
    # Without a key nothing changes for a failing route: the service's own commit stands, as before.
    r = await client.post("/v1/labels-then-fail", json=body, headers=bearer("probe:write"))
    assert r.status_code == 500 and await _labels(shared_engine, ident) == 1


async def test_retries_right_after_the_answer_replay_it(
    client: httpx.AsyncClient, shared_engine: AsyncEngine
) -> None:
    # The audit's case: a retry 0-10 ms after the first 201 got 409 (6 of 8). Here none may.
    ident, key, who = next(_ids), unique("idem-"), unique("caller-")
    body = {"name": "x", "count": ident}
    first = await client.post("/v1/labels", json=body, headers=_headers(key, who))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    for _ in range(8):
        again = await client.post("/v1/labels", json=body, headers=_headers(key, who))
        assert (again.status_code, again.content) == (201, first.content)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-length"] == str(len(first.content))
    assert await _labels(shared_engine, ident) == 1 and await _stored(shared_engine, key) == 1


async def test_a_retry_after_the_answer_never_finds_the_request_running(
    client: httpx.AsyncClient, shared_engine: AsyncEngine
) -> None:
    # Before, the answer went out first and the key was stored when the app call returned: a retry sent on
    # receipt found the claim without a response and got 409 (without Retry-After). Now it is a replay.
    ident, key, who = next(_ids), unique("idem-"), unique("caller-")
    body = {"name": "x", "count": ident}
    first = await client.post("/v1/labels-with-aftermath", json=body, headers=_headers(key, who))
    assert first.status_code == 201
    again = await client.post("/v1/labels-with-aftermath", json=body, headers=_headers(key, who))
    assert (again.status_code, again.content, again.headers.get("idempotent-replayed")) == (
        201,
        first.content,
        "true",
    )
    assert await _labels(shared_engine, ident) == 1


async def test_only_a_duplicate_sent_while_the_first_runs_gets_409_with_retry_after(
    client: httpx.AsyncClient, shared_engine: AsyncEngine, gate: asyncio.Event, entered: asyncio.Event
) -> None:
    ident, key, who = next(_ids), unique("idem-"), unique("caller-")
    body = {"name": "x", "count": ident}
    first = asyncio.create_task(client.post("/v1/slow-labels", json=body, headers=_headers(key, who)))
    # The first request has written its row and waits at the gate: its effect is not visible to anyone yet.
    await asyncio.wait_for(entered.wait(), timeout=10)
    assert await _labels(shared_engine, ident) == 0
    during = await asyncio.gather(
        *(client.post("/v1/slow-labels", json=body, headers=_headers(key, who)) for _ in range(8))
    )
    for r in during:
        assert r.status_code == 409 and r.headers["retry-after"] == "1", r.text
        assert r.json()["type"].endswith("/idempotency-key-in-progress")
        assert r.json()["errors"][0]["field"] == "header.Idempotency-Key"
    # Another body with the key, while the first runs, is told to wait too; once it finished, 422.
    other = {"name": "y", "count": ident}
    assert (await client.post("/v1/slow-labels", json=other, headers=_headers(key, who))).status_code == 409
    gate.set()
    done = await first
    assert done.status_code == 201 and await _labels(shared_engine, ident) == 1
    after = await client.post("/v1/slow-labels", json=body, headers=_headers(key, who))
    assert (after.status_code, after.content, after.headers["idempotent-replayed"]) == (
        201,
        done.content,
        "true",
    )
    reused = await client.post("/v1/slow-labels", json=other, headers=_headers(key, who))
    assert reused.status_code == 422 and reused.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert await _labels(shared_engine, ident) == 1


async def test_a_refused_request_is_stored_and_replayed_without_writing(
    client: httpx.AsyncClient, shared_engine: AsyncEngine
) -> None:
    # A 4xx is an answer like any other: stored with its key and replayed (only a 5xx is rolled back).
    key, who = unique("idem-"), unique("caller-")
    first = await client.post("/v1/labels", json={"name": "x"}, headers=_headers(key, who))
    again = await client.post("/v1/labels", json={"name": "x"}, headers=_headers(key, who))
    assert first.status_code == 422 and (again.status_code, again.content) == (422, first.content)
    assert again.headers["idempotent-replayed"] == "true" and await _stored(shared_engine, key) == 1


def test_the_openapi_declares_the_key_its_answers_and_the_replay_header(shared_db_url: str) -> None:
    spec = probe_app(shared_db_url, asyncio.Event()).openapi()
    op = spec["paths"]["/v1/labels"]["post"]
    [key] = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header" and key["required"] is False and key["schema"]["maxLength"] == 255
    assert "Retry-After" in op["responses"]["409"]["headers"]
    assert "Idempotent-Replayed" in op["responses"]["201"]["headers"]
    assert "Idempotent-Replayed" in op["responses"]["422"]["headers"]
    assert {"400", "409", "503"} <= set(op["responses"])


async def test_a_database_that_cannot_be_reached_is_503_with_retry_after(gate: asyncio.Event) -> None:
    # Nothing listens on port 1: the key cannot be looked up, so nothing ran and the retry is safe (never a 500).
    app = probe_app("postgresql+asyncpg://kencana:kencana@127.0.0.1:1/nowhere", gate)
    async with running_app(app) as client:
        r = await client.post("/v1/labels", json={"name": "x", "count": 1}, headers=_headers(unique(), "c"))
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert r.json()["errors"][0]["field"] == "header.Idempotency-Key"
