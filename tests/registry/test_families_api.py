"""Families and persons over HTTP: creation, masking, errors, region scope, ETags, change feed."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.registry.conftest import OTHER_VILLAGE, auth, create_family, family_body, nik, person


async def test_create_family_with_head_and_members(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/families", json=family_body(), headers=auth())
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["ETag"] == '"1"'
    assert len(body["members"]) == 2
    head = next(m for m in body["members"] if m["relation"] == "kepala_keluarga")
    assert body["head_person_id"] == head["id"]
    assert head["nik"].startswith("1571") and "*" in head["nik"] and len(head["nik"]) == 16
    assert body["kk_number"].count("*") == 10
    assert any(m["pus"] for m in body["members"])
