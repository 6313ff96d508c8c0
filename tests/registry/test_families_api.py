"""Families and persons over HTTP: creation, masking, errors, region scope, ETags, change feed."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx

from shared.clock import business_today
from tests.registry.conftest import OTHER_VILLAGE, auth, create_family, family_body, nik, person


async def test_create_family_with_head_and_members(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/families", json=family_body(), headers=auth())
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["ETag"] == '"1"'
    assert len(body["members"]) == 2
    head = next(m for m in body["members"] if m["relation"] == "kepala_keluarga")
    assert body["head_person_id"] == head["id"]
    # No masked form of either number (issue 12): only whether one is on file.
    assert head["nik"] is None and head["has_nik"] is True
    assert body["kk_number"] is None and body["has_kk_number"] is True
    assert any(m["pus"] for m in body["members"])


def _errors(r: httpx.Response) -> list[tuple[str, str]]:
    return [(e["field"], e["rule"]) for e in r.json().get("errors", [])]


async def test_family_without_head_is_422(client: httpx.AsyncClient) -> None:
    body = family_body(members=[person("istri", date(1995, 5, 5), "P")])
    r = await client.post("/v1/families", json=body, headers=auth())
    assert r.status_code == 422
    assert ("body.members", "family.head_required") in _errors(r)


async def test_unknown_village_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/families", json=family_body(village="15.71.01.9999"), headers=auth())
    assert r.status_code == 422
    assert ("body.village_code", "region.village_unknown") in _errors(r)


async def test_invalid_nik_names_each_rule(client: httpx.AsyncClient) -> None:
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    head["nik"] = "9900003213990000"  # unknown province, zero regency, bad date, zero serial
    r = await client.post("/v1/families", json=family_body(members=[head]), headers=auth())
    assert r.status_code == 422
    rules = {rule for field, rule in _errors(r) if field == "body.members.0.nik"}
    assert {"nik.province_unknown", "nik.regency_zero", "nik.birth_date_invalid", "nik.serial_zero"} <= rules


async def test_nik_birth_date_and_sex_mismatch_is_422(client: httpx.AsyncClient) -> None:
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    head["nik"] = nik(date(1990, 1, 2), "P")
    r = await client.post("/v1/families", json=family_body(members=[head]), headers=auth())
    assert r.status_code == 422
    rules = {rule for _, rule in _errors(r)}
    assert {"nik.birth_date_mismatch", "nik.sex_mismatch"} <= rules


async def test_birth_date_in_future_is_422(client: httpx.AsyncClient) -> None:
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    child = person("anak", business_today() + timedelta(days=3), "P", with_nik=False)
    r = await client.post("/v1/families", json=family_body(members=[head, child]), headers=auth())
    assert r.status_code == 422
    assert ("body.members.1.birth_date", "person.birth_date_future") in _errors(r)


async def test_consent_for_child_needs_guardian(client: httpx.AsyncClient) -> None:
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    child = person("anak", date(2020, 1, 1), "P", with_nik=False, legal_basis="consent")
    r = await client.post("/v1/families", json=family_body(members=[head, child]), headers=auth())
    assert r.status_code == 422
    assert ("body.members.1.guardian_person_id", "legal_basis.guardian_required") in _errors(r)


async def test_duplicate_nik_is_409_with_existing_id_and_no_number(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    head = next(m for m in fam["members"] if m["relation"] == "kepala_keluarga")
    # Read the plain NIK (pii scope + purpose) to re-use it.
    r = await client.get(
        f"/v1/persons/{head['id']}",
        headers={**auth("registry:read registry:pii:read"), "X-Purpose": "dedup test"},
    )
    plain = r.json()["nik"]
    again = person("kepala_keluarga", date(1990, 1, 1), "L", nik=plain)
    r = await client.post("/v1/families", json=family_body(members=[again]), headers=auth())
    assert r.status_code == 409
    body = r.json()
    assert body["existing_person_id"] == head["id"]
    # No form of the number: not plain, not masked (a mask is asterisks; ids may end in any two digits).
    assert "existing_nik_masked" not in body and plain not in r.text and "**" not in r.text
    # Outside the holder's region the 409 says the same, without who holds it.
    r = await client.post(
        "/v1/families", json=family_body(village=OTHER_VILLAGE, members=[again]), headers=auth(region="32")
    )
    assert r.status_code == 409 and "existing_person_id" not in r.json()
    assert {k: v for k, v in r.json().items() if k not in ("existing_person_id", "correlation_id")} == {
        k: v for k, v in body.items() if k not in ("existing_person_id", "correlation_id")
    }


async def test_masking_and_access_log(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    pid = fam["members"][0]["id"]
    masked = await client.get(f"/v1/persons/{pid}", headers=auth("registry:read"))
    assert masked.status_code == 200 and masked.json()["nik"] is None and masked.json()["has_nik"]
    pii = auth("registry:read registry:pii:read", sub="officer-7")
    missing = await client.get(f"/v1/persons/{pid}", headers=pii)
    assert missing.status_code == 422
    assert ("header.X-Purpose", "pii.purpose_required") in _errors(missing)
    plain = await client.get(f"/v1/persons/{pid}", headers={**pii, "X-Purpose": "verifikasi bansos"})
    assert plain.status_code == 200
    assert plain.json()["nik"].isdigit() and len(plain.json()["nik"]) == 16
    log = await client.get(f"/v1/persons/{pid}/access-log", headers=pii)
    assert log.status_code == 200
    entries = log.json()["items"]
    assert [(e["actor"], e["purpose"], e["fields"]) for e in entries] == [
        ("officer-7", "verifikasi bansos", ["nik"])
    ]
    # Reading the log needs the PII scope.
    assert (
        await client.get(f"/v1/persons/{pid}/access-log", headers=auth("registry:read"))
    ).status_code == 403


async def test_access_log_is_append_only(client: httpx.AsyncClient, session) -> None:  # type: ignore[no-untyped-def]
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    fam = await create_family(client)
    pid = fam["members"][0]["id"]
    pii = {**auth("registry:read registry:pii:read"), "X-Purpose": "audit"}
    assert (await client.get(f"/v1/persons/{pid}", headers=pii)).status_code == 200
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(text("UPDATE access_log SET purpose = 'x'"))


async def test_search_by_nik_in_body_and_region_scope(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    head = fam["members"][0]
    pii = {**auth("registry:read registry:pii:read", region=None), "X-Purpose": "lookup"}
    plain = (await client.get(f"/v1/persons/{head['id']}", headers=pii)).json()["nik"]
    searcher = "registry:read registry:nik:search"
    found = await client.post(
        "/v1/persons:search", json={"nik": plain}, headers={**auth(searcher), "X-Purpose": "lookup"}
    )
    assert [p["id"] for p in found.json()["items"]] == [head["id"]]
    assert found.json()["items"][0]["nik"] is None  # the searcher has no registry:pii:read
    other = await client.post(
        "/v1/persons:search",
        json={"nik": plain},
        headers={**auth(searcher, region="32"), "X-Purpose": "lookup"},
    )
    assert other.status_code == 200 and other.json()["items"] == []
    log = await client.get(f"/v1/persons/{head['id']}/access-log", headers=pii)
    # The read, then both searches: the one outside the region too (the holder's log shows who looked).
    assert sorted(e["action"] for e in log.json()["items"]) == ["nik_search", "nik_search", "read"]


async def test_region_scope_is_404_everywhere(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    pid = fam["members"][0]["id"]
    outsider = auth("registry:read registry:write", region="32.76")
    assert (await client.get(f"/v1/families/{fam['id']}", headers=outsider)).status_code == 404
    assert (await client.get(f"/v1/persons/{pid}", headers=outsider)).status_code == 404
    assert (await client.get(f"/v1/families/{fam['id']}/members", headers=outsider)).status_code == 404
    r = await client.patch(
        f"/v1/families/{fam['id']}", json={"welfare_decile": 1}, headers={**outsider, "If-Match": '"1"'}
    )
    assert r.status_code == 404
    listed = await client.get("/v1/families", headers=outsider)
    assert fam["id"] not in [f["id"] for f in listed.json()["items"]]
    persons = await client.get("/v1/persons", headers=outsider)
    assert pid not in [p["id"] for p in persons.json()["items"]]
    # Creating in a village outside one's region is refused the same way.
    r = await client.post("/v1/families", json=family_body(), headers=outsider)
    assert r.status_code == 404
    # Inside: a district-level token sees it.
    assert (await client.get(f"/v1/families/{fam['id']}", headers=auth(region="15.71.01"))).status_code == 200
    # A region claim that is no region code is refused as a token (401), never read as another region.
    assert (await client.get(f"/v1/families/{fam['id']}", headers=auth(region="15.710"))).status_code == 401


async def test_etag_if_match(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    url = f"/v1/families/{fam['id']}"
    r = await client.patch(url, json={"welfare_decile": 2}, headers=auth())
    assert r.status_code == 428
    r = await client.patch(url, json={"welfare_decile": 2}, headers={**auth(), "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"' and r.json()["welfare_decile"] == 2
    stale = await client.patch(url, json={"welfare_decile": 3}, headers={**auth(), "If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await client.get(url, headers=auth())).json()["welfare_decile"] == 2


async def test_kk_change_keeps_history(client: httpx.AsyncClient, session) -> None:  # type: ignore[no-untyped-def]
    from registry.identity.domain import make_kk
    from sqlalchemy import text

    from tests.registry.conftest import serial

    fam = await create_family(client)
    new_kk = make_kk("15.71.01", date(2024, 6, 1), serial())
    r = await client.patch(
        f"/v1/families/{fam['id']}",
        json={"kk_number": new_kk, "kk_change_reason": "pecah_kk"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["kk_number"] is None and r.json()["has_kk_number"]
    rows = (
        await session.execute(
            text(
                "SELECT valid_to IS NULL, reason FROM family_kk_history WHERE family_id = :f ORDER BY valid_from"
            ),
            {"f": fam["id"]},
        )
    ).all()
    assert [tuple(r) for r in rows] == [(False, "registered"), (True, "pecah_kk")]
    # KK ciphertexts are never the plain number.
    raw = (
        await session.execute(text("SELECT kk_ciphertext FROM family WHERE id = :f"), {"f": fam["id"]})
    ).scalar()
    assert new_kk.encode() not in raw


async def test_pagination_and_change_feed_with_tombstones(client: httpx.AsyncClient) -> None:
    from datetime import UTC, datetime

    village = "15.71.02.1002"
    hdr = auth(region=village)
    ids = [(await create_family(client, village=village, headers=hdr))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/families", params=params, headers=hdr)).json()
        seen += [f["id"] for f in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and pages == 3
    since = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
    r = await client.delete(f"/v1/families/{ids[0]}", headers={**hdr, "If-Match": '"1"'})
    assert r.status_code == 204
    live = (await client.get("/v1/families", headers=hdr)).json()["items"]
    assert ids[0] not in [f["id"] for f in live]
    feed = (await client.get("/v1/families", params={"updated_since": since}, headers=hdr)).json()["items"]
    tomb = [f for f in feed if f["id"] == ids[0]]
    assert tomb and tomb[0]["deleted"] is True
    persons_feed = (await client.get("/v1/persons", params={"updated_since": since}, headers=hdr)).json()[
        "items"
    ]
    assert any(p["deleted"] for p in persons_feed)
    assert (await client.get(f"/v1/families/{ids[0]}", headers=hdr)).status_code == 404


async def test_person_move_records_membership_history(client: httpx.AsyncClient) -> None:
    a = await create_family(client)
    b = await create_family(client)
    wife = next(m for m in a["members"] if m["relation"] == "istri")
    r = await client.post(
        f"/v1/persons/{wife['id']}/move",
        json={"to_family_id": b["id"], "relation": "famili_lain", "moved_on": business_today().isoformat()},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["family_id"] == b["id"]
    hist = (await client.get(f"/v1/persons/{wife['id']}/memberships", headers=auth())).json()
    assert [(h["family_id"], h["ended_on"] is None) for h in hist] == [(a["id"], False), (b["id"], True)]
    head = a["members"][0]
    r = await client.post(
        f"/v1/persons/{head['id']}/move",
        json={"to_family_id": None, "moved_on": business_today().isoformat()},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "family.head_cannot_leave"


async def test_death_and_kampung_kb(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/kampung-kb",
        json={
            "code": f"KKB-{nik(date(2000, 1, 1), 'L')[-6:]}",
            "name": "KKB Mekar",
            "village_code": "15.71.01.1001",
        },
        headers=auth(),
    )
    assert r.status_code == 201, r.text
    kkb = r.json()
    fam = await create_family(client, kampung_kb_id=kkb["id"])
    assert fam["kampung_kb_id"] == kkb["id"]
    listed = (await client.get("/v1/families", params={"kampung_kb_id": kkb["id"]}, headers=auth())).json()
    assert [f["id"] for f in listed["items"]] == [fam["id"]]
    wife = fam["members"][1]
    r = await client.post(
        f"/v1/persons/{wife['id']}/death",
        json={"died_on": business_today().isoformat()},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert (
        r.status_code == 200
        and r.json()["died_on"] == business_today().isoformat()
        and r.json()["pus"] is False
    )
    assert (await client.get(f"/v1/kampung-kb/{kkb['id']}", headers=auth(region="32"))).status_code == 404


async def test_kampung_kb_rw_list_is_rws_with_the_old_name_kept_one_version(
    client: httpx.AsyncClient,
) -> None:
    body = {"code": f"KKB-{uuid.uuid4().hex[:8]}", "name": "KKB Melati", "village_code": "15.71.01.1001"}
    r = await client.post("/v1/kampung-kb", json={**body, "rws": ["001", "003"]}, headers=auth())
    assert r.status_code == 201, r.text
    assert r.json()["rws"] == ["001", "003"] and r.json()["rw_list"] == ["001", "003"]
    # The deprecated name is still read, on create and on update...
    old = {**body, "code": body["code"] + "b", "rw_list": ["002"]}
    r2 = await client.post("/v1/kampung-kb", json=old, headers=auth())
    assert r2.status_code == 201 and r2.json()["rws"] == ["002"], r2.text
    r3 = await client.patch(
        f"/v1/kampung-kb/{r2.json()['id']}", json={"rw_list": ["004"]}, headers={**auth(), "If-Match": '"1"'}
    )
    assert r3.status_code == 200 and r3.json()["rws"] == ["004"], r3.text
    # ...but not both at once, and the OpenAPI marks it deprecated.
    both = {**body, "code": body["code"] + "c", "rws": ["1"], "rw_list": ["2"]}
    assert (await client.post("/v1/kampung-kb", json=both, headers=auth())).status_code == 422
    spec = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert spec["KampungKbRead"]["properties"]["rw_list"]["deprecated"] is True
    assert spec["KampungKbCreate"]["properties"]["rw_list"]["deprecated"] is True
