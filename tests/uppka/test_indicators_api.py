"""Indicators through the API: per group and month, trend, and groups existing vs reporting per area."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from uppka.reports.domain import period_of

from shared.clock import business_today
from shared.testing.plugin import bearer
from tests.uppka.conftest import OTHER_VILLAGE, make_group, make_member

pytestmark = pytest.mark.integration

FIG = {
    "omzet": 1_000_000,
    "costs": 600_000,
    "capital_balance": 0,
    "members_present": 2,
    "active_members": 4,
    "new_kb_acceptors": 0,
    "mkjp_switchers": 0,
}


async def test_group_indicators_and_trend(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    await make_member(client, session, g["id"], kb="implant", role="ketua")
    await make_member(client, session, g["id"], kb="pil")
    await make_member(client, session, g["id"], kb=None, birth=date(1950, 1, 1), pus=False)
    period = period_of(business_today())
    await client.post(f"/v1/groups/{g['id']}/reports", json={"period": period, **FIG})
    out = (await client.get(f"/v1/groups/{g['id']}/indicators", params={"period": period})).json()
    assert out["members"] == 3 and out["kb_users"] == 2 and out["mkjp_share"] == 0.5
    assert out["members_by_category"]["lansia"] == 1 and out["kb_by_method"] == {"implant": 1, "pil": 1}
    assert out["attendance_rate"] == 0.5 and out["reporting_status"] == "reported"
    await client.post(f"/v1/groups/{g['id']}/reports", json={"period": "2024-01", **FIG, "omzet": 700_000})
    t = (
        await client.get(f"/v1/groups/{g['id']}/indicators/trend", params={"from": "2024-01", "to": period})
    ).json()
    assert t["points"][0]["omzet"] == 700_000 and t["direction"] == "up"
    bad = await client.get(f"/v1/groups/{g['id']}/indicators", params={"period": "2024-1"})
    assert bad.status_code == 422


async def test_reporting_coverage_per_area(client: httpx.AsyncClient) -> None:
    period = "2024-03"
    a = await make_group(client, founded_on="2023-01-01")
    await make_group(client, founded_on="2023-01-01", village_code=OTHER_VILLAGE)
    await make_group(client, founded_on="2024-06-01")  # did not exist yet in March 2024
    await client.post(f"/v1/groups/{a['id']}/reports", json={"period": period, **FIG})
    out = (
        await client.get("/v1/indicators/reporting", params={"region": "15.71.01", "period": period})
    ).json()
    # The rolled-back session may see groups of other committed tests: check our own through the breakdown.
    assert out["existing"] >= 2 and out["reporting"] >= 1 and out["late"] >= 1
    assert out["by_area"][OTHER_VILLAGE]["existing"] >= 1
    assert set(out["by_area"]) <= {v for v in out["by_area"] if v.startswith("15.71.01.")}
    r = await client.get("/v1/indicators/reporting", params={"region": "15.05", "period": period})
    assert r.status_code == 404
    other = bearer("uppka:read", region="15.05")
    elsewhere = (
        await client.get("/v1/indicators/reporting", params={"period": period}, headers=other)
    ).json()
    assert all(not k.startswith("15.71") for k in elsewhere["by_area"])
