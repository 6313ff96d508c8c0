"""Fixtures of the registry tests: the migrated database, an app per test inside a rolled-back transaction."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
import pytest
from registry.config import Settings
from registry.identity.domain import make_kk, make_nik
from registry.main import create_app
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.testing.plugin import bearer, migrated_database, rolled_back_session, running_app

# The API process sweeps ages once a day on its own (registry/ageing); the tests run the sweep themselves, on
# the days they choose, inside their rolled-back transaction.
os.environ.setdefault("REGISTRY_AGE_SWEEP_ENABLED", "false")

VILLAGE = "15.71.01.1001"
DISTRICT = "15.71.01"
OTHER_VILLAGE = "32.76.01.1006"
_serials = itertools.count(1)


@pytest.fixture(scope="session")
async def registry_url() -> str:
    return await migrated_database("registry")


@pytest.fixture(scope="session")
async def registry_engine(registry_url: str, pg_engine_factory: Any) -> AsyncEngine:
    engine: AsyncEngine = pg_engine_factory(registry_url)
    return engine


@pytest.fixture
async def session(registry_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with rolled_back_session(registry_engine) as s:
        yield s


@pytest.fixture
async def client(registry_url: str, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app(Settings(database_url=registry_url)), session) as c:
        yield c


def serial() -> int:
    """Unique serial numbers across the session (NIK/KK uniqueness is global)."""
    return next(_serials) % 9999 + 1


WRITER = "registry:read registry:write"


def auth(scopes: str = WRITER, region: str | None = "15.71", sub: str = "tester") -> dict[str, str]:
    return bearer(scopes, region=region, sub=sub)


def nik(birth: date, sex: str, district: str = DISTRICT) -> str:
    return make_nik(district, birth, sex, serial())  # type: ignore[arg-type]


def person(relation: str, birth: date, sex: str, *, with_nik: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Person {relation}",
        "sex": sex,
        "birth_date": birth.isoformat(),
        "relation": relation,
        "marital_status": "kawin" if relation in ("kepala_keluarga", "istri", "suami") else "belum_kawin",
    }
    if with_nik:
        body["nik"] = nik(birth, sex)
    body.update(extra)
    return body


def family_body(
    village: str = VILLAGE, members: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kk_number": make_kk(village[:8], date(2015, 3, 12), serial()),
        "village_code": village,
        "rw": "003",
        "rt": "001",
        "members": members
        if members is not None
        else [
            person("kepala_keluarga", date(1990, 1, 1), "L"),
            person("istri", date(1995, 5, 5), "P"),
        ],
    }
    body.update(extra)
    return body


async def create_family(client: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    headers = kw.pop("headers", None) or auth(region=None)
    r = await client.post("/v1/families", json=family_body(**kw), headers=headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


@contextmanager
def sql_statements(session: AsyncSession) -> Iterator[list[str]]:
    """SQL the request sends, without the savepoints of the test's outer transaction."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            seen.append(statement)

    engine = session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
