"""DASHAT rules as configuration: stored versions per region and date, the admin API, the version on decisions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from dashat.enrolment import service as enrolment_service
from dashat.models import outbox
from dashat.ruleversions import repository as versions
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.testing.plugin import bearer
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, stunting
from tests.dashat.helpers import enrolments, open_kitchen

pytestmark = pytest.mark.integration

SEED = "dashat-enrolment-2026.1"
NATIONAL_ADMIN = bearer("dashat:read dashat:rules")
JATENG_ADMIN = bearer("dashat:read dashat:rules", region="33")
READER = bearer("dashat:read", region="33")


def _district(village: str) -> str:
    return ".".join(village.split(".")[:3])


def _village_in_another_district(village: str) -> str:
    while True:
        other = fresh_village()
        if _district(other) != _district(village):
            return other


def _frozen_on(frozen_clock: Callable[[datetime], datetime], day: date) -> None:
    """Every DASHAT decision from here on is taken on `day` (the shared clock, frozen at 09:00 UTC = 16:00 WIB)."""
    frozen_clock(datetime.combine(day, time(9), tzinfo=UTC))


async def _create(client: Any, body: dict[str, Any], headers: dict[str, str] = JATENG_ADMIN) -> Any:
    return await client.post("/v1/rule-versions", json=body, headers=headers)


def _problem(r: Any, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert field in [e["field"] for e in r.json().get("errors", [])], r.json()


async def test_regional_override_applies_from_its_date_and_only_in_its_region(
    client: Any, session: AsyncSession, frozen_clock: Callable[[datetime], datetime]
) -> None:
    inside = fresh_village()
    outside = _village_in_another_district(inside)
    for village in (inside, outside):
        await open_kitchen(session, village)
    starts = business_today() + timedelta(days=31)
    r = await _create(
        client,
        {
            "version": "jateng-test-60-days",
            "region_prefix": _district(inside),
            "effective_from": starts.isoformat(),
            "config": {"planned_days": {"baduta_stunting": 60}},
            "note": "shorter rounds while the district has more children than places",
        },
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/rule-versions/jateng-test-60-days"
    stored = r.json()
    # Everything else is the seed's: a stored version is complete, so it explains decisions on its own.
    assert stored["config"]["planned_days"] == {
        "baduta_stunting": 60,
        "balita_stunting": 90,
        "ibu_hamil": 120,
        "ibu_menyusui": 90,
        "catin": 90,
    }
    assert (stored["config"]["recovery_confirmations"], stored["config"]["ibu_menyusui_baby_months"]) == (
        2,
        6,
    )

    async def enrol(village: str) -> tuple[str | None, int]:
        child = uuid.uuid4()
        await deliver(session, envelope(stunting(child, uuid.uuid4(), village, birth_date=months_ago(8))))
        [e] = await enrolments(session, child)
        return e.rule_version, (e.planned_end_date - e.start_date).days

    # Today and on the day before it starts: the seed everywhere.
    assert await enrol(inside) == (SEED, 90)
    _frozen_on(frozen_clock, starts - timedelta(days=1))
    assert await enrol(inside) == (SEED, 90)
    # From its date: the override inside its district, the seed outside it.
    _frozen_on(frozen_clock, starts)
    assert await enrol(inside) == ("jateng-test-60-days", 60)
    assert await enrol(outside) == (SEED, 90)
    r = await client.get(
        "/v1/rule-versions/effective",
        params={"village_code": inside, "on": starts.isoformat()},
        headers=READER,
    )
    assert r.json()["version"] == "jateng-test-60-days"
    r = await client.get("/v1/rule-versions/effective", params={"village_code": outside}, headers=READER)
    assert (r.json()["version"], r.json()["builtin"]) == (SEED, True)


async def test_the_most_specific_region_wins_then_the_latest_date(session: AsyncSession) -> None:
    village = fresh_village()
    district, regency = _district(village), ".".join(village.split(".")[:2])
    day = business_today() + timedelta(days=10)
    async with session.begin():
        for version, prefix, starts in [
            ("t-national-late", None, day),
            ("t-regency", regency, day - timedelta(days=5)),
            ("t-district-early", district, day - timedelta(days=5)),
            ("t-district-late", district, day),
            ("t-village-future", village, day + timedelta(days=1)),
        ]:
            session.add(
                versions.RuleVersion(
                    version=version, region_prefix=prefix, effective_from=starts, config={}, created_by="t"
                )
            )
        await session.flush()
        assert (await versions.config_for(session, village, day - timedelta(days=6))).version == SEED
        assert (
            await versions.config_for(session, village, day - timedelta(days=5))
        ).version == "t-district-early"
        assert (await versions.config_for(session, village, day)).version == "t-district-late"
        assert (
            await versions.config_for(session, village, day + timedelta(days=1))
        ).version == "t-village-future"
        # Another district of the regency: the regency's version, not the later national one.
        other = _village_in_another_district(village)
        assert (await versions.config_for(session, other, day)).version == "t-regency"
        await session.rollback()


async def test_decisions_and_their_events_record_the_version_used(
    client: Any, session: AsyncSession, frozen_clock: Callable[[datetime], datetime]
) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    starts = business_today() + timedelta(days=1)
    r = await _create(
        client,
        {
            "region_prefix": village,
            "effective_from": starts.isoformat(),
            "config": {"baduta_age_out_months": 12},
        },
    )
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    assert version.startswith(f"dashat-enrolment-{village}-{starts:%Y%m%d}-")
    _frozen_on(frozen_clock, starts)
    child = uuid.uuid4()
    # 11 completed months: still under this version's 12-month limit.
    birth = starts - timedelta(days=340)
    await deliver(session, envelope(stunting(child, uuid.uuid4(), village, birth_date=birth)))
    [e] = await enrolments(session, child)
    assert e.rule_version == version
    # The sweep on the first birthday ages the child out under this version's 12 months.
    birthday = date(birth.year + 1, birth.month, birth.day)
    assert await enrolment_service.sweep(session, on=birthday) is not None
    [e] = await enrolments(session, child)
    assert (e.status, e.exit_reason, e.exit_rule_version) == ("exited", "aged_out", version)
    read = (await client.get(f"/v1/enrolments/{e.id}", headers=READER)).json()
    assert (read["explanation"]["rule_version"], read["exit_rule_version"]) == (version, version)
    async with session.begin():
        events = {
            row.event_type: row.envelope["data"]
            for row in await session.execute(
                select(outbox.c.event_type, outbox.c.envelope).where(
                    outbox.c.envelope["data"]["person_id"].astext == str(child)
                )
            )
        }
    assert events["dashat.beneficiary.enrolled.v1"]["rule_version"] == version
    assert events["dashat.beneficiary.exited.v1"]["rule_version"] == version
    # Used: it can no longer be withdrawn.
    _problem(await client.delete(f"/v1/rule-versions/{version}", headers=JATENG_ADMIN), 409)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"planned_days": {"catin": -5}}, "body.config.planned_days.catin"),
        ({"planned_days": {"ibu_hamil": 0}}, "body.config.planned_days.ibu_hamil"),
        ({"baduta_age_out_months": 30}, "body.config.baduta_age_out_months"),
        ({"balita_age_out_months": 72}, "body.config.balita_age_out_months"),
        ({"baduta_age_out_months": 18, "balita_age_out_months": 12}, "body.config.balita_age_out_months"),
        ({"recovery_confirmations": 0}, "body.config.recovery_confirmations"),
        ({"recovery_min_interval_days": -1}, "body.config.recovery_min_interval_days"),
        ({"ibu_menyusui_baby_months": 25}, "body.config.ibu_menyusui_baby_months"),
        ({"pregnancy_max_decile": 11}, "body.config.pregnancy_max_decile"),
        ({"pregnancy_anaemia_levels": ["none"]}, "body.config.pregnancy_anaemia_levels.0"),
        ({"planned_days": {"lansia": 30}}, "body.config.planned_days.lansia"),
    ],
)
async def test_nonsense_is_refused_naming_the_field(client: Any, config: dict[str, Any], field: str) -> None:
    body = {
        "region_prefix": "33",
        "effective_from": (business_today() + timedelta(days=3)).isoformat(),
        "config": config,
    }
    _problem(await _create(client, body), 422, field)
    r = await client.get("/v1/rule-versions", params={"region": "33"}, headers=READER)
    assert [v["version"] for v in r.json()] == [SEED]


async def test_who_may_set_rules_where(client: Any) -> None:
    starts = (business_today() + timedelta(days=3)).isoformat()
    _problem(await _create(client, {"region_prefix": "33", "effective_from": starts}, headers=READER), 403)
    # A provincial officer sets rules inside the province, not nationally nor in another province.
    _problem(await _create(client, {"effective_from": starts}), 403)
    _problem(await _create(client, {"region_prefix": "15.71", "effective_from": starts}), 403)
    _problem(
        await _create(client, {"region_prefix": "33.x", "effective_from": starts}), 422, "body.region_prefix"
    )
    _problem(
        await _create(
            client,
            {"region_prefix": "33", "effective_from": (business_today() - timedelta(days=1)).isoformat()},
        ),
        422,
        "body.effective_from",
    )
    r = await _create(client, {"effective_from": starts}, headers=NATIONAL_ADMIN)
    assert r.status_code == 201 and r.json()["region_prefix"] is None
    # One version per region and day; the seed's id is taken.
    _problem(await _create(client, {"effective_from": starts}, headers=NATIONAL_ADMIN), 409)
    _problem(await _create(client, {"version": SEED, "effective_from": starts}, headers=NATIONAL_ADMIN), 409)
    # Not yet in effect: it can be withdrawn (by a national officer, not a provincial one).
    version = r.json()["version"]
    _problem(await client.delete(f"/v1/rule-versions/{version}", headers=JATENG_ADMIN), 403)
    assert (await client.delete(f"/v1/rule-versions/{version}", headers=NATIONAL_ADMIN)).status_code == 204
    _problem(await client.get(f"/v1/rule-versions/{version}", headers=READER), 404)
    _problem(await client.delete(f"/v1/rule-versions/{SEED}", headers=NATIONAL_ADMIN), 409)
    seed = (await client.get(f"/v1/rule-versions/{SEED}", headers=READER)).json()
    assert seed["builtin"] is True and seed["config"]["planned_days"]["ibu_hamil"] == 120


async def test_a_version_in_effect_cannot_be_withdrawn(client: Any) -> None:
    r = await _create(client, {"region_prefix": "33.01", "effective_from": business_today().isoformat()})
    assert r.status_code == 201, r.text
    _problem(await client.delete(f"/v1/rule-versions/{r.json()['version']}", headers=JATENG_ADMIN), 409)


async def test_the_rule_versions_api_is_documented(client: Any) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/rule-versions", "/v1/rule-versions/effective", "/v1/rule-versions/{version}"} <= set(
        spec["paths"]
    )
    post = spec["paths"]["/v1/rule-versions"]["post"]
    assert "most specific prefix" in post["description"] and "422" in post["responses"]
