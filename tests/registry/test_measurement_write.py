"""Recording a measurement: one look-up of the child and one write, with the same response, rows and events."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from registry.families import repository as fam_repo
from registry.growth import repository as repo
from registry.models import outbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.events.registry import BadutaStuntingDetected, ChildMeasured, StuntingResolved
from tests.registry.conftest import auth, create_family, person, sql_statements


async def _child(client: httpx.AsyncClient, age_days: int) -> tuple[str, str]:
    family = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1990, 1, 1), "L"),
            person("anak", business_today() - timedelta(days=age_days), "P", with_nik=False),
        ],
    )
    child = next(m for m in family["members"] if m["relation"] == "anak")
    return family["id"], child["id"]


def _body(child_id: str, days_ago: int, length: float) -> dict[str, Any]:
    return {
        "person_id": child_id,
        "measured_on": (business_today() - timedelta(days=days_ago)).isoformat(),
        "lenhei_cm": length,
        "position": "l",
        "weight_kg": 9.0,
    }


async def _event_types(session: AsyncSession, family_id: str) -> list[str]:
    return list(
        await session.scalars(
            select(outbox.c.event_type).where(outbox.c.partition_key == family_id).order_by(outbox.c.seq)
        )
    )


async def test_a_measurement_is_one_lookup_and_one_write(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    family_id, child_id = await _child(client, 400)
    with sql_statements(session) as sent:
        r = await client.post("/v1/measurements", json=_body(child_id, 30, 76.0), headers=auth())
    assert r.status_code == 201, r.text
    assert len(sent) == 2, sent
    made = r.json()
    assert made["version"] == 1 and made["updated_at"] and made["status"] == "active"
    assert r.headers["Location"] == f"/v1/measurements/{made['id']}"
    # What the response says is what a read of the stored row finds.
    read = await client.get(f"/v1/measurements/{made['id']}", headers=auth())
    assert read.json() == made
    assert read.headers["ETag"] == r.headers["ETag"]
    types = await _event_types(session, family_id)
    assert types[-1] == ChildMeasured.event_type and types.count(ChildMeasured.event_type) == 1
    envelope = (
        await session.execute(
            select(outbox.c.envelope).where(
                outbox.c.partition_key == family_id, outbox.c.event_type == ChildMeasured.event_type
            )
        )
    ).scalar_one()
    assert envelope["data"]["measurement_id"] == made["id"] and envelope["data"]["haz"] == made["haz"]


async def test_cases_still_open_and_resolve_after_the_measured_event(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    family_id, child_id = await _child(client, 400)
    stunted = await client.post("/v1/measurements", json=_body(child_id, 30, 66.0), headers=auth())
    assert stunted.status_code == 201, stunted.text
    again = await client.post("/v1/measurements", json=_body(child_id, 20, 66.5), headers=auth())
    assert again.status_code == 201, again.text
    grown = await client.post("/v1/measurements", json=_body(child_id, 1, 76.0), headers=auth())
    assert grown.status_code == 201, grown.text
    case = (await client.get("/v1/stunting-cases", params={"status": "resolved"}, headers=auth())).json()
    mine = [c for c in case["items"] if c["person_id"] == child_id]
    assert len(mine) == 1
    assert mine[0]["measurement_id"] == stunted.json()["id"]
    assert mine[0]["resolved_by_measurement_id"] == grown.json()["id"]
    # Read after the requests: the test session is the one the app uses.
    growth = {ChildMeasured.event_type, BadutaStuntingDetected.event_type, StuntingResolved.event_type}
    assert [t for t in await _event_types(session, family_id) if t in growth] == [
        ChildMeasured.event_type,
        BadutaStuntingDetected.event_type,
        ChildMeasured.event_type,
        ChildMeasured.event_type,
        StuntingResolved.event_type,
    ]


def test_the_write_statement_is_built_once() -> None:
    # Every value is a bound parameter, so SQLAlchemy's compiled cache serves every request after the first.
    assert repo._new_measurement_statement() is repo._new_measurement_statement()


def test_the_child_lookup_is_built_once_per_region_and_lock() -> None:
    # The region is part of the statement; the person is a bound parameter, so one statement serves every child.
    assert fam_repo._person_statement("15.71", True) is fam_repo._person_statement("15.71", True)
    assert fam_repo._person_statement("15.71", True) is not fam_repo._person_statement("15.72", True)
