"""The business date: a child measured at 06:00 WIB on the 11th (23:00 UTC on the 10th) is dated the 11th.

Before, the registry took "today" in UTC and refused that date as in the future while uppka (WIB) took it. The
clock is frozen with the shared fixture; tests/uppka/test_business_date.py holds uppka to the same instant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
import pytest

from tests.registry.conftest import auth, create_family, person

pytestmark = pytest.mark.integration

# 23:00 UTC on 10 November 2026 = 06:00 WIB on the 11th, in Jambi (15.71, the test village's province: WIB).
SIX_AM_WIB_ON_THE_11TH = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)


async def test_a_measurement_dated_the_local_11th_is_accepted_at_six_wib(
    client: httpx.AsyncClient, frozen_clock: Callable[[datetime], datetime]
) -> None:
    frozen_clock(SIX_AM_WIB_ON_THE_11TH)
    family = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1990, 1, 1), "L"),
            person("anak", date(2025, 11, 1), "P", with_nik=False),
        ],
    )
    child = next(m for m in family["members"] if m["relation"] == "anak")
    body = {"person_id": child["id"], "lenhei_cm": 74.0, "position": "l", "weight_kg": 9.0}

    tomorrow = await client.post(
        "/v1/measurements", json={**body, "measured_on": "2026-11-12"}, headers=auth()
    )
    assert tomorrow.status_code == 422, tomorrow.text
    assert [(e["field"], e["rule"]) for e in tomorrow.json()["errors"]] == [
        ("body.measured_on", "measurement.future")
    ]

    today = await client.post("/v1/measurements", json={**body, "measured_on": "2026-11-11"}, headers=auth())
    assert today.status_code == 201, today.text
    assert today.json()["measured_on"] == "2026-11-11"
