"""DASHAT takes dates only as YYYY-MM-DD strings from 1900 to 2100 (shared.web.schemas.ApiDate), naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dashat.conftest import fresh_village
from tests.dashat.helpers import RW

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("value", "rule"),
    [(1764547200, "date_format"), (False, "date_format"), ("2026-13-01", "date_invalid"), ("1899-12-31", "date_range")],
)  # fmt: skip
async def test_a_kitchen_opened_on_something_not_a_date(client: Any, value: object, rule: str) -> None:
    body = {
        "name": "Dapur",
        "village_code": fresh_village(),
        "management_model": "social",
        "capacity_per_day": 5,
        "opened_on": value,
    }
    r = await client.post("/v1/kitchens", json=body, headers=RW)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    err = r.json()["errors"][0]
    assert (err["field"], err["rule"]) == ("body.opened_on", rule)
