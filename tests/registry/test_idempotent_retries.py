"""Issue 13: every registry POST retried with the same Idempotency-Key right after its answer and eight at once.

The requests really commit (that is what is under test: the effect and its stored answer in one transaction), so
they run on a database of their own rather than in the rolled-back session of the other tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from registry.config import Settings
from registry.identity.domain import make_kk
from registry.main import create_app
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import business_today
from shared.testing.plugin import unique
from tests.registry.conftest import DISTRICT, VILLAGE, auth, family_body, nik, person, serial
from tests.shared.retries import Builder, Call, retry_every_post
from tests.shared.retry_db import committed_database, served

pytestmark = pytest.mark.integration

SCOPES = "registry:read registry:write registry:import registry:pii:read registry:nik:search"
SETUP = auth(SCOPES, region=None, sub="setup")


@pytest.fixture(scope="module")
async def db_url() -> str:
    return await committed_database("registry")


@pytest.fixture
async def engine(db_url: str, pg_engine_factory: Any) -> AsyncEngine:
    made: AsyncEngine = pg_engine_factory(db_url)
    return made


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with served(create_app(Settings(database_url=db_url))) as c:
        yield c


def caller() -> dict[str, str]:
    return {**auth(SCOPES, sub=unique("caller-")), "X-Purpose": "PDP-2026-013"}


async def _ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


def builders(client: httpx.AsyncClient) -> dict[str, Builder]:
    today = business_today()

    async def family(**kw: Any) -> dict[str, Any]:
        return await _ok(await client.post("/v1/families", json=family_body(**kw), headers=SETUP))

    async def with_child() -> tuple[dict[str, Any], dict[str, Any]]:
        fam = await family(
            members=[
                person("kepala_keluarga", date(1990, 1, 1), "L"),
                person("istri", date(1995, 5, 5), "P"),
                person("anak", today - timedelta(days=300), "L", with_nik=False),
            ]
        )
        return fam, next(m for m in fam["members"] if m["relation"] == "anak")

    def wife_of(fam: dict[str, Any]) -> dict[str, Any]:
        return next(m for m in fam["members"] if m["relation"] == "istri")

    async def measurement() -> dict[str, Any]:
        _, child = await with_child()
        body = {
            "person_id": child["id"],
            "measured_on": today.isoformat(),
            "lenhei_cm": 70.0,
            "position": "l",
        }
        return await _ok(
            await client.post("/v1/measurements", json={**body, "weight_kg": 8.0}, headers=SETUP)
        )

    async def kampung_kb() -> Call:
        code = f"KKB-{uuid.uuid4().hex[:8]}"
        return Call("/v1/kampung-kb", json={"code": code, "name": "KKB Mekar", "village_code": VILLAGE})

    async def families() -> Call:
        return Call("/v1/families", json=family_body())

    async def family_move() -> Call:
        fam = await family()
        body = {"village_code": "15.71.01.1002", "moved_on": today.isoformat()}
        return Call(f"/v1/families/{fam['id']}/move", json=body, headers={"If-Match": '"1"'})

    async def members() -> Call:
        fam = await family()
        return Call(f"/v1/families/{fam['id']}/members", json=person("anak", date(2020, 2, 2), "P"))

    async def search() -> Call:
        body = family_body()
        await _ok(await client.post("/v1/families", json=body, headers=SETUP))
        return Call("/v1/persons:search", json={"nik": body["members"][0]["nik"]})

    async def death() -> Call:
        wife = wife_of(await family())
        return Call(
            f"/v1/persons/{wife['id']}/death",
            json={"died_on": today.isoformat()},
            headers={"If-Match": '"1"'},
        )

    async def person_move() -> Call:
        wife, other = wife_of(await family()), await family()
        body = {"to_family_id": other["id"], "relation": "famili_lain", "moved_on": today.isoformat()}
        return Call(f"/v1/persons/{wife['id']}/move", json=body, headers={"If-Match": '"1"'})

    async def kb_status() -> Call:
        wife = wife_of(await family())
        return Call(f"/v1/persons/{wife['id']}/kb-status", json={"method": "iud", "since": "2025-01-01"})

    async def catin() -> Call:
        fam = await family(
            members=[person("kepala_keluarga", date(1960, 1, 1), "L"), person("anak", date(2003, 3, 3), "P")]
        )
        bride = next(m for m in fam["members"] if m["relation"] == "anak")
        body = {
            "person_id": bride["id"],
            "planned_marriage_date": (today + timedelta(days=100)).isoformat(),
            "screened_on": today.isoformat(),
            "lila_cm": 22.0,
        }
        return Call("/v1/catin", json=body)

    async def pregnancy_body() -> dict[str, Any]:
        wife = wife_of(await family())
        return {"person_id": wife["id"], "lmp": (today - timedelta(days=100)).isoformat()}

    async def pregnancies() -> Call:
        return Call("/v1/pregnancies", json=await pregnancy_body())

    async def pregnancy_end() -> Call:
        preg = await _ok(await client.post("/v1/pregnancies", json=await pregnancy_body(), headers=SETUP))
        body = {"outcome": "loss", "ended_on": today.isoformat()}
        return Call(f"/v1/pregnancies/{preg['id']}/end", json=body, headers={"If-Match": '"1"'})

    async def measurements() -> Call:
        _, child = await with_child()
        body = {
            "person_id": child["id"],
            "measured_on": today.isoformat(),
            "lenhei_cm": 66.0,
            "position": "l",
            "weight_kg": 8.0,
        }
        return Call("/v1/measurements", json=body)

    async def correction() -> Call:
        m = await measurement()
        body = {
            "measured_on": m["measured_on"],
            "lenhei_cm": 71.5,
            "position": "l",
            "weight_kg": 8.2,
            "reason": "length misread",
        }
        return Call(f"/v1/measurements/{m['id']}/corrections", json=body, headers={"If-Match": '"1"'})

    async def retraction() -> Call:
        m = await measurement()
        return Call(
            f"/v1/measurements/{m['id']}/retraction",
            json={"reason": "wrong child"},
            headers={"If-Match": '"1"'},
        )

    async def score() -> Call:
        return Call(
            "/v1/anthropometry:score",
            json={"items": [{"sex": "L", "age_days": 730, "lenhei_cm": 81.7, "position": "l"}]},
        )

    async def merge() -> Call:
        birth = today - timedelta(days=200)
        name = f"Rahmat {uuid.uuid4().hex[:6]}"
        a = await family(
            members=[person("kepala_keluarga", date(1980, 2, 2), "L"), person("anak", birth, "L", name=name)]
        )
        b = await family(
            members=[
                person("kepala_keluarga", date(1981, 3, 3), "L"),
                person("anak", birth, "L", with_nik=False, name=name),
            ]
        )
        kept = next(m for m in a["members"] if m["relation"] == "anak")
        dup = next(m for m in b["members"] if m["relation"] == "anak")
        return Call(
            f"/v1/persons/{kept['id']}/merge",
            json={"merged_person_id": dup["id"]},
            headers={"If-Match": '"1"'},
        )

    async def imports() -> Call:
        kk = make_kk(DISTRICT, date(2015, 3, 12), serial())
        head, wife = nik(date(1990, 1, 1), "L"), nik(date(1995, 5, 5), "P")
        csv = (
            "kk_number,village_code,rw,rt,latrine_type,nik,name,sex,birth_date,relation,marital_status\n"
            f"{kk},{VILLAGE},003,001,tidak_ada,{head},Budi,L,1990-01-01,kepala_keluarga,kawin\n"
            f"{kk},{VILLAGE},003,001,tidak_ada,{wife},Siti,P,1995-05-05,istri,kawin\n"
        )
        return Call(
            "/v1/imports",
            content=csv.encode(),
            headers={"Content-Type": "text/csv"},
            params={"mode": "commit"},
        )

    return {
        "/v1/kampung-kb": kampung_kb,
        "/v1/families": families,
        "/v1/families/{family_id}/move": family_move,
        "/v1/families/{family_id}/members": members,
        "/v1/persons:search": search,
        "/v1/persons/{person_id}/death": death,
        "/v1/persons/{person_id}/move": person_move,
        "/v1/persons/{person_id}/kb-status": kb_status,
        "/v1/catin": catin,
        "/v1/pregnancies": pregnancies,
        "/v1/pregnancies/{pregnancy_id}/end": pregnancy_end,
        "/v1/measurements": measurements,
        "/v1/measurements/{measurement_id}/corrections": correction,
        "/v1/measurements/{measurement_id}/retraction": retraction,
        "/v1/anthropometry:score": score,
        "/v1/persons/{person_id}/merge": merge,
        "/v1/imports": imports,
    }


async def test_every_post_replays_its_first_answer_and_runs_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    made = builders(client)
    outcomes = await retry_every_post(client, engine, caller, made)
    by_path = {o.path: o for o in outcomes}
    # Every POST of the OpenAPI has a request that succeeds, so each retry is checked against a real effect.
    assert set(by_path) == set(made), set(by_path) ^ set(made)
    assert {p: o.first_status for p, o in by_path.items() if not 200 <= o.first_status < 300} == {}
    # Writes publish: a registration, a move, a measurement each added events, and the burst no more than one.
    for path in ("/v1/families", "/v1/measurements", "/v1/families/{family_id}/move"):
        assert by_path[path].outbox_added_once >= 1, by_path[path]
    assert by_path["/v1/anthropometry:score"].outbox_added_once == 0


async def test_a_burst_registers_one_family(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    import asyncio

    body, key, who = family_body(), unique("idem-"), caller()

    async def count() -> int:
        async with engine.connect() as conn:
            q = text("select count(*) from family where village_code = :v")
            return int((await conn.execute(q, {"v": VILLAGE})).scalar_one())

    before = await count()
    answers = await asyncio.gather(
        *(client.post("/v1/families", json=body, headers={**who, "Idempotency-Key": key}) for _ in range(8))
    )
    assert sorted({r.status_code for r in answers}) in ([201], [201, 409])
    created = {r.json()["id"] for r in answers if r.status_code == 201}
    assert len(created) == 1
    assert await count() == before + 1
    # And the same key with another body is still 422, naming the header.
    other = await client.post("/v1/families", json=family_body(), headers={**who, "Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "header.Idempotency-Key"
