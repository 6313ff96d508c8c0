"""A malformed region code is 422 `region.format` naming the parameter (the rule every service answers)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dashat.helpers import RO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["region", "village_code"])
async def test_a_malformed_region_is_region_format(client: Any, name: str) -> None:
    r = await client.get(f"/v1/kitchens?{name}=15.7x", headers=RO)
    assert r.status_code == 422, r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [(f"query.{name}", "region.format")]
