"""Every registry event type, written through the outbox, published by the relay and read from the real topic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from registry.config import Settings
from registry.main import create_app
from registry.models import outbox

from shared.clock import business_today
from shared.db import create_engine, create_sessionmaker
from shared.outbox import Relay
from shared.testing.plugin import consume, running_app
from tests.registry.conftest import auth, family_body, person

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

EXPECTED = {
    "registry.family.registered.v1",
    "registry.family.updated.v1",
    "registry.family.moved.v1",
    "registry.person.registered.v1",
    "registry.person.updated.v1",
    "registry.person.died.v1",
    "registry.person.moved.v1",
    "registry.kb_status.changed.v1",
    "registry.catin.registered.v1",
    "registry.pregnancy.registered.v1",
    "registry.pregnancy.ended.v1",
    "registry.child.measured.v1",
    "registry.child.measurement_retracted.v1",
    "registry.baduta.stunting_detected.v1",
    "registry.baduta.stunting_resolved.v1",
    "registry.baduta.stunting_retracted.v1",
    "registry.family.stunting_risk_changed.v1",
}


async def test_all_events_reach_the_topic(
    registry_url: str, topic_factory: Callable[..., Awaitable[str]], kafka_bootstrap: str
) -> None:
    topic = await topic_factory("registry-events")
    app = create_app(Settings(database_url=registry_url))
    h = auth()
    today = business_today()
    niks: list[str] = []
    async with running_app(app) as client:

        async def ok(r: Any, status: int = 200) -> dict[str, Any]:
            assert r.status_code == status, r.text
            return dict(r.json())

        child_birth = today - timedelta(days=400)
        body = family_body(
            members=[
                person("kepala_keluarga", date(1990, 1, 1), "L"),
                person("istri", date(1995, 5, 5), "P"),
                person("anak", child_birth, "L", with_nik=False),
            ],
            latrine_type="tidak_ada",
        )
        niks += [m["nik"] for m in body["members"] if "nik" in m] + [body["kk_number"]]
        fam = await ok(await client.post("/v1/families", json=body, headers=h), 201)
        fid = fam["id"]
        head, wife, child = fam["members"][0], fam["members"][1], fam["members"][2]
        if head["relation"] != "kepala_keluarga":
            head, wife, child = sorted(fam["members"], key=lambda m: m["birth_date"])
        fam = await ok(
            await client.patch(
                f"/v1/families/{fid}", json={"welfare_decile": 2}, headers={**h, "If-Match": '"1"'}
            )
        )
        await ok(
            await client.post(
                f"/v1/families/{fid}/move",
                json={"village_code": "15.71.01.1002", "moved_on": today.isoformat()},
                headers={**h, "If-Match": '"2"'},
            )
        )
        await ok(
            await client.patch(
                f"/v1/persons/{head['id']}", json={"occupation": "petani"}, headers={**h, "If-Match": '"1"'}
            )
        )
        await ok(
            await client.post(
                f"/v1/persons/{wife['id']}/kb-status",
                json={"method": "iud", "since": "2025-01-01"},
                headers=h,
            ),
            201,
        )
        preg = await ok(
            await client.post(
                "/v1/pregnancies",
                json={"person_id": wife["id"], "lmp": (today - timedelta(days=100)).isoformat()},
                headers=h,
            ),
            201,
        )
        await ok(
            await client.post(
                f"/v1/pregnancies/{preg['id']}/end",
                json={"outcome": "loss", "ended_on": today.isoformat()},
                headers={**h, "If-Match": '"1"'},
            )
        )
        other = await ok(
            await client.post(
                "/v1/families",
                json=family_body(
                    members=[
                        person("kepala_keluarga", date(1960, 1, 1), "L"),
                        person("anak", date(2003, 3, 3), "P"),
                    ]
                ),
                headers=h,
            ),
            201,
        )
        bride = next(m for m in other["members"] if m["relation"] == "anak")
        await ok(
            await client.post(
                "/v1/catin",
                json={
                    "person_id": bride["id"],
                    "planned_marriage_date": (today + timedelta(days=100)).isoformat(),
                    "screened_on": today.isoformat(),
                    "lila_cm": 22.0,
                },
                headers=h,
            ),
            201,
        )
        await ok(
            await client.post(
                f"/v1/persons/{bride['id']}/move",
                json={"to_family_id": fid, "relation": "famili_lain", "moved_on": today.isoformat()},
                headers={**h, "If-Match": '"1"'},
            )
        )
        m1 = await ok(
            await client.post(
                "/v1/measurements",
                json={
                    "person_id": child["id"],
                    "measured_on": (today - timedelta(days=30)).isoformat(),
                    "lenhei_cm": 66.0,
                    "position": "l",
                    "weight_kg": 8.0,
                },
                headers=h,
            ),
            201,
        )
        await ok(
            await client.post(
                f"/v1/measurements/{m1['id']}/retraction",
                json={"reason": "wrong child"},
                headers={**h, "If-Match": '"1"'},
            )
        )
        await ok(
            await client.post(
                "/v1/measurements",
                json={
                    "person_id": child["id"],
                    "measured_on": (today - timedelta(days=20)).isoformat(),
                    "lenhei_cm": 66.0,
                    "position": "l",
                    "weight_kg": 8.0,
                },
                headers=h,
            ),
            201,
        )
        await ok(
            await client.post(
                "/v1/measurements",
                json={
                    "person_id": child["id"],
                    "measured_on": today.isoformat(),
                    "lenhei_cm": 77.0,
                    "position": "l",
                    "weight_kg": 9.5,
                },
                headers=h,
            ),
            201,
        )
        await ok(
            await client.post(
                f"/v1/persons/{head['id']}/death",
                json={"died_on": today.isoformat()},
                headers={**h, "If-Match": '"2"'},
            )
        )
        family_ids = {fid, other["id"]}

    engine = create_engine(registry_url, pool_size=2)
    relay = Relay(
        service="registry-test",
        sessionmaker=create_sessionmaker(engine),
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _t: topic,
    )
    try:
        while await relay.publish_batch():
            pass
    finally:
        await relay._reset_producer()
        await engine.dispose()

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        envs = [orjson.loads(r.value) for r in records]
        return [
            e
            for e in envs
            if e["data"].get("family_id") in family_ids or e["data"].get("from_family_id") in family_ids
        ]

    records = await consume(topic, until=lambda rs: {e["type"] for e in mine(rs)} >= EXPECTED, timeout=60)
    envelopes = mine(records)
    assert {e["type"] for e in envelopes} >= EXPECTED
    for rec in records:
        env = orjson.loads(rec.value)
        if env["partitionkey"] in family_ids:
            assert rec.key.decode() == env["partitionkey"]
        raw = rec.value.decode()
        assert not any(n in raw for n in niks), "a NIK or KK number leaked into an event"
        assert "Person " not in raw, "a name leaked into an event"
    by_type = {e["type"]: e["data"] for e in envelopes}
    detected = by_type["registry.baduta.stunting_detected.v1"]
    assert (
        detected["haz"] < -2
        and detected["age_days"] < 730
        and detected["rule_version"] == "registry-rules-2026.2"
    )
    assert by_type["registry.baduta.stunting_retracted.v1"]["reason"] == "measurement_retracted"
    kb = by_type["registry.kb_status.changed.v1"]
    assert kb["mkjp"] is True and kb["pus"] is True
    assert by_type["registry.family.moved.v1"]["village_code"] == "15.71.01.1002"
    risk = [e["data"] for e in envelopes if e["type"] == "registry.family.stunting_risk_changed.v1"]
    assert any(r["at_risk"] and "latrine_improper" in r["reasons"] for r in risk)
