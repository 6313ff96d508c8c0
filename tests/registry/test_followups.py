"""Follow-ups: a corrected or retracted resolving measurement re-opens the stunting case; KK history."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from registry.identity.domain import make_kk
from registry.models import outbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.registry.conftest import auth, create_family, serial
from tests.registry.test_growth_health_api import _cases, _family_with_child, _measure

PII = "registry:read registry:write registry:pii:read"


async def _reopen_events(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    async with session.begin():
        rows = (
            await session.scalars(
                select(outbox.c.envelope).where(outbox.c.event_type == "registry.baduta.stunting_detected.v1")
            )
        ).all()
    return [e for e in rows if e["data"]["case_id"] == case_id and e["data"].get("reopened")]


async def _stunted_then_resolved(client: httpx.AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    _, pid = await _family_with_child(client, 400)
    assert (await _measure(client, pid, 30, 66.0)).status_code == 201
    resolving = (await _measure(client, pid, 1, 76.0)).json()
    [case] = await _cases(client, pid, "resolved")
    return pid, case, resolving


async def test_retracting_the_resolving_measurement_reopens_the_case(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    pid, case, resolving = await _stunted_then_resolved(client)
    r = await client.post(
        f"/v1/measurements/{resolving['id']}/retraction",
        json={"reason": "wrong child"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    [reopened] = await _cases(client, pid, "open")
    assert reopened["id"] == case["id"] and reopened["resolved_by_measurement_id"] is None
    [event] = await _reopen_events(session, case["id"])
    assert event["data"]["measurement_id"] == case["measurement_id"]


async def test_correcting_the_resolving_measurement(client: httpx.AsyncClient, session: AsyncSession) -> None:
    # Still not stunted after the correction: the case stays resolved, now by the corrected measurement.
    pid, case, resolving = await _stunted_then_resolved(client)
    r = await client.post(
        f"/v1/measurements/{resolving['id']}/corrections",
        json={
            "measured_on": resolving["measured_on"],
            "lenhei_cm": 76.5,
            "weight_kg": 9.0,
            "position": "l",
            "reason": "typo",
        },
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 201, r.text
    [still] = await _cases(client, pid, "resolved")
    assert still["resolved_by_measurement_id"] == r.json()["id"]
    # Corrected to a stunted length: the case opens again (the same case, not a new one).
    corrected = r.json()
    r = await client.post(
        f"/v1/measurements/{corrected['id']}/corrections",
        json={
            "measured_on": corrected["measured_on"],
            "lenhei_cm": 67.0,
            "weight_kg": 9.0,
            "position": "l",
            "reason": "misread",
        },
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 201, r.text
    [reopened] = await _cases(client, pid, "open")
    assert reopened["id"] == case["id"]
    assert len(await _reopen_events(session, case["id"])) == 1


async def test_kk_history_masked_unless_pii_and_logged(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    new_kk = make_kk("15.71.01", date(2024, 2, 2), serial())
    r = await client.patch(
        f"/v1/families/{fam['id']}",
        json={"kk_number": new_kk, "kk_change_reason": "pecah_kk"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    history = (await client.get(f"/v1/families/{fam['id']}/kk-history", headers=auth())).json()
    assert [h["reason"] for h in history] == ["registered", "pecah_kk"]
    assert history[0]["valid_to"] is not None and history[1]["valid_to"] is None
    assert all(h["kk_number"] is None for h in history)  # no masked form (issue 12)
    # Unmasked needs a purpose, and is logged against the head.
    r = await client.get(f"/v1/families/{fam['id']}/kk-history", headers=auth(PII))
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "pii.purpose_required"
    r = await client.get(
        f"/v1/families/{fam['id']}/kk-history", headers={**auth(PII), "X-Purpose": "verifikasi"}
    )
    assert r.json()[1]["kk_number"] == new_kk and len(r.json()[0]["kk_number"]) == 16
    log = (
        await client.get(
            f"/v1/persons/{fam['head_person_id']}/access-log", headers={**auth(PII), "X-Purpose": "dsr"}
        )
    ).json()
    assert [x["action"] for x in log["items"]] == ["kk_history"]
    # Outside the region: 404.
    r = await client.get(f"/v1/families/{fam['id']}/kk-history", headers=auth(region="32.76"))
    assert r.status_code == 404
