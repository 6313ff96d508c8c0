"""KB status, catin, pregnancies (birth creates the child), measurements and stunting cases over HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from shared.ages import add_months
from shared.clock import business_today
from tests.registry.conftest import auth, create_family, person


async def _family_with_child(
    client: httpx.AsyncClient, age_days: int, sex: str = "L"
) -> tuple[dict[str, Any], str]:
    birth = business_today() - timedelta(days=age_days)
    fam = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1990, 1, 1), "L"),
            person("istri", date(1995, 5, 5), "P"),
            person("anak", birth, sex, with_nik=False),
        ],
    )
    child = next(m for m in fam["members"] if m["relation"] == "anak")
    return fam, child["id"]


async def _measure(
    client: httpx.AsyncClient, pid: str, days_ago: int, length: float, **kw: Any
) -> httpx.Response:
    body = {
        "person_id": pid,
        "measured_on": (business_today() - timedelta(days=days_ago)).isoformat(),
        "lenhei_cm": length,
        "position": "l",
        "weight_kg": 9.0,
        **kw,
    }
    return await client.post("/v1/measurements", json=body, headers=auth())


async def _cases(client: httpx.AsyncClient, pid: str, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {"updated_since": "2000-01-01T00:00:00Z"}
    items = (await client.get("/v1/stunting-cases", params=params, headers=auth())).json()["items"]
    return [c for c in items if c["person_id"] == pid]


async def test_stunting_case_detected_resolved(client: httpx.AsyncClient) -> None:
    _, pid = await _family_with_child(client, 400)
    r = await _measure(client, pid, 30, 66.0)  # ~370 days, far below the median
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["haz"] < -2 and m["haz_class"] in ("stunted", "severely_stunted") and not m["haz_flag"]
    open_cases = await _cases(client, pid, "open")
    assert len(open_cases) == 1 and open_cases[0]["measurement_id"] == m["id"]
    # A second stunted measurement does not open another case.
    assert (await _measure(client, pid, 20, 66.5)).status_code == 201
    assert len(await _cases(client, pid, "open")) == 1
    r = await _measure(client, pid, 1, 76.0)
    assert r.json()["haz"] >= -2
    resolved = await _cases(client, pid, "resolved")
    assert len(resolved) == 1 and resolved[0]["resolved_by_measurement_id"] == r.json()["id"]


async def test_no_case_over_24_months_or_flagged(client: httpx.AsyncClient) -> None:
    _, older = await _family_with_child(client, 1000)
    r = await _measure(client, older, 0, 75.0, position="h")
    assert r.status_code == 201 and r.json()["haz"] < -2
    assert await _cases(client, older) == []
    _, young = await _family_with_child(client, 300)
    r = await _measure(client, young, 0, 45.0)  # implausible (|HAZ| > 6): stored flagged, no case
    assert r.status_code == 201 and r.json()["haz_flag"] is True and r.json()["haz_class"] is None
    assert await _cases(client, young) == []


async def test_measurement_bad_input(client: httpx.AsyncClient) -> None:
    _, pid = await _family_with_child(client, 100)
    r = await _measure(client, pid, 200, 50.0)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "measurement.before_birth"
    _, old = await _family_with_child(client, 2000)
    r = await _measure(client, old, 0, 100.0, position="h")
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "measurement.over_60_months"
    r = await _measure(client, pid, 0, 200.0)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.lenhei_cm"
    r = await _measure(client, pid, 0, 60.0, weight_kg=95.0)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "measurement.weight_range"
    r = await _measure(client, pid, 0, 60.0, position=None)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "measurement.position_required"


async def test_correction_and_retraction_undo_cases(client: httpx.AsyncClient) -> None:
    _, pid = await _family_with_child(client, 400)
    m = (await _measure(client, pid, 10, 66.0)).json()
    case = (await _cases(client, pid, "open"))[0]
    body = {
        "measured_on": m["measured_on"],
        "lenhei_cm": 76.0,
        "position": "l",
        "weight_kg": 9.0,
        "reason": "misread",
    }
    r = await client.post(f"/v1/measurements/{m['id']}/corrections", json=body, headers=auth())
    assert r.status_code == 428
    r = await client.post(
        f"/v1/measurements/{m['id']}/corrections", json=body, headers={**auth(), "If-Match": '"1"'}
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["corrects_measurement_id"] == m["id"] and new["haz"] >= -2
    old = (await client.get(f"/v1/measurements/{m['id']}", headers=auth())).json()
    assert old["status"] == "corrected" and old["change_reason"] == "misread"
    all_cases = await _cases(client, pid)
    assert [(c["id"], c["status"], c["retraction_reason"]) for c in all_cases] == [
        (case["id"], "retracted", "measurement_corrected")
    ]
    stale = await client.post(
        f"/v1/measurements/{m['id']}/corrections", json=body, headers={**auth(), "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    # The history is readable from either end: the original and its correction, oldest first; a second
    # correction extends the chain, and the current version is the last active one.
    body2 = {**body, "lenhei_cm": 76.5, "reason": "second reading"}
    r = await client.post(
        f"/v1/measurements/{new['id']}/corrections", json=body2, headers={**auth(), "If-Match": '"1"'}
    )
    assert r.status_code == 201, r.text
    newest = r.json()
    for asked in (m["id"], new["id"], newest["id"]):
        h = await client.get(f"/v1/measurements/{asked}/history", headers=auth())
        assert h.status_code == 200, h.text
        history = h.json()
        assert history["measurement_id"] == asked and history["current_measurement_id"] == newest["id"]
        assert [(v["id"], v["status"], v["deleted"]) for v in history["versions"]] == [
            (m["id"], "corrected", True),
            (new["id"], "corrected", True),
            (newest["id"], "active", False),
        ]
        assert [v["lenhei_cm"] for v in history["versions"]] == [66.0, 76.0, 76.5]
    outsider = await client.get(f"/v1/measurements/{m['id']}/history", headers=auth(region="32"))
    assert outsider.status_code == 404
    # Retraction of a measurement that opened a case retracts the case.
    m2 = (await _measure(client, pid, 5, 66.0)).json()
    assert len(await _cases(client, pid, "open")) == 1
    r = await client.post(
        f"/v1/measurements/{m2['id']}/retraction",
        json={"reason": "wrong child"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["status"] == "retracted" and r.json()["deleted"] is True
    assert await _cases(client, pid, "open") == []


async def test_kb_status_history_and_mkjp(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    wife = fam["members"][1]
    url = f"/v1/persons/{wife['id']}/kb-status"
    r = await client.post(
        url, json={"method": "pil", "since": "2025-01-01", "service_source": "swasta"}, headers=auth()
    )
    assert r.status_code == 201 and r.json()["mkjp"] is False
    r = await client.post(url, json={"method": "implant", "since": "2026-01-01"}, headers=auth())
    assert r.json()["mkjp"] is True and r.json()["current"] is True
    hist = (await client.get(url, headers=auth())).json()
    assert [(h["method"], h["current"]) for h in hist] == [("pil", False), ("implant", True)]
    r = await client.post(url, json={"method": None, "since": "2026-02-01"}, headers=auth())
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "kb.reason_required"
    r = await client.post(url, json={"method": "mop", "since": "2026-02-01"}, headers=auth())
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "kb.method_sex"
    current = (await client.get("/v1/kb-statuses", params={"mkjp": "true"}, headers=auth())).json()["items"]
    assert wife["id"] in [c["person_id"] for c in current]


async def test_catin_risk(client: httpx.AsyncClient) -> None:
    fam = await create_family(
        client,
        members=[person("kepala_keluarga", date(1970, 1, 1), "L"), person("anak", date(2004, 2, 2), "P")],
    )
    bride = fam["members"][1]
    body = {
        "person_id": bride["id"],
        "planned_marriage_date": (business_today() + timedelta(days=120)).isoformat(),
        "screened_on": business_today().isoformat(),
        "weight_kg": 40.0,
        "height_cm": 155.0,
        "lila_cm": 22.0,
        "hb_g_dl": 11.0,
    }
    r = await client.post("/v1/catin", json=body, headers=auth())
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["bmi"] == 16.6 and c["at_risk"] and sorted(c["risks"]) == ["anaemia", "kek", "underweight"]
    assert c["rule_version"] == "registry-rules-2026.2"


async def test_catin_too_young_is_judged_at_the_wedding(client: httpx.AsyncClient) -> None:
    wedding = business_today() + timedelta(days=120)
    turns_19_before = add_months(wedding, -19 * 12)  # 19 on the wedding day itself
    turns_19_after = turns_19_before + timedelta(days=1)  # still 18 on the wedding day
    fam = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1970, 1, 1), "L"),
            person("anak", turns_19_before, "P"),
            person("anak", turns_19_after, "P"),
        ],
    )
    brides = sorted((m for m in fam["members"] if m["relation"] == "anak"), key=lambda m: m["birth_date"])
    got = []
    for bride in brides:
        body = {
            "person_id": bride["id"],
            "planned_marriage_date": wedding.isoformat(),
            "screened_on": business_today().isoformat(),
        }
        r = await client.post("/v1/catin", json=body, headers=auth())
        assert r.status_code == 201, r.text
        got.append((r.json()["at_risk"], r.json()["risks"]))
    assert got == [(False, []), (True, ["too_young"])]


async def test_pregnancy_birth_creates_child(client: httpx.AsyncClient) -> None:
    fam = await create_family(client)
    wife = fam["members"][1]
    lmp = business_today() - timedelta(days=200)
    r = await client.post(
        "/v1/pregnancies",
        json={"person_id": wife["id"], "lmp": lmp.isoformat(), "lila_cm": 22.0, "hb_g_dl": 9.5},
        headers=auth(),
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["kek"] is True and p["anaemia"] == "moderate"
    assert p["expected_delivery"] == (lmp + timedelta(days=280)).isoformat()
    dup = await client.post(
        "/v1/pregnancies", json={"person_id": wife["id"], "lmp": lmp.isoformat()}, headers=auth()
    )
    assert dup.status_code == 409
    husband = fam["members"][0]
    r = await client.post(
        "/v1/pregnancies", json={"person_id": husband["id"], "lmp": lmp.isoformat()}, headers=auth()
    )
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "pregnancy.not_a_woman"
    end = {
        "outcome": "birth",
        "ended_on": business_today().isoformat(),
        "child": {"name": "Bayi", "sex": "P"},
    }
    r = await client.post(f"/v1/pregnancies/{p['id']}/end", json=end, headers={**auth(), "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "ended" and ended["child_person_id"]
    members = (await client.get(f"/v1/families/{fam['id']}/members", headers=auth())).json()
    child = next(m for m in members if m["id"] == ended["child_person_id"])
    assert child["birth_date"] == business_today().isoformat() and child["has_nik"] is False
    family = (await client.get(f"/v1/families/{fam['id']}", headers=auth())).json()
    assert family["krs"]["target"] is True


async def test_scoring_endpoint(client: httpx.AsyncClient) -> None:
    items = [
        {"sex": "L", "age_days": 730, "lenhei_cm": 81.7, "position": "l"},
        {"sex": "L", "age_days": 731, "lenhei_cm": 81.0, "position": "h"},
        {
            "sex": 2,
            "birth_date": "2025-01-01",
            "measured_on": "2026-01-29",
            "lenhei_cm": 74.0,
            "position": "l",
        },
    ]
    r = await client.post("/v1/anthropometry:score", json={"items": items}, headers=auth("registry:read"))
    assert r.status_code == 200, r.text
    out = r.json()["items"]
    assert [o["haz"] for o in out] == [-2.0, -2.01, -0.42]
    bad = await client.post(
        "/v1/anthropometry:score",
        json={"items": [{"sex": "L", "age_days": 3000, "lenhei_cm": 80, "position": "l"}]},
        headers=auth("registry:read"),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.items.0.age_days"
    missing = await client.post(
        "/v1/anthropometry:score", json={"items": [{"sex": "L"}]}, headers=auth("registry:read")
    )
    assert missing.status_code == 422
    big = {"items": [{"sex": "L", "age_days": 300, "lenhei_cm": 70, "position": "l"}] * 10_001}
    assert (
        await client.post("/v1/anthropometry:score", json=big, headers=auth("registry:read"))
    ).status_code == 422
    ok = {"items": big["items"][:10_000]}
    r = await client.post("/v1/anthropometry:score", json=ok, headers=auth("registry:read"))
    assert r.status_code == 200 and len(r.json()["items"]) == 10_000
    assert (await client.post("/v1/anthropometry:score", json=ok)).status_code == 401


async def test_region_scope_on_child_resources(client: httpx.AsyncClient) -> None:
    _, pid = await _family_with_child(client, 400)
    m = (await _measure(client, pid, 10, 66.0)).json()
    out = auth(region="32.76")
    assert (await client.get(f"/v1/measurements/{m['id']}", headers=out)).status_code == 404
    assert (await _measure(client, pid, 3, 66.0)).status_code == 201
    r = await client.post(
        "/v1/measurements",
        json={
            "person_id": pid,
            "measured_on": business_today().isoformat(),
            "lenhei_cm": 66.0,
            "position": "l",
        },
        headers=out,
    )
    assert r.status_code == 404
    listed = (await client.get("/v1/measurements", headers=out)).json()["items"]
    assert all(x["person_id"] != pid for x in listed)
    assert (await client.get("/v1/stunting-cases", headers=out)).json()["items"] == [] or all(
        c["person_id"] != pid for c in (await client.get("/v1/stunting-cases", headers=out)).json()["items"]
    )
