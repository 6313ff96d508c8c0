"""Pooled connections: one the server closed is replaced on checkout; a recently used one costs no ping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from shared import db
from shared.db import create_engine

pytestmark = pytest.mark.integration


async def _backend_pid(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_the_server_closed_is_replaced(shared_db_url: str) -> None:
    engine = create_engine(shared_db_url, pool_size=1)
    other = create_engine(shared_db_url, pool_size=1)
    try:
        first = await _backend_pid(engine)
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await asyncio.sleep(0.2)  # the driver sees the socket close while the connection sits in the pool
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()
        await other.dispose()


async def test_a_connection_idle_too_long_is_pinged_and_replaced_when_the_ping_fails(
    shared_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(shared_db_url, pool_size=1)
    try:
        first = await _backend_pid(engine)
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", -1.0)  # every pooled connection counts as idle
        pings: list[bool] = []
        real_ping = engine.sync_engine.dialect.do_ping

        def ping(dbapi_connection: Any) -> bool:
            pings.append(True)
            if len(pings) == 3:
                raise ConnectionError("no answer")
            return bool(real_ping(dbapi_connection))

        monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", ping)
        assert await _backend_pid(engine) == first and len(pings) == 1
        assert await _backend_pid(engine) == first and len(pings) == 2
        assert await _backend_pid(engine) != first  # the ping failed: a new connection answered
    finally:
        await engine.dispose()


async def test_a_recently_returned_connection_is_not_pinged(
    shared_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(shared_db_url, pool_size=1)
    try:
        await _backend_pid(engine)
        pings: list[bool] = []

        def ping(dbapi_connection: Any) -> bool:
            pings.append(True)
            return True

        monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", ping)
        await _backend_pid(engine)
        await _backend_pid(engine)
        assert pings == []
    finally:
        await engine.dispose()
