"""Issue 12 item 2 on UPPKA: another region's group, member, business, activity, report or person answers like
one that does not exist (same status, same body, nothing personal)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.testing.plugin import bearer
from tests.shared.oracles import comparable, compare_everywhere, example_body
from tests.uppka.conftest import FAR_VILLAGE, WRITE, make_group, make_member, seed_person

pytestmark = pytest.mark.integration


async def test_joining_another_regions_person_answers_like_an_unknown_id(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    group = await make_group(client)
    elsewhere = await seed_person(session, village=FAR_VILLAGE)  # 15.05: outside the client's 15.71
    answers = [
        await client.post(
            f"/v1/groups/{group['id']}/members", json={"person_id": str(pid), "role": "anggota"}
        )
        for pid in (elsewhere.person_id, uuid.uuid4())
    ]
    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].status_code == 422 and "area" not in answers[0].text


async def test_every_id_of_another_region_answers_like_no_record(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    group = await make_group(client)
    member = await make_member(client, session, group["id"])
    real = {"group_id": group["id"], "member_id": member["id"], "person_id": member["person_id"]}
    # Whatever else hangs off a group, made from the API's own examples (skipped if an example does not fit).
    spec = (await client.get("/openapi.json")).json()
    for kind, path in (
        ("business_id", "/v1/groups/{group_id}/businesses"),
        ("activity_id", "/v1/groups/{group_id}/activities"),
    ):
        body = example_body(spec, spec["paths"][path]["post"])
        r = await client.post(path.replace("{group_id}", group["id"]), json=body)
        if r.status_code == 201:
            real[kind] = r.json()["id"]
    nobody = {name: str(uuid.uuid4()) for name in real}
    outsider = {**bearer(WRITE, region="32"), "If-Match": '"1"'}
    compared = await compare_everywhere(
        client, real=real, nobody=nobody, headers=outsider, personal=["1990-05-01", "Ibu PLKB"]
    )
    print(sorted(real), {status: len(labels) for status, labels in sorted(compared.items())})
    assert sum(len(v) for v in compared.values()) >= 15, compared
