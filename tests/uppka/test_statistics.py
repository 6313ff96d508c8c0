"""uppka's recount (`GET /v1/statistics`) against hand-computed figures: groups by founding date, members' KB."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.uppka.conftest import make_group, make_member

pytestmark = [pytest.mark.integration]

T = business_today()  # uppka dates joins by the programme's clock (Asia/Jakarta)
# A village of Kota Jambi no other uppka test writes in (some of them commit), so the counts are this test's alone.
VILLAGE = "15.71.11.1001"


async def _stats(client: httpx.AsyncClient, region: str, last: date) -> httpx.Response:
    return await client.get(
        "/v1/statistics",
        params={"region": region, "from": (last - timedelta(days=30)).isoformat(), "to": last.isoformat()},
    )


async def test_groups_from_their_founding_and_members_kb_over_those_it_is_meant_for(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    old = await make_group(client, founded_on="2023-02-01", village_code=VILLAGE)
    await make_group(client, founded_on="2024-06-01", village_code=VILLAGE)
    await make_member(client, session, old["id"], kb="implant", village=VILLAGE)  # PUS, MKJP user
    await make_member(client, session, old["id"], kb=None, village=VILLAGE)  # PUS, no method
    await make_member(
        client, session, old["id"], kb=None, village=VILLAGE, birth=date(1950, 1, 1), pus=False
    )  # lansia
    await make_member(
        client, session, old["id"], kb="kondom", village=VILLAGE, birth=date(1970, 1, 1), pus=False
    )  # a KB user out of PUS (wife over 49): a member using KB, but not counted in members' KB participation

    r = await _stats(client, VILLAGE, T)
    assert r.status_code == 200, r.text
    c = r.json()["counts"]
    assert c["groups_existing"] == 2
    assert c["uppka_members"] == 4 and c["uppka_members_kb_users"] == 2 and c["uppka_members_mkjp"] == 1
    # Members' KB participation is over PUS members (1 of the 2), as reporting's: neither the elderly member
    # nor the KB user out of PUS is counted in it.
    assert c["uppka_members_pus"] == 2 and c["uppka_members_pus_kb_users"] == 1
    assert r.json()["areas"] == ["15", "15.71"]
    # Groups exist from their founding date, members from the day they joined (today).
    before = (await _stats(client, VILLAGE, date(2024, 1, 31))).json()["counts"]
    assert before["groups_existing"] == 1 and before["uppka_members"] == 0
    assert (await _stats(client, "15.71.10", T)).json()["counts"]["groups_existing"] == 0
    assert (await _stats(client, "32", T)).status_code == 404  # outside the token's region (15.71)
