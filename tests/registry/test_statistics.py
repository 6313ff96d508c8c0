"""The registry's recount (`GET /v1/statistics`) against hand-computed figures: per couple, ageing, age bands."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

import httpx
import pytest

from shared.ages import add_months
from shared.clock import business_today, now_utc
from tests.registry.conftest import auth, create_family, person

pytestmark = [pytest.mark.integration]

T = business_today()
# Kalimantan Timur: no other registry test writes there, and some of them commit (imports), so the counts of the
# village are this test's alone.
VILLAGE, OTHER_VILLAGE = "64.71.01.1001", "64.72.01.1001"
READER = "registry:read"


async def _kb(client: httpx.AsyncClient, pid: str, method: str | None, reason: str | None = None) -> None:
    body: dict[str, Any] = {"method": method, "since": (T - timedelta(days=100)).isoformat()}
    if reason:
        body["reason_non_use"] = reason
    r = await client.post(f"/v1/persons/{pid}/kb-status", json=body, headers=auth(region=None))
    assert r.status_code == 201, r.text


async def _couple(
    client: httpx.AsyncClient,
    wife_birth: date,
    *,
    children: list[tuple[date, str]] | None = None,
    village: str = VILLAGE,
    **family: Any,
) -> dict[str, str]:
    members = [person("kepala_keluarga", date(1988, 3, 3), "L"), person("istri", wife_birth, "P")]
    members += [person("anak", birth, sex, with_nik=False) for birth, sex in children or []]
    fam = await create_family(client, village=village, members=members, **family)
    ids = {m["relation"]: m["id"] for m in fam["members"]}
    ids["children"] = [m["id"] for m in fam["members"] if m["relation"] == "anak"]  # type: ignore[assignment]
    return ids


async def _measure(
    client: httpx.AsyncClient, pid: str, days_ago: int, cm: float, position: str = "l"
) -> httpx.Response:
    body = {
        "person_id": pid,
        "measured_on": (T - timedelta(days=days_ago)).isoformat(),
        "lenhei_cm": cm,
        "position": position,
    }
    r = await client.post("/v1/measurements", json=body, headers=auth(region=None))
    assert r.status_code == 201, r.text
    return r


async def _stats(
    client: httpx.AsyncClient, region: str | None, first: date, last: date, token_region: str | None = None
) -> httpx.Response:
    params = {"from": first.isoformat(), "to": last.isoformat()} | ({"region": region} if region else {})
    return await client.get("/v1/statistics", params=params, headers=auth(READER, region=token_region))


async def test_couples_count_once_with_the_husbands_method_and_age_out_at_fifty(
    client: httpx.AsyncClient,
) -> None:
    began = now_utc()
    implant = await _couple(client, date(1995, 5, 5))
    await _kb(client, implant["istri"], "implant")
    mop = await _couple(client, date(1996, 6, 6))
    await _kb(client, mop["kepala_keluarga"], "mop")
    await _kb(client, mop["istri"], None, "tial")  # she uses nothing, but the couple does: not unmet need
    condom = await _couple(
        client, date(1997, 7, 7), drinking_water_source="air_permukaan"
    )  # KRS: improper water
    await _kb(client, condom["kepala_keluarga"], "kondom")
    traditional = await _couple(client, date(1998, 8, 8))
    await _kb(client, traditional["istri"], "tradisional")
    iat = await _couple(client, date(1999, 9, 9))
    await _kb(client, iat["istri"], None, "iat")
    await _couple(client, date(2000, 1, 10))  # PUS without any KB status: neither user nor unmet need
    fifty_today = await _couple(client, add_months(T, -600))  # 50 completed years today: no longer PUS
    await _kb(client, fifty_today["istri"], "pil")
    last_day_at_49 = await _couple(client, add_months(T, -600) + timedelta(days=1))  # PUS; too old: KRS
    await _kb(client, last_day_at_49["istri"], "suntik")
    elsewhere = await _couple(client, date(1995, 2, 2), village=OTHER_VILLAGE)
    await _kb(client, elsewhere["istri"], "pil")

    r = await _stats(client, VILLAGE, T - timedelta(days=60), T)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["region"] == VILLAGE and body["from"] == (T - timedelta(days=60)).isoformat()
    c = body["counts"]
    # PUS: implant, mop, condom, traditional, iat, no status, 49-year-old = 7 (the 50-year-old is out).
    assert c["pus"] == 7
    # Users: implant, mop (husband), condom (husband), traditional, suntik = 5; modern: all but traditional.
    assert c["kb_users"] == 5 and c["kb_users_modern"] == 4
    assert c["mkjp_users"] == 2  # implant, MOP
    assert c["non_users_iat"] == 1 and c["non_users_tial"] == 0
    assert c["families_registered"] == 8 and c["krs_families"] == 2
    assert body["areas"] == ["64", "64.71"]

    province = (await _stats(client, "64", T - timedelta(days=60), T)).json()["counts"]
    assert province["pus"] == 8 and province["kb_users"] == 6
    # Nothing was known before the test began: a window ending the day before finds none of it. The recounts'
    # days are UTC days, as reporting dates events (shared/statistics.py): from 17:00 UTC the business date T is
    # already the next day, and "T - 1" would be the UTC day the rows were written in.
    before = began.astimezone(UTC).date() - timedelta(days=1)
    assert (await _stats(client, VILLAGE, T - timedelta(days=60), before)).json()["counts"]["pus"] == 0


async def test_children_once_by_their_latest_measurement_in_the_age_band(client: httpx.AsyncClient) -> None:
    turned_two = add_months(T - timedelta(days=20), -24)  # 24 completed months 20 days ago
    fam = await _couple(
        client,
        date(1995, 5, 5),
        children=[
            (T - timedelta(days=700), "L"),  # baduta: stunted, then normal
            (turned_two, "P"),  # stunted while a baduta, normal after turning two
            (T - timedelta(days=1100), "L"),  # balita only: stunted
            (T - timedelta(days=400), "P"),  # measured before the window
            (T - timedelta(days=300), "L"),  # measured, then the measurement retracted
        ],
    )
    early, late_two, three, before, retracted = fam["children"]
    await _measure(client, early, 10, 70.0)
    await _measure(client, early, 5, 87.0)
    await _measure(client, late_two, 30, 72.0)
    await _measure(client, late_two, 10, 86.0)
    await _measure(client, three, 3, 85.0, "h")
    await _measure(client, before, 90, 66.0)
    gone = await _measure(client, retracted, 2, 68.0)
    r = await client.post(
        f"/v1/measurements/{gone.json()['id']}/retraction",
        json={"reason": "wrong child"},
        headers={**auth(region=None), "If-Match": gone.headers["etag"]},
    )
    assert r.status_code == 200, r.text

    c = (await _stats(client, VILLAGE, T - timedelta(days=60), T)).json()["counts"]
    assert (c["baduta_measured"], c["baduta_stunted"]) == (
        2,
        1,
    )  # early (normal last), late_two (stunted at 23 mo)
    assert (c["balita_measured"], c["balita_stunted"]) == (
        3,
        1,
    )  # early, late_two (normal last), three (stunted)


async def test_statistics_keep_to_the_callers_region_and_name_bad_fields(client: httpx.AsyncClient) -> None:
    await _couple(client, date(1995, 5, 5))
    first, last = T - timedelta(days=10), T
    assert (await _stats(client, "32", first, last, token_region="64.71")).status_code == 404
    assert (await _stats(client, "ID", first, last, token_region="64.71")).status_code == 404
    own = await _stats(client, None, first, last, token_region="64.71")
    assert own.status_code == 200 and own.json()["region"] == "64.71" and own.json()["counts"]["pus"] == 1
    bad = await _stats(client, VILLAGE, last, first)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.to"
    nonsense = await _stats(client, "x.y", first, last)
    assert nonsense.status_code == 422 and nonsense.json()["errors"][0]["field"] == "query.region"
    missing = await client.get("/v1/statistics", params={"to": last.isoformat()}, headers=auth(READER))
    assert missing.status_code == 422 and "from" in missing.text
    assert (await _stats(client, VILLAGE, first, last)).json().keys() == {
        "region",
        "from",
        "to",
        "rule_version",
        "counts",
        "areas",
    }


async def test_a_husbands_method_counts_for_his_own_wife_only(client: httpx.AsyncClient) -> None:
    son = person("anak", date(1998, 1, 1), "L", marital_status="kawin")
    fam = await create_family(
        client,
        village=VILLAGE,
        members=[
            person("kepala_keluarga", date(1970, 1, 1), "L"),
            person("istri", date(1980, 1, 1), "P"),
            son,
            person("menantu", date(2000, 1, 1), "P", marital_status="kawin"),
        ],
    )
    ids = {m["relation"]: m["id"] for m in fam["members"]}
    await _kb(client, ids["anak"], "kondom")
    await _kb(client, ids["istri"], None, "tial")
    c = (await _stats(client, VILLAGE, T - timedelta(days=30), T)).json()["counts"]
    # Two couples: the head and his wife (she wants no more children, nobody uses KB), the son and his wife
    # (condoms: a KB couple). The son's condom does not make his mother's couple a user.
    assert (c["pus"], c["kb_users"], c["kb_users_modern"], c["mkjp_users"]) == (2, 1, 1, 0)
    assert (c["non_users_iat"], c["non_users_tial"]) == (0, 1)


async def test_couples_pair_as_reporting_pairs_them(client: httpx.AsyncClient) -> None:
    """The pairing of reporting's fold (husband_of): any method of the husband, one husband, no ambiguity."""
    traditional = await _couple(client, date(1995, 5, 5))
    await _kb(
        client, traditional["kepala_keluarga"], "tradisional"
    )  # withdrawal: the couple uses KB, not modern
    fam = await create_family(
        client,
        village=VILLAGE,
        members=[
            person("kepala_keluarga", date(1960, 1, 1), "L"),
            person("istri", date(1962, 1, 1), "P"),  # 50 or more: not PUS
            person("anak", date(1996, 1, 1), "P", marital_status="kawin"),
            person("anak", date(1998, 1, 1), "P", marital_status="kawin"),
            person("menantu", date(1994, 1, 1), "L", marital_status="kawin"),
        ],
    )
    son_in_law = next(m["id"] for m in fam["members"] if m["relation"] == "menantu")
    await _kb(client, son_in_law, "kondom")
    c = (await _stats(client, VILLAGE, T - timedelta(days=30), T)).json()["counts"]
    # PUS: the wife of the traditional couple and the two married daughters = 3. Two married daughters and one
    # son-in-law: whose husband he is cannot be told from the card, so both daughters count on their own status
    # (no method) and his condom counts for neither; the traditional couple is the only user, and not modern.
    assert (c["pus"], c["kb_users"], c["kb_users_modern"], c["mkjp_users"]) == (3, 1, 0, 0)
