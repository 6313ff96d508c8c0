"""Issue 13's 500 classes on uppka: every operation answers a 4xx problem naming the field, nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.shared import inputs
from tests.shared import test_web_controls as controls
from tests.uppka.conftest import WRITE, group_body, make_group
from tests.uppka.test_business_report_activity_api import report

pytestmark = pytest.mark.integration

BAD_PERIODS = ("0000-01", "0000-12", "9999-12", "1899-12", "2101-01")


async def test_nul_in_any_body_string_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    assert await inputs.nul_everywhere(client, {}) >= 8


async def test_a_group_named_with_nul_or_an_override_is_not_written(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = (await session.execute(text("select count(*) from uppka_group"))).scalar_one()
    for bad in ("UPPKA\u0000Maju", "UPPKA \u202eujaM"):
        r = await client.post("/v1/groups", json=group_body(name=bad))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["body.name"]
    assert (await session.execute(text("select count(*) from uppka_group"))).scalar_one() == before


async def test_nul_in_any_query_parameter_is_422_naming_it(client: Any) -> None:
    assert await inputs.nul_in_every_query(client, {}) >= 5


async def test_forged_cursors_are_422_on_every_list(client: httpx.AsyncClient) -> None:
    assert (
        await inputs.query_refused(client, {}, "cursor", inputs.FORGED_CURSORS, found_first={404, 422}) >= 5
    )


async def test_forged_cursors_on_a_real_groups_lists(client: httpx.AsyncClient) -> None:
    g = await make_group(client)
    for path in (f"/v1/groups/{g['id']}/members", f"/v1/groups/{g['id']}/reports"):
        for cursor in inputs.FORGED_CURSORS:
            r = await client.get(path, params={"cursor": cursor})
            assert r.status_code == 422, (path, cursor, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["query.cursor"]


@pytest.mark.parametrize("name", ["period", "from", "to"])
async def test_periods_outside_1900_2100_are_422_on_every_query(client: httpx.AsyncClient, name: str) -> None:
    fill = {"from": "2026-01", "to": "2026-03", "period": "2026-01"}
    fill.pop(name)
    assert await inputs.query_refused(client, {}, name, BAD_PERIODS, fill=fill) >= 1


@pytest.mark.parametrize("period", BAD_PERIODS)
async def test_a_report_for_year_0000_is_422(
    client: httpx.AsyncClient, session: AsyncSession, period: str
) -> None:
    g = await make_group(client)
    r = await client.post(
        f"/v1/groups/{g['id']}/reports",
        json=report(period),
    )
    assert r.status_code == 422, r.text
    assert "body.period" in {e["field"] for e in r.json()["errors"]}
    n = await session.execute(text("select count(*) from monthly_report where group_id = :g"), {"g": g["id"]})
    assert n.scalar_one() == 0


async def test_a_long_idempotency_key_is_400(client: httpx.AsyncClient) -> None:
    assert await inputs.long_idempotency_key(client, {}) >= 5


@pytest.mark.parametrize("region", ["15.7", "3", "15.0", "15%", "15.7\u0000", 15.71])
async def test_a_malformed_region_claim_is_401_on_groups(client: httpx.AsyncClient, region: Any) -> None:
    token = controls._token(region=region, scope=WRITE)
    for method, path in (("GET", "/v1/groups"), ("POST", "/v1/groups")):
        r = await client.request(method, path, json=group_body(), headers=token)
        assert r.status_code == 401, (region, method, r.status_code, r.text)
        assert r.headers["content-type"] == inputs.PROBLEM and "region" in r.json()["detail"]


async def test_a_malformed_or_empty_region_filter_is_422_on_every_list(client: httpx.AsyncClient) -> None:
    # An empty `region=` is outside the declared pattern: refused, never read as "no filter" (issue 13).
    checked = await inputs.query_refused(
        client,
        {},
        "region",
        ("", "15.7", "0"),
        fill={"from": "2026-01-01", "to": "2026-03-01", "period": "2026-01"},
        found_first={404, 422},
        valid=frozenset({("/v1/statistics", "")}),
    )
    assert checked >= 2
