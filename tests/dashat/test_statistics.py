"""DASHAT's recount (`GET /v1/statistics`) against hand-computed figures: beneficiaries, enrolments, portions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.dashat.conftest import deliver, envelope, fresh_village, person
from tests.dashat.helpers import OTHER, RO, RW

pytestmark = pytest.mark.integration

T = business_today()


def _day(days_ago: int) -> str:
    return (T - timedelta(days=days_ago)).isoformat()


async def _stats(client: Any, region: str, first: int, last: int, headers: dict[str, str] = RO) -> Any:
    params = {"region": region, "from": _day(first), "to": _day(last)}
    return await client.get("/v1/statistics", params=params, headers=headers)


async def test_beneficiaries_enrolments_and_portions(client: Any, session: AsyncSession) -> None:
    village = fresh_village()
    r = await client.post(
        "/v1/kitchens",
        json={
            "name": "Dapur Sehat Kenanga",
            "village_code": village,
            "rws": ["001"],
            "management_model": "combined",
            "capacity_per_day": 10,
            "opened_on": _day(60),
        },
        headers=RW,
    )
    assert r.status_code == 201, r.text
    kitchen = r.json()["id"]
    fid = uuid.uuid4()
    enrolments = {}
    for name, start in (("a", 5), ("b", 40), ("c", 5)):
        pid = uuid.uuid4()
        await deliver(session, envelope(person(pid, fid, village)))
        body = {
            "person_id": str(pid),
            "kitchen_id": kitchen,
            "category": "ibu_hamil",
            "start_date": _day(start),
        }
        r = await client.post("/v1/enrolments", json=body, headers=RW)
        assert r.status_code == 201, r.text
        enrolments[name] = (pid, r.json()["id"], r.headers["etag"])
    _, c_id, c_etag = enrolments["c"]
    r = await client.post(
        f"/v1/enrolments/{c_id}/exit", json={"reason": "refused"}, headers={**RW, "If-Match": c_etag}
    )
    assert r.status_code == 200, r.text
    a, b = str(enrolments["a"][0]), str(enrolments["b"][0])
    for served_on, delivered, served in ((3, 1, [a]), (1, 2, [a, b])):
        batch = {
            "served_on": _day(served_on),
            "slot": "lunch",
            "portions_cooked": delivered,
            "portions_delivered": delivered,
            "portions_consumed": delivered,
            "served_person_ids": served,
            "absent_person_ids": [],
        }
        r = await client.post(f"/v1/kitchens/{kitchen}/meals", json=batch, headers=RW)
        assert r.status_code == 201, r.text

    c = (await _stats(client, village, 30, 0)).json()["counts"]
    # a and b are fed today (c left today); a and c started in the window; 1 + 2 portions delivered.
    assert c == {"dashat_beneficiaries": 2, "dashat_enrolled": 2, "dashat_portions_served": 3}
    c = (await _stats(client, village, 30, 2)).json()["counts"]
    assert c == {"dashat_beneficiaries": 3, "dashat_enrolled": 2, "dashat_portions_served": 1}
    c = (await _stats(client, village, 60, 10)).json()["counts"]
    assert c == {"dashat_beneficiaries": 1, "dashat_enrolled": 1, "dashat_portions_served": 0}
    assert (await _stats(client, village, 30, 0, OTHER)).status_code == 404  # outside the token's region
