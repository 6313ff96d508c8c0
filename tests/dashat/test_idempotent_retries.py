"""Issue 13: every dashat POST retried with the same Idempotency-Key right after its answer and eight at once.

The requests really commit, so they run on a database of their own (see tests/shared/retries.py).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from dashat.config import Settings
from dashat.main import create_app
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import business_today
from shared.db import create_sessionmaker
from shared.testing.plugin import bearer, unique
from tests.dashat.conftest import deliver, envelope, fresh_village, person
from tests.shared.retries import Builder, Call, retry_every_post
from tests.shared.retry_db import committed_database, served

pytestmark = pytest.mark.integration

SCOPES = "dashat:read dashat:write dashat:rules"
SETUP = bearer(SCOPES, sub="setup")
_days_ahead = itertools.count(30)


@pytest.fixture(scope="module")
async def db_url() -> str:
    return await committed_database("dashat")


@pytest.fixture
async def engine(db_url: str, pg_engine_factory: Any) -> AsyncEngine:
    made: AsyncEngine = pg_engine_factory(db_url)
    return made


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with served(create_app(Settings(database_url=db_url))) as c:
        yield c


def caller() -> dict[str, str]:
    return bearer(SCOPES, sub=unique("caller-"))  # national: rule versions without a region are national


async def _ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


def kitchen_body(village: str) -> dict[str, Any]:
    return {
        "name": "Dapur Sehat Melati",
        "village_code": village,
        "management_model": "combined",
        "capacity_per_day": 5,
        "opened_on": (business_today() - timedelta(days=40)).isoformat(),
    }


def builders(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, Builder]:
    sessions = create_sessionmaker(engine)

    async def kitchen() -> dict[str, Any]:
        return await _ok(await client.post("/v1/kitchens", json=kitchen_body(fresh_village()), headers=SETUP))

    async def mother_near(k: dict[str, Any]) -> str:
        pid = uuid.uuid4()
        async with sessions() as s:
            await deliver(s, envelope(person(pid, uuid.uuid4(), k["village_code"])))
        return str(pid)

    def enrolment_body(k: dict[str, Any], pid: str) -> dict[str, Any]:
        start = (business_today() - timedelta(days=5)).isoformat()
        return {"person_id": pid, "kitchen_id": k["id"], "category": "ibu_hamil", "start_date": start}

    async def enrolled() -> tuple[dict[str, Any], str, dict[str, Any]]:
        k = await kitchen()
        pid = await mother_near(k)
        e = await _ok(await client.post("/v1/enrolments", json=enrolment_body(k, pid), headers=SETUP))
        return k, pid, e

    async def food_ids() -> list[str]:
        foods = (await client.get("/v1/foods", params={"limit": 200}, headers=SETUP)).json()["items"]
        by_code = {f["code"]: f["id"] for f in foods}
        return [by_code["nasi_putih"], by_code["telur_ayam_ras"]]

    async def kitchens() -> Call:
        return Call("/v1/kitchens", json=kitchen_body(fresh_village()))

    async def close() -> Call:
        k = await kitchen()
        body = {"closed_on": business_today().isoformat()}
        return Call(f"/v1/kitchens/{k['id']}/close", json=body, headers={"If-Match": '"1"'})

    async def enrolments() -> Call:
        k = await kitchen()
        return Call("/v1/enrolments", json=enrolment_body(k, await mother_near(k)))

    async def exit_() -> Call:
        _, _, e = await enrolled()
        return Call(f"/v1/enrolments/{e['id']}/exit", json={"reason": "refused"}, headers={"If-Match": '"1"'})

    async def foods() -> Call:
        body = {
            "code": f"ikan_gabus_{uuid.uuid4().hex[:6]}",
            "name": "Ikan gabus, segar",
            "food_group": "ikan",
            "energy_kcal": 80,
            "protein_g": 16,
            "fat_g": 1,
            "carbohydrate_g": 0,
            "iron_mg": 0.5,
            "source": "local lab",
        }
        return Call("/v1/foods", json=body)

    async def menus() -> Call:
        rice, egg = await food_ids()
        items = [{"food_id": rice, "grams": 100}, {"food_id": egg, "grams": 50}]
        return Call(
            "/v1/menus", json={"name": "Nasi telur bayam", "category": "baduta_stunting", "items": items}
        )

    async def meals() -> Call:
        k, pid, _ = await enrolled()
        batch = {
            "served_on": (business_today() - timedelta(days=1)).isoformat(),
            "slot": "lunch",
            "portions_cooked": 2,
            "portions_delivered": 1,
            "portions_consumed": 1,
            "served_person_ids": [pid],
            "absent_person_ids": [],
        }
        return Call(f"/v1/kitchens/{k['id']}/meals", json=batch)

    async def ledger() -> Call:
        k = await kitchen()
        body = {
            "kind": "income",
            "source": "dana_desa",
            "amount": 3_000_000,
            "entry_on": business_today().isoformat(),
        }
        return Call(f"/v1/kitchens/{k['id']}/ledger", json=body)

    async def rule_versions() -> Call:
        starts = (business_today() + timedelta(days=next(_days_ahead))).isoformat()
        return Call("/v1/rule-versions", json={"effective_from": starts})

    return {
        "/v1/kitchens": kitchens,
        "/v1/kitchens/{kitchen_id}/close": close,
        "/v1/enrolments": enrolments,
        "/v1/enrolments/{enrolment_id}/exit": exit_,
        "/v1/foods": foods,
        "/v1/menus": menus,
        "/v1/kitchens/{kitchen_id}/meals": meals,
        "/v1/kitchens/{kitchen_id}/ledger": ledger,
        "/v1/rule-versions": rule_versions,
    }


async def test_every_post_replays_its_first_answer_and_runs_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    made = builders(client, engine)
    outcomes = await retry_every_post(client, engine, caller, made)
    by_path = {o.path: o for o in outcomes}
    assert set(by_path) == set(made), set(by_path) ^ set(made)
    assert {p: o.first_status for p, o in by_path.items() if not 200 <= o.first_status < 300} == {}
    for path in ("/v1/kitchens", "/v1/enrolments", "/v1/kitchens/{kitchen_id}/close"):
        assert by_path[path].outbox_added_once >= 1, by_path[path]
