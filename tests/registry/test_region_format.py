"""A malformed region code is 422 `region.format` naming the parameter (the rule every service answers)."""

from __future__ import annotations

import httpx
import pytest

from tests.registry.conftest import auth

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("path", "field"), [("/v1/families?region=15.7x", "query.region"), ("/v1/regions/abc", "path.code")]
)
async def test_a_malformed_region_is_region_format(client: httpx.AsyncClient, path: str, field: str) -> None:
    r = await client.get(path, headers=auth("registry:read"))
    assert r.status_code == 422, r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [(field, "region.format")]
