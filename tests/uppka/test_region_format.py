"""A malformed region code is 422 `region.format` naming the parameter (the rule every service answers)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_a_malformed_region_is_region_format(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/groups?region=15.7x")
    assert r.status_code == 422, r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("query.region", "region.format")]
