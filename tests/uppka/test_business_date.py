"""uppka takes the same business date as the registry (tests/registry/test_business_date.py) at one instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from tests.uppka.conftest import group_body, rule_of

pytestmark = pytest.mark.integration

SIX_AM_WIB_ON_THE_11TH = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)


async def test_a_group_founded_on_the_local_11th_is_accepted_at_six_wib(
    client: httpx.AsyncClient, frozen_clock: Callable[[datetime], datetime]
) -> None:
    frozen_clock(SIX_AM_WIB_ON_THE_11TH)
    tomorrow = await client.post("/v1/groups", json=group_body(founded_on="2026-11-12", sk_date="2026-11-01"))
    assert tomorrow.status_code == 422 and rule_of(tomorrow) == "group.date_in_future", tomorrow.text
    today = await client.post("/v1/groups", json=group_body(founded_on="2026-11-11", sk_date="2026-11-01"))
    assert today.status_code == 201, today.text
    assert today.json()["founded_on"] == "2026-11-11"
