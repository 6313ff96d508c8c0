"""Registry events reaching memberships: KB status kept in sync, deaths and moves end memberships."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.db import utcnow
from shared.events.registry import FamilyMoved, PersonDied, PersonMoved, PersonsMerged, PersonUpdated
from tests.uppka.conftest import (
    OTHER_VILLAGE,
    VILLAGE,
    apply,
    env,
    kb_change,
    make_group,
    outbox_types,
    person_facts,
    seed_person,
)

pytestmark = pytest.mark.integration


async def _join(client: httpx.AsyncClient, group_id: str, person_id: object) -> dict[str, object]:
    r = await client.post(f"/v1/groups/{group_id}/members", json={"person_id": str(person_id)})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_kb_change_updates_member_and_publishes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    p = await seed_person(session, kb="pil")
    m = await _join(client, g["id"], p.person_id)
    assert m["mkjp"] is False
    await apply(session, env(kb_change(p, "iud", previous="pil", since=business_today()), p.family_id))
    got = (await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()
    assert (got["kb_method"], got["kb_user"], got["mkjp"], got["kb_changed_on"]) == (
        "iud",
        True,
        True,
        business_today().isoformat(),
    )
    assert (await outbox_types(session, g["id"]))[-1] == "uppka.member.kb_status_changed.v1"
    # An older KB event arriving late changes nothing and publishes nothing.
    before = await outbox_types(session, g["id"])
    await apply(session, env(kb_change(p, "suntik"), p.family_id, time=utcnow() - timedelta(days=3)))
    assert (await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()["kb_method"] == "iud"
    assert await outbox_types(session, g["id"]) == before


async def test_death_ends_membership(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    p = await seed_person(session)
    m = await _join(client, g["id"], p.person_id)
    died = PersonDied(
        person_id=p.person_id, family_id=p.family_id, village_code=VILLAGE, died_on=business_today()
    )
    await apply(session, env(died, p.family_id))
    got = (await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()
    assert got["left_on"] == business_today().isoformat() and got["left_reason"] == "died"
    assert (await outbox_types(session, g["id"]))[-1] == "uppka.member.left.v1"


async def test_moves_end_membership_only_when_leaving_the_area(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    stays = await seed_person(session)
    leaves = await seed_person(session)
    out = await seed_person(session)
    family = await seed_person(session)
    ms = [await _join(client, g["id"], x.person_id) for x in (stays, leaves, out, family)]
    t = utcnow()
    await apply(
        session,
        env(
            PersonMoved(
                person_id=stays.person_id,
                from_family_id=stays.family_id,
                family_id=stays.family_id,
                from_village_code=VILLAGE,
                village_code=VILLAGE,
                rw="009",
                moved_on=business_today(),
            ),
            stays.family_id,
            time=t,
        ),
        env(
            PersonMoved(
                person_id=leaves.person_id,
                from_family_id=leaves.family_id,
                family_id=leaves.family_id,
                from_village_code=VILLAGE,
                village_code=OTHER_VILLAGE,
                moved_on=business_today(),
            ),
            leaves.family_id,
            time=t,
        ),
        env(
            PersonMoved(
                person_id=out.person_id,
                from_family_id=out.family_id,
                family_id=None,
                from_village_code=VILLAGE,
                moved_on=business_today(),
            ),
            out.family_id,
            time=t,
        ),
        env(
            FamilyMoved(
                family_id=family.family_id,
                from_village_code=VILLAGE,
                village_code=OTHER_VILLAGE,
                moved_on=business_today(),
            ),
            family.family_id,
            time=t,
        ),
    )
    got = [(await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json() for m in ms]
    assert [x["left_reason"] for x in got] == [None, "moved", "moved", "moved"]
    assert (await outbox_types(session, g["id"])).count("uppka.member.left.v1") == 3


async def test_update_with_new_village_ends_membership(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    p = person_facts()
    await apply(session, env(p, p.family_id, time=utcnow() - timedelta(seconds=5)))
    m = await _join(client, g["id"], p.person_id)
    moved = PersonUpdated(**{**p.model_dump(), "village_code": OTHER_VILLAGE})
    await apply(session, env(moved, p.family_id))
    got = (await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()
    assert got["left_reason"] == "moved"


async def test_merge_moves_membership_to_survivor(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    dup = await seed_person(session)
    survivor = await seed_person(session)
    m = await _join(client, g["id"], dup.person_id)
    merged = PersonsMerged(
        person_id=survivor.person_id, merged_person_id=dup.person_id, family_id=survivor.family_id
    )
    await apply(session, env(merged, survivor.family_id))
    got = (await client.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()
    assert got["person_id"] == str(survivor.person_id) and got["left_on"] is None
