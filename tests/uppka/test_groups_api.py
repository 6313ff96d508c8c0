"""Groups and members through the in-process API on a rolled-back session."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.events.registry import PersonDied
from shared.testing.plugin import bearer
from tests.uppka.conftest import (
    FAR_VILLAGE,
    OTHER_VILLAGE,
    VILLAGE,
    apply,
    env,
    group_body,
    make_group,
    make_member,
    outbox_types,
    rule_of,
    seed_person,
)

pytestmark = pytest.mark.integration


async def _events(session: AsyncSession, key: str) -> list[str]:
    return await outbox_types(session, key)


async def test_create_read_group(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    assert g["status"] == "active" and g["village_code"] == VILLAGE and g["funding_total"] == 5_750_000
    r = await client.get(f"/v1/groups/{g['id']}")
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    assert r.json()["status_history"][0]["status"] == "active"
    assert await _events(session, g["id"]) == ["uppka.group.registered.v1"]


@pytest.mark.parametrize(
    ("override", "status", "field", "rule"),
    [
        ({"village_code": "15.71.01"}, 422, "body.village_code", "region.unknown_village"),
        ({"village_code": "99.99.99.9999"}, 422, "body.village_code", "region.unknown_village"),
        ({"village_code": "abc"}, 422, "body.village_code", "region.format"),
        ({"village_code": FAR_VILLAGE}, 422, "body.village_code", "region.unknown_village"),
        ({"founded_on": "2099-01-01"}, 422, "body.founded_on", "group.date_in_future"),
        ({"funding": [{"source": "apbn", "amount": -1}]}, 422, "body.funding.0.amount", "greater_than_equal"),
        ({"funding": [{"source": "apbn", "amount": 10.5}]}, 422, "body.funding.0.amount", "int_from_float"),
        ({"funding": [{"source": "hibah", "amount": 1}]}, 422, "body.funding.0.source", "literal_error"),
        ({"colour": "red"}, 422, "body.colour", "extra_forbidden"),
    ],
)
async def test_group_bad_input(
    client: httpx.AsyncClient, override: dict[str, object], status: int, field: str, rule: str
) -> None:
    r = await client.post("/v1/groups", json=group_body(**override))
    assert r.status_code == status, r.text
    assert r.json()["errors"][0]["field"] == field and rule_of(r) == rule


async def test_duplicate_code_is_409(client: httpx.AsyncClient) -> None:
    g = await make_group(client)
    r = await client.post("/v1/groups", json=group_body(code=g["code"]))
    assert r.status_code == 409 and rule_of(r) == "group.code_taken"


async def test_update_with_etag_and_status_history(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    url = f"/v1/groups/{g['id']}"
    assert (await client.patch(url, json={"name": "X"})).status_code == 428
    assert (await client.patch(url, json={"name": "X"}, headers={"If-Match": '"7"'})).status_code == 412
    r = await client.patch(
        url, json={"name": "UPPKA Baru", "status": "inactive"}, headers={"If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["name"] == "UPPKA Baru" and r.json()["status"] == "inactive" and r.headers["ETag"] == '"2"'
    )
    assert [h["status"] for h in r.json()["status_history"]] == ["active", "inactive"]
    assert await _events(session, g["id"]) == [
        "uppka.group.registered.v1",
        "uppka.group.status_changed.v1",
        "uppka.group.updated.v1",
    ]


async def test_dissolving_ends_memberships_and_is_final(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    m = await make_member(client, session, g["id"])
    r = await client.patch(f"/v1/groups/{g['id']}", json={"status": "dissolved"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["dissolved_on"] == business_today().isoformat()
    member = (await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()
    assert member["left_reason"] == "group_dissolved"
    r = await client.patch(f"/v1/groups/{g['id']}", json={"status": "active"}, headers={"If-Match": '"2"'})
    assert r.status_code == 409 and rule_of(r) == "group.status_transition"
    assert "uppka.member.left.v1" in await _events(session, g["id"])


async def test_region_scope_is_404(client: httpx.AsyncClient, db_url: str) -> None:
    g = await make_group(client)
    other = bearer("uppka:read uppka:write", region="15.05")
    assert (await client.get(f"/v1/groups/{g['id']}", headers=other)).status_code == 404
    assert (await client.get(f"/v1/groups/{g['id']}/members", headers=other)).status_code == 404
    listed = (await client.get("/v1/groups", headers=other)).json()["items"]
    assert g["id"] not in [x["id"] for x in listed]
    r = await client.patch(f"/v1/groups/{g['id']}", json={"name": "x"}, headers={**other, "If-Match": '"1"'})
    assert r.status_code == 404


async def test_scopes(client: httpx.AsyncClient) -> None:
    ro = bearer("uppka:read", region="15.71")
    assert (await client.post("/v1/groups", json=group_body(), headers=ro)).status_code == 403
    assert (await client.get("/v1/groups", headers={"Authorization": ""})).status_code == 401


async def test_list_filters_and_keyset_pagination(client: httpx.AsyncClient) -> None:
    kkb = str(uuid.uuid4())
    made = [await make_group(client, kampung_kb_id=kkb) for _ in range(5)]
    await make_group(client, village_code=OTHER_VILLAGE)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"kampung_kb_id": kkb, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/groups", params=params)).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(g["id"] for g in made) and len(seen) == 5
    by_region = (await client.get("/v1/groups", params={"region": OTHER_VILLAGE, "limit": 200})).json()[
        "items"
    ]
    assert by_region and all(x["village_code"] == OTHER_VILLAGE for x in by_region)
    assert (await client.get("/v1/groups", params={"region": "nope"})).status_code == 422
    inactive = (await client.get("/v1/groups", params={"status": "inactive", "kampung_kb_id": kkb})).json()
    assert inactive["items"] == []


async def test_member_joins_with_derived_category_and_kb(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    m = await make_member(client, session, g["id"], role="ketua", kb="implant")
    assert (m["role"], m["category"], m["kb_method"], m["kb_user"], m["mkjp"]) == (
        "ketua",
        "pus",
        "implant",
        True,
        True,
    )
    teen = await make_member(
        client,
        session,
        g["id"],
        kb=None,
        birth=business_today() - timedelta(days=365 * 17),
        marital="belum_kawin",
        pus=False,
    )
    assert teen["category"] == "remaja" and teen["kb_user"] is False
    group = (await client.get(f"/v1/groups/{g['id']}")).json()
    assert group["officers"] == [{"role": "ketua", "member_id": m["id"], "person_id": m["person_id"]}]
    assert "uppka.member.joined.v1" in await _events(session, g["id"])


async def test_member_bad_input(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    url = f"/v1/groups/{g['id']}/members"
    r = await client.post(url, json={"person_id": str(uuid.uuid4())})
    assert r.status_code == 422 and rule_of(r) == "member.person_unknown"

    far = await seed_person(session, village=OTHER_VILLAGE)
    r = await client.post(url, json={"person_id": str(far.person_id)})
    assert r.status_code == 422 and rule_of(r) == "member.person_outside_group_area"

    outside_region = await seed_person(session, village=FAR_VILLAGE)
    r = await client.post(url, json={"person_id": str(outside_region.person_id)})
    assert r.status_code == 422 and rule_of(r) == "member.person_unknown"

    dead = await seed_person(session)
    await apply(
        session,
        env(
            PersonDied(
                person_id=dead.person_id,
                family_id=dead.family_id,
                village_code=VILLAGE,
                died_on=business_today(),
            ),
            dead.family_id,
        ),
    )
    r = await client.post(url, json={"person_id": str(dead.person_id)})
    assert r.status_code == 422 and rule_of(r) == "member.person_dead"

    never = await seed_person(session, kb=None)
    r = await client.post(url, json={"person_id": str(never.person_id), "role": "ketua"})
    assert r.status_code == 422 and rule_of(r) == "member.leader_not_kb_user"
    assert r.json()["errors"][0]["field"] == "body.role"

    ok = await seed_person(session)
    assert (await client.post(url, json={"person_id": str(ok.person_id)})).status_code == 201
    r = await client.post(url, json={"person_id": str(ok.person_id)})
    assert r.status_code == 409 and rule_of(r) == "member.duplicate"

    r = await client.post(url, json={"person_id": str(ok.person_id), "joined_on": "2099-01-01"})
    assert r.status_code == 422 and rule_of(r) == "member.joined_in_future"

    leader = await seed_person(session)
    assert (
        await client.post(url, json={"person_id": str(leader.person_id), "role": "ketua"})
    ).status_code == 201
    other = await seed_person(session)
    r = await client.post(url, json={"person_id": str(other.person_id), "role": "ketua"})
    assert r.status_code == 409 and rule_of(r) == "member.role_taken"
    members = (await client.get(url, params={"active": "true"})).json()["items"]
    assert len(members) == 2  # nothing partial was written by the refused requests


async def test_former_kb_user_may_lead_and_role_change_needs_kb(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.uppka.conftest import kb_change

    g = await make_group(client)
    former = await seed_person(session, kb="pil")
    await apply(session, env(kb_change(former, None, previous="pil"), former.family_id))
    r = await client.post(
        f"/v1/groups/{g['id']}/members", json={"person_id": str(former.person_id), "role": "ketua"}
    )
    assert r.status_code == 201 and r.json()["kb_user"] is False
    plain = await make_member(client, session, g["id"], kb=None)
    url = f"/v1/groups/{g['id']}/members/{plain['id']}"
    r = await client.patch(url, json={"role": "bendahara"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["role"] == "bendahara" and r.headers["ETag"] == '"2"'
    r = await client.patch(url, json={"role": "ketua"}, headers={"If-Match": '"2"'})
    assert r.status_code == 422 and rule_of(r) == "member.leader_not_kb_user"


async def test_member_leaves(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    m = await make_member(client, session, g["id"])
    url = f"/v1/groups/{g['id']}/members/{m['id']}/leave"
    r = await client.post(url, json={"left_on": "2099-01-01"}, headers={"If-Match": '"1"'})
    assert r.status_code == 422 and rule_of(r) == "member.left_in_future"
    r = await client.post(url, json={}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["left_reason"] == "resigned"
    assert (await client.post(url, json={}, headers={"If-Match": '"2"'})).status_code == 409
    # A former member may join again.
    r = await client.post(f"/v1/groups/{g['id']}/members", json={"person_id": m["person_id"]})
    assert r.status_code == 201


async def test_idempotency_key_replays_create(client: httpx.AsyncClient) -> None:
    body = group_body()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/v1/groups", json=body, headers=key)
    again = await client.post("/v1/groups", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers.get("idempotent-replayed") == "true"
