"""Issue 13: every uppka POST retried with the same Idempotency-Key right after its answer and eight at once.

The requests really commit, so they run on a database of their own (see tests/shared/retries.py).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from uppka.config import Settings
from uppka.main import create_app
from uppka.reports.domain import period_of

from shared.clock import business_today
from shared.db import create_sessionmaker
from shared.testing.plugin import bearer, unique
from tests.shared.retries import Builder, Call, retry_every_post
from tests.shared.retry_db import committed_database, served
from tests.uppka.conftest import REGION, WRITE, group_body, seed_kitchen, seed_person

pytestmark = pytest.mark.integration

SETUP = bearer(WRITE, region=REGION, sub="setup")
TODAY = business_today()
FIGURES = {
    "omzet": 12_500_000,
    "costs": 9_000_000,
    "capital_balance": 4_000_000,
    "members_present": 18,
    "active_members": 20,
    "new_kb_acceptors": 2,
    "mkjp_switchers": 1,
}
_years = itertools.count(2030)


@pytest.fixture(scope="module")
async def db_url() -> str:
    return await committed_database("uppka")


@pytest.fixture
async def engine(db_url: str, pg_engine_factory: Any) -> AsyncEngine:
    made: AsyncEngine = pg_engine_factory(db_url)
    return made


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with served(create_app(Settings(database_url=db_url))) as c:
        yield c


def caller() -> dict[str, str]:
    return bearer(WRITE, sub=unique("caller-"))  # national: targets are set for a province


async def _ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


def builders(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, Builder]:
    sessions = create_sessionmaker(engine)

    async def group() -> dict[str, Any]:
        return await _ok(await client.post("/v1/groups", json=group_body(), headers=SETUP))

    async def known_person() -> str:
        async with sessions() as s:
            return str((await seed_person(s)).person_id)  # its events applied and committed

    async def member(group_id: str) -> dict[str, Any]:
        body = {"person_id": await known_person(), "role": "anggota"}
        return await _ok(await client.post(f"/v1/groups/{group_id}/members", json=body, headers=SETUP))

    async def business(group_id: str) -> dict[str, Any]:
        body = {"name": "Keripik Pisang Sipin", "sector": "food_processing"}
        return await _ok(await client.post(f"/v1/groups/{group_id}/businesses", json=body, headers=SETUP))

    async def groups() -> Call:
        return Call("/v1/groups", json=group_body())

    async def funding() -> Call:
        g = await group()
        return Call(f"/v1/groups/{g['id']}/funding", json={"source": "apbd", "amount": 1_000_000})

    async def members() -> Call:
        g = await group()
        return Call(
            f"/v1/groups/{g['id']}/members", json={"person_id": await known_person(), "role": "anggota"}
        )

    async def leave() -> Call:
        g = await group()
        m = await member(g["id"])
        return Call(f"/v1/groups/{g['id']}/members/{m['id']}/leave", json={}, headers={"If-Match": '"1"'})

    async def businesses() -> Call:
        g = await group()
        return Call(f"/v1/groups/{g['id']}/businesses", json={"name": "Sale pisang", "sector": "trade"})

    async def products() -> Call:
        g = await group()
        b = await business(g["id"])
        body = {"name": "Sale pisang", "unit": "kg", "price": 60_000}
        return Call(f"/v1/groups/{g['id']}/businesses/{b['id']}/products", json=body)

    async def capital() -> Call:
        g = await group()
        b = await business(g["id"])
        body = {"source": "kur", "amount": 10_000_000}
        return Call(f"/v1/groups/{g['id']}/businesses/{b['id']}/capital", json=body)

    async def reports() -> Call:
        g = await group()
        return Call(f"/v1/groups/{g['id']}/reports", json={"period": period_of(TODAY), **FIGURES})

    async def amendments() -> Call:
        g = await group()
        body = {"period": period_of(TODAY), **FIGURES}
        rep = await _ok(await client.post(f"/v1/groups/{g['id']}/reports", json=body, headers=SETUP))
        amended = {**FIGURES, "omzet": 13_000_000, "reason": "nota terlambat"}
        return Call(
            f"/v1/groups/{g['id']}/reports/{rep['id']}/amendments", json=amended, headers={"If-Match": '"1"'}
        )

    async def contributions() -> Call:
        g = await group()
        async with sessions() as s:
            kitchen = await seed_kitchen(s)
        body = {"kitchen_id": str(kitchen), "kind": "cash", "amount": 250_000}
        return Call(f"/v1/groups/{g['id']}/dashat-contributions", json=body)

    async def activities() -> Call:
        g = await group()
        m = await member(g["id"])
        body = {
            "activity_type": "pek_stunting",
            "held_on": TODAY.isoformat(),
            "facilitator": "PLKB Kota Baru",
            "attendee_member_ids": [m["id"]],
        }
        return Call(f"/v1/groups/{g['id']}/activities", json=body)

    async def targets() -> Call:
        return Call("/v1/targets", json={"year": next(_years), "province_code": "15", "target_groups": 3})

    return {
        "/v1/groups": groups,
        "/v1/groups/{group_id}/funding": funding,
        "/v1/groups/{group_id}/members": members,
        "/v1/groups/{group_id}/members/{member_id}/leave": leave,
        "/v1/groups/{group_id}/businesses": businesses,
        "/v1/groups/{group_id}/businesses/{business_id}/products": products,
        "/v1/groups/{group_id}/businesses/{business_id}/capital": capital,
        "/v1/groups/{group_id}/reports": reports,
        "/v1/groups/{group_id}/reports/{report_id}/amendments": amendments,
        "/v1/groups/{group_id}/dashat-contributions": contributions,
        "/v1/groups/{group_id}/activities": activities,
        "/v1/targets": targets,
    }


async def test_every_post_replays_its_first_answer_and_runs_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    made = builders(client, engine)
    outcomes = await retry_every_post(client, engine, caller, made)
    by_path = {o.path: o for o in outcomes}
    assert set(by_path) == set(made), set(by_path) ^ set(made)
    assert {p: o.first_status for p, o in by_path.items() if not 200 <= o.first_status < 300} == {}
    for path in ("/v1/groups", "/v1/groups/{group_id}/reports", "/v1/targets"):
        assert by_path[path].outbox_added_once >= 1, by_path[path]
