"""Potential duplicates (review list) and merging a duplicate into the surviving person."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from registry.models import outbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.registry.conftest import auth, create_family, person

pytestmark = pytest.mark.integration


async def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def _all_groups(client: httpx.AsyncClient, kind: str, region: str = "15.71") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"kind": kind, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = await _ok(
            await client.get("/v1/persons/duplicates", params=params, headers=auth(region=region))
        )
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


async def test_duplicates_listed_and_merged_with_history_and_event(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    baby_birth = business_today() - timedelta(days=200)
    unique_name = f"Rahmat {baby_birth.isoformat()} Dup"
    fam_a = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1980, 2, 2), "L"),
            person("anak", baby_birth, "L", name=unique_name),  # registered with NIK
        ],
    )
    fam_b = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1981, 3, 3), "L"),
            person("anak", baby_birth, "L", with_nik=False, name=unique_name.upper() + "  "),  # no NIK yet
        ],
    )
    kept = next(m for m in fam_a["members"] if m["relation"] == "anak")
    dup = next(m for m in fam_b["members"] if m["relation"] == "anak")
    # The duplicate has a measurement and a KB-irrelevant history that must follow it.
    m = await _ok(
        await client.post(
            "/v1/measurements",
            json={
                "person_id": dup["id"],
                "measured_on": business_today().isoformat(),
                "weight_kg": 7.0,
                "lenhei_cm": 65.0,
                "position": "l",
            },
            headers=auth(),
        ),
        201,
    )

    groups = await _all_groups(client, "without_nik")
    mine = [g for g in groups if g["persons"][0]["id"] == dup["id"]]
    assert mine and {p["id"] for p in mine[0]["persons"]} == {dup["id"], kept["id"]}
    # Both villages are the same: the near-duplicate list has the pair too (normalised name matches).
    near = [g for g in await _all_groups(client, "near") if {p["id"] for p in g["persons"]} >= {dup["id"]}]
    assert near and near[0]["reason"] == "same_name_birth_village"
    # Outside the region nothing is listed.
    assert not [g for g in await _all_groups(client, "near", region="32.76") if g["persons"]]

    # Merge needs If-Match of the survivor; a stale one is refused.
    r = await client.post(
        f"/v1/persons/{kept['id']}/merge",
        json={"merged_person_id": dup["id"]},
        headers={**auth(), "If-Match": '"9"'},
    )
    assert r.status_code == 412
    r = await client.post(
        f"/v1/persons/{kept['id']}/merge",
        json={"merged_person_id": kept["id"]},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "merge.same_person"
    merged = await _ok(
        await client.post(
            f"/v1/persons/{kept['id']}/merge",
            json={"merged_person_id": dup["id"]},
            headers={**auth(), "If-Match": '"1"'},
        )
    )
    assert merged["id"] == kept["id"] and merged["version"] == 2 and merged["has_nik"]

    # The duplicate is a tombstone pointing at the survivor: gone from reads, present in the change feed.
    assert (await client.get(f"/v1/persons/{dup['id']}", headers=auth())).status_code == 404
    feed = await _ok(
        await client.get(
            "/v1/persons",
            params={"family_id": fam_b["id"], "updated_since": "2000-01-01T00:00:00Z"},
            headers=auth(),
        )
    )
    tomb = next(p for p in feed["items"] if p["id"] == dup["id"])
    assert tomb["deleted"] and tomb["merged_into_person_id"] == kept["id"]
    # History re-pointed: the measurement and the closed membership now belong to the survivor.
    got = await _ok(await client.get(f"/v1/measurements/{m['id']}", headers=auth()))
    assert got["person_id"] == kept["id"]
    memberships = await _ok(await client.get(f"/v1/persons/{kept['id']}/memberships", headers=auth()))
    ended = [x for x in memberships if x["family_id"] == fam_b["id"]]  # type: ignore[union-attr]
    assert ended and ended[0]["end_reason"] == "merged"
    # And the event, keyed by the survivor's family, naming both.
    async with session.begin():
        row = (
            await session.execute(
                select(outbox.c.envelope, outbox.c.partition_key).where(
                    outbox.c.event_type == "registry.person.merged.v1"
                )
            )
        ).all()
    events = [e for e, _ in row if e["data"]["merged_person_id"] == dup["id"]]
    assert len(events) == 1
    data = events[0]["data"]
    assert data == {
        "person_id": kept["id"],
        "merged_person_id": dup["id"],
        "family_id": fam_a["id"],
        # Deprecated (issue 12, item 7): no consumer reads it, so it travels null.
        "merged_family_id": None,
    }
    assert events[0]["partitionkey"] == fam_a["id"]


async def test_merge_refuses_two_niks_and_other_regions(client: httpx.AsyncClient) -> None:
    a = await create_family(client)
    b = await create_family(client)
    outside = await create_family(client, village="32.76.01.1006")
    wife_a = next(m for m in a["members"] if m["relation"] == "istri")
    wife_b = next(m for m in b["members"] if m["relation"] == "istri")
    r = await client.post(
        f"/v1/persons/{wife_a['id']}/merge",
        json={"merged_person_id": wife_b["id"]},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 409 and r.json()["errors"][0]["rule"] == "merge.both_have_nik"
    r = await client.post(
        f"/v1/persons/{wife_a['id']}/merge",
        json={"merged_person_id": outside["members"][0]["id"]},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 404
