"""UPPKA takes dates only as YYYY-MM-DD strings from 1900 to 2100 (shared.web.schemas.ApiDate), naming the field."""

from __future__ import annotations

import httpx
import pytest

from tests.uppka.conftest import group_body, rule_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("value", "rule"),
    [(1675209600, "date_format"), (True, "date_format"), ("2026-13-01", "date_invalid"), ("1899-12-31", "date_range")],
)  # fmt: skip
async def test_a_group_founded_on_something_not_a_date(
    client: httpx.AsyncClient, value: object, rule: str
) -> None:
    r = await client.post("/v1/groups", json=group_body(founded_on=value))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.founded_on" and rule_of(r) == rule
