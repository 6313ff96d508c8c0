"""Registering a family: one look-up and one write, with broken rules reported in the order they are listed."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
from registry.families import repository as repo
from registry.families.models import FamilyKkHistory, FamilyMembership, Person
from registry.models import outbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.registry.conftest import (
    OTHER_VILLAGE,
    auth,
    create_family,
    family_body,
    nik,
    person,
    sql_statements,
)


def _errors(r: httpx.Response) -> list[tuple[str, str]]:
    return [(e["field"], e["rule"]) for e in r.json().get("errors", [])]


async def test_registration_is_one_lookup_and_one_write(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    members = [
        person("kepala_keluarga", date(1990, 1, 1), "L"),
        person("istri", date(1995, 5, 5), "P"),
        person("anak", business_today() - timedelta(days=200), "L", with_nik=False),
    ]
    with sql_statements(session) as sent:
        r = await client.post("/v1/families", json=family_body(members=members), headers=auth())
    assert r.status_code == 201, r.text
    assert len(sent) == 2, sent
    family = r.json()
    family_id = uuid.UUID(family["id"])
    assert family["version"] == 1 and family["created_at"] and family["updated_at"]
    assert all(m["version"] == 1 and m["updated_at"] for m in family["members"])
    # What the response says the database made is what a read finds (the test session is used below).
    read = (await client.get(f"/v1/families/{family_id}", headers=auth())).json()
    assert {k: read[k] for k in ("version", "created_at", "updated_at", "krs")} == {
        k: family[k] for k in ("version", "created_at", "updated_at", "krs")
    }
    # Every row the registration brings is there, tied to the family.
    persons = list(await session.scalars(select(Person).where(Person.family_id == family_id)))
    assert {str(p.id) for p in persons} == {m["id"] for m in family["members"]}
    assert {p.name_key for p in persons} == {"person kepala keluarga", "person istri", "person anak"}
    memberships = list(
        await session.scalars(select(FamilyMembership).where(FamilyMembership.family_id == family_id))
    )
    assert {m.person_id for m in memberships} == {p.id for p in persons}
    history = list(
        await session.scalars(select(FamilyKkHistory).where(FamilyKkHistory.family_id == family_id))
    )
    assert [h.reason for h in history] == ["registered"]
    # Outbox rows in the order they were built: the family, each member, then its stunting-risk status.
    types = list(
        await session.scalars(
            select(outbox.c.event_type).where(outbox.c.partition_key == str(family_id)).order_by(outbox.c.seq)
        )
    )
    assert types == [
        "registry.family.registered.v1",
        "registry.person.registered.v1",
        "registry.person.registered.v1",
        "registry.person.registered.v1",
        "registry.family.stunting_risk_changed.v1",
    ]


async def test_family_without_kk_number(client: httpx.AsyncClient, session: AsyncSession) -> None:
    body = family_body(members=[person("kepala_keluarga", date(1990, 1, 1), "L")])
    del body["kk_number"]
    r = await client.post("/v1/families", json=body, headers=auth())
    assert r.status_code == 201, r.text
    assert r.json()["kk_number"] is None
    history = await session.scalars(
        select(FamilyKkHistory).where(FamilyKkHistory.family_id == uuid.UUID(r.json()["id"]))
    )
    assert list(history) == []


async def test_unknown_village_is_reported_before_the_kk_number(client: httpx.AsyncClient) -> None:
    body = family_body(village="15.71.01.9999", kk_number="123")
    r = await client.post("/v1/families", json=body, headers=auth())
    assert r.status_code == 422
    assert ("body.village_code", "region.village_unknown") in _errors(r)
    assert not [f for f, _ in _errors(r) if f == "body.kk_number"]


async def test_kk_number_is_reported_before_the_members(client: httpx.AsyncClient) -> None:
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    head["nik"] = "9900003213990000"
    r = await client.post("/v1/families", json=family_body(members=[head], kk_number="123"), headers=auth())
    assert r.status_code == 422
    fields = {f for f, _ in _errors(r)}
    assert "body.kk_number" in fields and "body.members.0.nik" not in fields


async def test_kk_holder_is_reported_before_the_members(client: httpx.AsyncClient) -> None:
    kk = family_body()["kk_number"]
    assert (
        await client.post("/v1/families", json=family_body(kk_number=kk), headers=auth())
    ).status_code == 201
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    head["nik"] = "9900003213990000"
    r = await client.post("/v1/families", json=family_body(members=[head], kk_number=kk), headers=auth())
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["rule"] == "kk.duplicate" and "existing_kk_masked" not in r.json()
    assert kk[-4:] not in r.text


async def test_member_rules_are_reported_before_nik_holders(client: httpx.AsyncClient) -> None:
    taken = person("kepala_keluarga", date(1990, 1, 1), "L")
    first = await client.post("/v1/families", json=family_body(members=[taken]), headers=auth())
    assert first.status_code == 201
    head = person("kepala_keluarga", date(1991, 1, 1), "L")
    again = {**person("famili_lain", date(1990, 1, 1), "L"), "nik": taken["nik"]}
    unborn = person("anak", business_today() + timedelta(days=3), "L", with_nik=False)
    r = await client.post("/v1/families", json=family_body(members=[head, again, unborn]), headers=auth())
    assert r.status_code == 422, r.text
    assert _errors(r)[0][0].startswith("body.members.2")
    r = await client.post("/v1/families", json=family_body(members=[head, again]), headers=auth())
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "body.members.1.nik"
    assert r.json()["existing_person_id"] == first.json()["members"][0]["id"]


async def test_same_nik_twice_in_one_family_is_409(client: httpx.AsyncClient) -> None:
    head = person("kepala_keluarga", date(1990, 1, 1), "L")
    twin = {**person("anak", date(1990, 1, 1), "L"), "nik": head["nik"]}
    r = await client.post("/v1/families", json=family_body(members=[head, twin]), headers=auth())
    assert r.status_code == 409
    assert _errors(r) == [("body.members.1.nik", "nik.duplicate")]


async def test_kampung_kb_outside_the_region_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/kampung-kb",
        json={
            "code": f"KKB-{nik(date(2000, 1, 1), 'L')[-6:]}",
            "name": "KKB Jauh",
            "village_code": OTHER_VILLAGE,
        },
        headers=auth(region=None),
    )
    assert r.status_code == 201, r.text
    far = r.json()["id"]
    r = await client.post("/v1/families", json=family_body(kampung_kb_id=far), headers=auth())
    assert r.status_code == 404 and r.json()["detail"] == "Kampung KB not found"
    r = await client.post("/v1/families", json=family_body(kampung_kb_id=str(uuid.uuid4())), headers=auth())
    assert r.status_code == 404
    fam = await create_family(client, kampung_kb_id=far, headers=auth(region=None))
    assert fam["kampung_kb_id"] == far


def test_the_write_statement_is_compiled_once_per_shape() -> None:
    # SQLAlchemy does not cache statements with multi-row VALUES; compiling one per request cost more CPU than
    # the rest of a registration. The rendered text statement must stay cacheable.
    shapes = (
        (("id", "village_code"), 1),
        None,
        (("id", "name"), 2),
        (("id", "person_id"), 2),
        (("event_id",), 3),
    )
    first = repo._registration_statement(*shapes)
    assert first is repo._registration_statement(*shapes)
    assert first._generate_cache_key() is not None
