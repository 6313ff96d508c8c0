"""Cross-service flows through the public APIs and Kafka, with every service running as a real process."""

from __future__ import annotations

import itertools
import random
import time
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from kencana_cli.demo.plan import DISTRICTS
from registry.identity.domain import make_kk, make_nik

from shared.regions import load_regions
from shared.testing.plugin import bearer, unique, wait_for
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

DISTRICT = "15.71.01"
_serials = itertools.count(int(time.time()) % 5000 + 1)
ALL = "registry:read registry:write dashat:read dashat:write uppka:read uppka:write reporting:read"


def admin(region: str | None = None) -> dict[str, str]:
    return bearer(ALL, region=region, sub="e2e-admin")


def _villages_of(prefix: str) -> list[str]:
    regions = load_regions()
    demo_districts = {district for district, _ in DISTRICTS}
    out = []
    for district in regions.children(prefix):
        if district.code not in demo_districts:
            out.extend(v.code for v in regions.children(district.code))
    random.Random(time.time_ns()).shuffle(out)
    return out


# Every test takes a village of Kota Jambi no other test of this run uses, so exact counts hold; the districts
# the demo fills (test_demo runs it on the same stack, earlier) are left out: a village drawn from them held
# the demo's families too, and the exact village figures were never reached (1 CI run in 3).
_fresh_villages = iter(_villages_of("15.71"))


def fresh_village() -> str:
    return next(_fresh_villages)


def _person(relation: str, birth: date, sex: str, *, nik: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Warga {relation}",
        "sex": sex,
        "birth_date": birth.isoformat(),
        "relation": relation,
        "marital_status": "kawin" if relation in ("kepala_keluarga", "istri") else "belum_kawin",
    }
    if nik:
        body["nik"] = make_nik(DISTRICT, birth, sex, next(_serials) % 9999 + 1)  # type: ignore[arg-type]
    return body


async def family_with_baduta(
    client: httpx.AsyncClient, stack: Stack, village: str, rw: str
) -> dict[str, Any]:
    body = {
        "kk_number": make_kk(DISTRICT, date(2016, 4, 1), next(_serials) % 9999 + 1),
        "village_code": village,
        "rw": rw,
        "rt": "002",
        "members": [
            _person("kepala_keluarga", date(1991, 2, 3), "L"),
            _person("istri", date(1996, 6, 7), "P"),
            _person("anak", date.today() - timedelta(days=400), "P", nik=False),
        ],
    }
    r = await client.post(stack.base_url("registry") + "/v1/families", json=body, headers=admin())
    assert r.status_code == 201, r.text
    return dict(r.json())


def member(family: dict[str, Any], relation: str) -> dict[str, Any]:
    return next(m for m in family["members"] if m["relation"] == relation)


async def open_kitchen(
    client: httpx.AsyncClient, stack: Stack, village: str, rw: str, capacity: int = 20
) -> Any:
    body = {
        "name": f"Dapur Sehat {unique()}",
        "village_code": village,
        "rws": [rw],
        "management_model": "combined",
        "capacity_per_day": capacity,
        "opened_on": (date.today() - timedelta(days=10)).isoformat(),
    }
    r = await client.post(stack.base_url("dashat") + "/v1/kitchens", json=body, headers=admin())
    assert r.status_code == 201, r.text
    return r.json()


async def measure(client: httpx.AsyncClient, stack: Stack, person_id: str, length: float) -> dict[str, Any]:
    body = {
        "person_id": person_id,
        "measured_on": date.today().isoformat(),
        "lenhei_cm": length,
        "weight_kg": 8.0,
        "position": "l",
    }
    r = await client.post(stack.base_url("registry") + "/v1/measurements", json=body, headers=admin())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def enrolments_of(client: httpx.AsyncClient, stack: Stack, person_id: str) -> list[dict[str, Any]]:
    r = await client.get(
        stack.base_url("dashat") + "/v1/enrolments", params={"person_id": person_id}, headers=admin()
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_stunting_case_enrols_the_child_and_a_correction_withdraws_it(stack: Stack) -> None:
    village, rw = fresh_village(), "003"
    async with httpx.AsyncClient(timeout=15) as client:
        kitchen = await open_kitchen(client, stack, village, rw)
        family = await family_with_baduta(client, stack, village, rw)
        child = member(family, "anak")
        started = time.monotonic()
        measurement = await measure(client, stack, child["id"], 66.0)
        assert measurement["haz"] < -2 and not measurement["haz_flag"]

        async def enrolled() -> list[dict[str, Any]]:
            return [e for e in await enrolments_of(client, stack, child["id"]) if e["status"] == "active"]

        active = await wait_for(enrolled, timeout=60, what="DASHAT enrolment of the stunted baduta")
        latency = time.monotonic() - started
        print(f"\nmeasurement -> enrolment through Kafka: {latency * 1000:.0f} ms")
        assert active[0]["kitchen_id"] == kitchen["id"]
        assert active[0]["category"] == "baduta_stunting"
        detail = (
            await client.get(stack.base_url("dashat") + f"/v1/enrolments/{active[0]['id']}", headers=admin())
        ).json()
        explanation = detail["explanation"]
        assert explanation["source"] == "automatic"
        assert explanation["rule_id"] and explanation["rule_version"]
        assert explanation["trigger_event_id"]

        corrected = {
            "measured_on": measurement["measured_on"],
            "lenhei_cm": 76.0,
            "weight_kg": 8.0,
            "position": "l",
            "reason": "length misread",
        }
        r = await client.post(
            stack.base_url("registry") + f"/v1/measurements/{measurement['id']}/corrections",
            json=corrected,
            headers={**admin(), "If-Match": '"1"'},
        )
        assert r.status_code == 201, r.text

        async def withdrawn() -> list[dict[str, Any]]:
            items = await enrolments_of(client, stack, child["id"])
            return [e for e in items if e["id"] == active[0]["id"] and e["status"] != "active"]

        ended = await wait_for(withdrawn, timeout=60, what="enrolment withdrawn after the correction")
        assert ended[0]["exit_reason"] == "retracted"
    stack.assert_alive()


async def test_kb_status_change_reaches_the_uppka_member(stack: Stack) -> None:
    village, rw = fresh_village(), "001"
    async with httpx.AsyncClient(timeout=15) as client:
        family = await family_with_baduta(client, stack, village, rw)
        wife = member(family, "istri")
        kb_url = stack.base_url("registry") + f"/v1/persons/{wife['id']}/kb-status"
        r = await client.post(kb_url, json={"method": "pil", "since": "2025-01-01"}, headers=admin())
        assert r.status_code == 201, r.text
        group_body = {
            "code": unique("UPPKA-"),
            "name": "UPPKA Sejahtera",
            "register_number": unique("REG-"),
            "sk_number": "SK/1/2024",
            "sk_date": "2024-01-10",
            "founded_on": "2024-01-10",
            "village_code": village,
            "rw": rw,
            "pembina_name": "PLKB Kota Jambi",
        }
        r = await client.post(stack.base_url("uppka") + "/v1/groups", json=group_body, headers=admin())
        assert r.status_code == 201, r.text
        group = r.json()
        members_url = stack.base_url("uppka") + f"/v1/groups/{group['id']}/members"

        async def joined() -> Any:
            response = await client.post(
                members_url, json={"person_id": wife["id"], "role": "anggota"}, headers=admin()
            )
            return response.json() if response.status_code == 201 else None

        joined_member = await wait_for(joined, timeout=60, what="uppka knows the registry person")

        async def shows(method: str) -> Any:
            response = await client.get(f"{members_url}/{joined_member['id']}", headers=admin())
            body = response.json()
            return body if body.get("kb_method") == method else None

        # The join may land between the person's event and the KB event: the member then gets "pil" by sync.
        await wait_for(lambda: shows("pil"), timeout=60, what="member shows the KB status set before joining")
        r = await client.post(
            kb_url, json={"method": "implant", "since": date.today().isoformat()}, headers=admin()
        )
        assert r.status_code == 201, r.text

        updated = await wait_for(
            lambda: shows("implant"), timeout=60, what="member KB status synced from the registry"
        )
        assert updated["mkjp"] is True
    stack.assert_alive()


async def test_uppka_contribution_reaches_the_dashat_ledger(stack: Stack) -> None:
    village, rw = fresh_village(), "002"
    async with httpx.AsyncClient(timeout=15) as client:
        kitchen = await open_kitchen(client, stack, village, rw)
        group_body = {
            "code": unique("UPPKA-"),
            "name": "UPPKA Dapur",
            "register_number": unique("REG-"),
            "sk_number": "SK/2/2024",
            "sk_date": "2024-01-10",
            "founded_on": "2024-01-10",
            "village_code": village,
            "rw": rw,
            "pembina_name": "PLKB",
        }
        group = (
            await client.post(stack.base_url("uppka") + "/v1/groups", json=group_body, headers=admin())
        ).json()
        url = stack.base_url("uppka") + f"/v1/groups/{group['id']}/dashat-contributions"

        async def contributed() -> Any:
            response = await client.post(
                url, json={"kitchen_id": kitchen["id"], "kind": "cash", "amount": 750_000}, headers=admin()
            )
            return response.json() if response.status_code == 201 else None

        await wait_for(contributed, timeout=60, what="uppka knows the DASHAT kitchen")
        ledger_url = stack.base_url("dashat") + f"/v1/kitchens/{kitchen['id']}/ledger"

        async def income() -> Any:
            items = (await client.get(ledger_url, headers=admin())).json()["items"]
            return [i for i in items if i.get("source") == "uppka_contribution"]

        entries = await wait_for(income, timeout=60, what="contribution in the kitchen ledger")
        assert entries[0]["amount"] == 750_000
    stack.assert_alive()


async def test_region_scope_holds_across_services(stack: Stack) -> None:
    village, rw = fresh_village(), "004"
    jambi_city, bogor = admin("15.71"), admin("32.01")
    async with httpx.AsyncClient(timeout=15) as client:
        family = await family_with_baduta(client, stack, village, rw)
        kitchen = await open_kitchen(client, stack, village, rw)
        family_url = stack.base_url("registry") + f"/v1/families/{family['id']}"
        kitchen_url = stack.base_url("dashat") + f"/v1/kitchens/{kitchen['id']}"
        assert (await client.get(family_url, headers=jambi_city)).status_code == 200
        assert (await client.get(family_url, headers=bogor)).status_code == 404
        assert (await client.get(kitchen_url, headers=jambi_city)).status_code == 200
        assert (await client.get(kitchen_url, headers=bogor)).status_code == 404
        listed = await client.get(stack.base_url("dashat") + "/v1/kitchens", headers=bogor)
        assert all(not k["village_code"].startswith("15.") for k in listed.json()["items"])


async def test_a_consumer_and_a_relay_restarted_mid_flow_lose_nothing(stack: Stack) -> None:
    village, rw = fresh_village(), "005"
    async with httpx.AsyncClient(timeout=15) as client:
        await open_kitchen(client, stack, village, rw, capacity=50)
        stack.stop("dashat", "consumer", kill=True)
        stack.stop("registry", "relay", kill=True)
        children = []
        for _ in range(3):
            family = await family_with_baduta(client, stack, village, rw)
            child = member(family, "anak")
            await measure(client, stack, child["id"], 66.0)
            children.append(child["id"])
        stack.start("registry", "relay")
        stack.start("dashat", "consumer")

        async def all_enrolled() -> bool:
            for person_id in children:
                if not [e for e in await enrolments_of(client, stack, person_id) if e["status"] == "active"]:
                    return False
            return True

        await wait_for(all_enrolled, timeout=90, what="every child enrolled after the restarts")
        for person_id in children:
            assert len(await enrolments_of(client, stack, person_id)) == 1, "no duplicate enrolment"
    stack.assert_alive()


async def test_reporting_shows_the_flow_at_village_regency_and_province_level(stack: Stack) -> None:
    village, rw = fresh_village(), "006"
    period = date.today().strftime("%Y-%m")
    async with httpx.AsyncClient(timeout=15) as client:
        await open_kitchen(client, stack, village, rw)
        family = await family_with_baduta(client, stack, village, rw)
        child = member(family, "anak")
        await measure(client, stack, child["id"], 66.0)

        async def summary(code: str) -> dict[str, Any]:
            r = await client.get(
                stack.base_url("reporting") + f"/v1/regions/{code}/summary",
                params={"period": period},
                headers=admin(),
            )
            assert r.status_code == 200, r.text
            return dict(r.json())

        seen: list[Any] = [None]

        async def village_counts() -> Any:
            body = await summary(village)
            values = body["indicators"]
            seen[0] = wanted = (
                values.get("families_registered"),
                values.get("baduta_stunted"),
                values.get("dashat_beneficiaries"),
            )
            return body if wanted == (1, 1, 1) else None

        try:
            body = await wait_for(village_counts, timeout=90, what="village indicators in reporting")
        except pytest.fail.Exception:
            # Which of the three stayed behind says which service (registry, reporting, dashat) to look at.
            enrolled = await enrolments_of(client, stack, child["id"])
            pytest.fail(
                f"village {village}: (families, stunted, beneficiaries) = {seen[0]}; enrolments {enrolled}"
            )
        assert body["freshness"], "every response says how fresh it is"
        for code in (village[:5], village[:2]):
            values = (await summary(code))["indicators"]
            assert values["baduta_stunted"] >= 1
            assert values["families_registered"] >= 1
        outside = await client.get(
            stack.base_url("reporting") + f"/v1/regions/{village}/summary",
            params={"period": period},
            headers=admin("32.01"),
        )
        assert outside.status_code == 404
    stack.assert_alive()
