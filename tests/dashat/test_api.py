"""The HTTP API: kitchens, enrolments, waitlist, foods, menus, meals, ledger, summary; every bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, person, stunting
from tests.dashat.helpers import OTHER, RO, RW

pytestmark = pytest.mark.integration


def _problem(r: Any, status: int, rule: str | None = None, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if rule or field:
        errors = r.json().get("errors", [])
        assert any(
            (rule is None or e["rule"] == rule) and (field is None or e["field"] == field) for e in errors
        ), errors


async def _kitchen(client: Any, village: str, **kw: Any) -> dict[str, Any]:
    body = {
        "name": "Dapur Sehat Melati",
        "village_code": village,
        "management_model": "combined",
        "capacity_per_day": 5,
        "opened_on": (business_today() - timedelta(days=40)).isoformat(),
        **kw,
    }
    r = await client.post("/v1/kitchens", json=body, headers=RW)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_kitchen_lifecycle_etag_and_region(client: Any) -> None:
    village = fresh_village()
    k = await _kitchen(client, village, rws=["1", "02"])
    assert k["rws"] == ["001", "002"] and k["status"] == "active"
    r = await client.get(f"/v1/kitchens/{k['id']}", headers=RO)
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    _problem(await client.get(f"/v1/kitchens/{k['id']}", headers=OTHER), 404)
    listed = await client.get("/v1/kitchens", params={"village_code": village}, headers=RO)
    assert [x["id"] for x in listed.json()["items"]] == [k["id"]]
    assert (await client.get("/v1/kitchens", params={"village_code": village}, headers=OTHER)).json()[
        "items"
    ] == []
    # The same filters as the other lists: `region` takes any prefix; `village_code` only a village; an
    # unknown parameter is refused instead of answering an unfiltered page.
    regency = village.rsplit(".", 2)[0]
    inside = await client.get("/v1/kitchens", params={"region": regency, "limit": 200}, headers=RO)
    assert k["id"] in [x["id"] for x in inside.json()["items"]]
    assert all(x["village_code"].startswith(regency + ".") for x in inside.json()["items"])
    _problem(
        await client.get("/v1/kitchens", params={"village_code": regency}, headers=RO),
        422,
        rule="region.not_village",
        field="query.village_code",
    )
    # The kitchen for a village and RW: those listing the RW and those serving the whole village.
    whole = await _kitchen(client, village)
    for rw, expected in (
        ("2", {k["id"], whole["id"]}),
        ("002", {k["id"], whole["id"]}),
        ("5", {whole["id"]}),
    ):
        serving = await client.get("/v1/kitchens", params={"village_code": village, "rw": rw}, headers=RO)
        assert {x["id"] for x in serving.json()["items"]} == expected, rw
    _problem(await client.get("/v1/kitchens", params={"rw": "2"}, headers=RO), 422, rule="rw.needs_village")
    _problem(
        await client.get("/v1/kitchens", params={"villagecode": village}, headers=RO),
        422,
        rule="query.unknown",
        field="query.villagecode",
    )
    _problem(await client.patch(f"/v1/kitchens/{k['id']}", json={"capacity_per_day": 9}, headers=RW), 428)
    _problem(
        await client.patch(
            f"/v1/kitchens/{k['id']}", json={"capacity_per_day": 9}, headers={**RW, "If-Match": '"7"'}
        ),
        412,
    )
    r = await client.patch(
        f"/v1/kitchens/{k['id']}", json={"capacity_per_day": 9}, headers={**RW, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.json()["capacity_per_day"] == 9 and r.headers["etag"] == '"2"'
    _problem(
        await client.patch(
            f"/v1/kitchens/{k['id']}",
            json={"village_code": "33.01.01.2001"},
            headers={**RW, "If-Match": '"2"'},
        ),
        422,
        field="body.village_code",
    )
    r = await client.post(
        f"/v1/kitchens/{k['id']}/close",
        json={"closed_on": business_today().isoformat()},
        headers={**RW, "If-Match": '"2"'},
    )
    assert r.status_code == 200 and r.json()["status"] == "closed"


@pytest.mark.parametrize(
    ("patch", "status", "rule", "field"),
    [
        ({"village_code": "33.01"}, 422, "region.not_village", "body.village_code"),
        ({"village_code": "99.99.99.9999"}, 422, "region.unknown", "body.village_code"),
        ({"village_code": "abc"}, 422, "region.format", "body.village_code"),
        ({"village_code": "15.71.01.1001"}, 422, "region.outside_scope", "body.village_code"),
        ({"capacity_per_day": -1}, 422, None, "body.capacity_per_day"),
        ({"management_model": "private"}, 422, None, "body.management_model"),
        ({"rws": ["1", "001"]}, 422, "kitchen.rws_duplicate", "body.rws"),
        (
            {"operator_group_id": str(uuid.uuid4())},
            422,
            "kitchen.operator_group_unknown",
            "body.operator_group_id",
        ),
        ({"colour": "red"}, 422, None, "body.colour"),
    ],
)
async def test_kitchen_bad_input(
    client: Any, patch: dict[str, Any], status: int, rule: str | None, field: str
) -> None:
    body = {
        "name": "Dapur",
        "village_code": fresh_village(),
        "management_model": "social",
        "capacity_per_day": 5,
        "opened_on": business_today().isoformat(),
        **patch,
    }
    _problem(await client.post("/v1/kitchens", json=body, headers=RW), status, rule, field)


async def test_scopes(client: Any) -> None:
    _problem(await client.get("/v1/kitchens"), 401)
    body = {
        "name": "D",
        "village_code": fresh_village(),
        "management_model": "social",
        "capacity_per_day": 1,
        "opened_on": business_today().isoformat(),
    }
    _problem(await client.post("/v1/kitchens", json=body, headers=RO), 403)


async def test_manual_enrolment_checks(client: Any, session: AsyncSession) -> None:
    village = fresh_village()
    k = await _kitchen(client, village, rws=["001"])
    mother, man, far, baby, old_child, fid = (uuid.uuid4() for _ in range(6))
    await deliver(session, envelope(person(mother, fid, village, sex="P")))
    await deliver(session, envelope(person(man, fid, village, sex="L")))
    await deliver(session, envelope(person(far, fid, village, sex="P", rw="007")))
    await deliver(session, envelope(person(baby, fid, village, sex="L", birth_date=months_ago(5))))
    await deliver(session, envelope(person(old_child, fid, village, sex="L", birth_date=months_ago(30))))

    def body(pid: uuid.UUID, category: str) -> dict[str, Any]:
        return {"person_id": str(pid), "kitchen_id": k["id"], "category": category}

    _problem(
        await client.post("/v1/enrolments", json=body(uuid.uuid4(), "ibu_hamil"), headers=RW),
        422,
        "person.unknown",
        "body.person_id",
    )
    _problem(
        await client.post("/v1/enrolments", json=body(man, "ibu_hamil"), headers=RW),
        422,
        "category.ibu_hamil.sex",
        "body.category",
    )
    _problem(
        await client.post("/v1/enrolments", json=body(far, "ibu_hamil"), headers=RW),
        422,
        "enrolment.outside_kitchen_area",
    )
    _problem(
        await client.post("/v1/enrolments", json=body(old_child, "baduta_stunting"), headers=RW),
        422,
        "category.baduta_stunting.age",
    )
    _problem(
        await client.post("/v1/enrolments", json=body(mother, "ibu_hamil"), headers=OTHER),
        422,
        "kitchen.unknown",
    )
    _problem(
        await client.post("/v1/enrolments", json={**body(mother, "ibu_hamil"), "category": "x"}, headers=RW),
        422,
        None,
        "body.category",
    )
    r = await client.post("/v1/enrolments", json=body(mother, "ibu_hamil"), headers=RW)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["explanation"]["source"] == "manual" and created["explanation"]["enrolled_by"] == "tester"
    _problem(await client.post("/v1/enrolments", json=body(mother, "ibu_hamil"), headers=RW), 409)
    r = await client.post("/v1/enrolments", json=body(baby, "baduta_stunting"), headers=RW)
    assert r.status_code == 201
    got = await client.get(f"/v1/enrolments/{created['id']}", headers=RO)
    assert got.status_code == 200 and got.json()["category"] == "ibu_hamil"
    _problem(await client.get(f"/v1/enrolments/{created['id']}", headers=OTHER), 404)
    listed = await client.get(
        "/v1/enrolments", params={"kitchen_id": k["id"], "category": "ibu_hamil"}, headers=RO
    )
    assert [x["id"] for x in listed.json()["items"]] == [created["id"]]
    assert (await client.get("/v1/enrolments", params={"kitchen_id": k["id"]}, headers=OTHER)).json()[
        "items"
    ] == []
    # Keyset pagination walks every row exactly once.
    page1 = (
        await client.get("/v1/enrolments", params={"kitchen_id": k["id"], "limit": 1}, headers=RO)
    ).json()
    page2 = (
        await client.get(
            "/v1/enrolments",
            params={"kitchen_id": k["id"], "limit": 1, "cursor": page1["next_cursor"]},
            headers=RO,
        )
    ).json()
    assert len({page1["items"][0]["id"], page2["items"][0]["id"]}) == 2
    # Exit with If-Match.
    _problem(
        await client.post(f"/v1/enrolments/{created['id']}/exit", json={"reason": "refused"}, headers=RW), 428
    )
    r = await client.post(
        f"/v1/enrolments/{created['id']}/exit", json={"reason": "refused"}, headers={**RW, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and (r.json()["status"], r.json()["reason"]) == ("exited", "refused")
    # The names of the exit body and of dashat.beneficiary.exited; the old names kept for one version.
    exited = r.json()
    assert exited["exited_on"] == exited["ended_on"] and exited["exited_on"] is not None
    assert exited["exit_reason"] == "refused" and exited["causing_event_id"] is None
    props = (await client.get("/openapi.json")).json()["components"]["schemas"]["EnrolmentRead"]["properties"]
    assert all(props[old]["deprecated"] for old in ("exit_reason", "ended_on", "exit_causing_event_id"))


async def test_automatic_enrolment_is_explained_and_waitlist_visible(
    client: Any, session: AsyncSession
) -> None:
    village = fresh_village()
    child, fid = uuid.uuid4(), uuid.uuid4()
    env = envelope(stunting(child, fid, village))
    await deliver(session, env)
    wl = (await client.get("/v1/waitlist", params={"region": village}, headers=RO)).json()["items"]
    assert [(w["person_id"], w["reason"], w["trigger_event_id"]) for w in wl] == [
        (str(child), "no_kitchen", env.id)
    ]
    assert (await client.get("/v1/waitlist", params={"region": village}, headers=OTHER)).json()["items"] == []
    await _kitchen(client, village)
    assert (await client.get("/v1/waitlist", params={"region": village}, headers=RO)).json()["items"] == []
    [e] = (await client.get("/v1/enrolments", params={"person_id": str(child)}, headers=RO)).json()["items"]
    detail = (await client.get(f"/v1/enrolments/{e['id']}", headers=RO)).json()
    assert detail["explanation"]["rule_id"] == "baduta_stunting_detected"
    assert detail["explanation"]["trigger_event_id"] == env.id
    assert detail["explanation"]["facts"]["haz"] == -2.6 and detail["latency_ms"] >= 0
    outcome = (await client.get(f"/v1/enrolments/{e['id']}/outcome", headers=RO)).json()
    assert outcome["baseline_haz"] == -2.6 and outcome["points"] == []


async def test_foods_and_menus(client: Any) -> None:
    foods = (await client.get("/v1/foods", params={"limit": 200}, headers=RO)).json()["items"]
    assert len(foods) >= 30 and all(
        "TKPI" in f["source"] or "DKBM" in f["source"] for f in foods if f["seeded"]
    )
    by_code = {f["code"]: f for f in foods}
    new = {
        "code": f"ikan_gabus_{uuid.uuid4().hex[:6]}",
        "name": "Ikan gabus, segar",
        "food_group": "ikan",
        "energy_kcal": 80,
        "protein_g": 16,
        "fat_g": 1,
        "carbohydrate_g": 0,
        "iron_mg": 0.5,
        "source": "local lab",
    }
    r = await client.post("/v1/foods", json=new, headers=RW)
    assert r.status_code == 201 and r.json()["seeded"] is False
    _problem(await client.post("/v1/foods", json=new, headers=RW), 409)
    _problem(
        await client.post("/v1/foods", json={**new, "code": "x_y", "iron_mg": -1}, headers=RW),
        422,
        None,
        "body.iron_mg",
    )
    menu: dict[str, Any] = {
        "name": "Nasi telur bayam",
        "category": "baduta_stunting",
        "items": [
            {"food_id": by_code["nasi_putih"]["id"], "grams": 100},
            {"food_id": by_code["telur_ayam_ras"]["id"], "grams": 50},
        ],
    }
    r = await client.post("/v1/menus", json=menu, headers=RW)
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["totals"]["energy_kcal"] == 257.0 and {w["nutrient"] for w in m["warnings"]} == {
        "energy_kcal",
        "iron_mg",
    }
    assert (await client.get(f"/v1/menus/{m['id']}", headers=RO)).json()["totals"] == m["totals"]
    bad = {**menu, "items": [*menu["items"], {"food_id": str(uuid.uuid4()), "grams": 10}]}
    _problem(
        await client.post("/v1/menus", json=bad, headers=RW), 422, "menu.food_unknown", "body.items.2.food_id"
    )
    dup = {**menu, "items": [menu["items"][0], menu["items"][0]]}
    _problem(await client.post("/v1/menus", json=dup, headers=RW), 422, "menu.food_duplicate")
    _problem(
        await client.post(
            "/v1/menus", json={**menu, "items": [{**menu["items"][0], "grams": 0}]}, headers=RW
        ),
        422,
    )
    k = await _kitchen(client, fresh_village())
    month = business_today().strftime("%Y-%m")
    plan = {
        "slots": [
            {"day": 1, "slot": "lunch", "menu_id": m["id"]},
            {"day": 2, "slot": "lunch", "menu_id": m["id"]},
        ]
    }
    r = await client.put(f"/v1/kitchens/{k['id']}/rotation/{month}", json=plan, headers=RW)
    assert r.status_code == 200 and len(r.json()["slots"]) == 2
    assert (
        len((await client.get(f"/v1/kitchens/{k['id']}/rotation/{month}", headers=RO)).json()["slots"]) == 2
    )
    _problem(
        await client.put(f"/v1/kitchens/{k['id']}/rotation/2026-13", json=plan, headers=RW),
        422,
        "rotation.month",
    )
    _problem(await client.put(f"/v1/kitchens/{k['id']}/rotation/{month}", json=plan, headers=OTHER), 404)


async def test_meals_rules(client: Any, session: AsyncSession) -> None:
    village = fresh_village()
    k = await _kitchen(client, village, capacity_per_day=3)
    a, b, outsider, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for pid in (a, b):
        await deliver(session, envelope(person(pid, fid, village)))
        r = await client.post(
            "/v1/enrolments",
            json={
                "person_id": str(pid),
                "kitchen_id": k["id"],
                "category": "ibu_hamil",
                "start_date": (business_today() - timedelta(days=5)).isoformat(),
            },
            headers=RW,
        )
        assert r.status_code == 201, r.text
    url = f"/v1/kitchens/{k['id']}/meals"
    yesterday = (business_today() - timedelta(days=1)).isoformat()
    batch = {
        "served_on": yesterday,
        "slot": "lunch",
        "portions_cooked": 3,
        "portions_delivered": 2,
        "portions_consumed": 2,
        "served_person_ids": [str(a)],
        "absent_person_ids": [str(b)],
    }
    r = await client.post(url, json=batch, headers=RW)
    assert r.status_code == 201, r.text
    assert r.json()["by_category"] == {"ibu_hamil": 1} and r.json()["beneficiaries_served"] == 1
    again = await client.post(url, json={**batch, "served_person_ids": [str(a)]}, headers=RW)
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"] and again.json()["replayed"]
    _problem(await client.post(url, json={**batch, "portions_consumed": 1}, headers=RW), 409)
    tomorrow = (business_today() + timedelta(days=1)).isoformat()
    _problem(
        await client.post(url, json={**batch, "served_on": tomorrow}, headers=RW),
        422,
        "meals.future_date",
        "body.served_on",
    )
    over = {**batch, "served_on": business_today().isoformat(), "portions_cooked": 4}
    _problem(
        await client.post(url, json=over, headers=RW), 422, "meals.above_capacity", "body.portions_cooked"
    )
    r = await client.post(url, json={**over, "override": True}, headers=RW)
    assert r.status_code == 201 and r.json()["capacity_override"] is True
    stranger = {**batch, "slot": "dinner", "served_person_ids": [str(outsider)], "absent_person_ids": []}
    _problem(
        await client.post(url, json=stranger, headers=RW),
        422,
        "meals.not_enrolled",
        "body.served_person_ids.0",
    )
    _problem(
        await client.post(url, json={**batch, "slot": "snack", "portions_delivered": 4}, headers=RW),
        422,
        "meals.delivered_gt_cooked",
    )
    _problem(
        await client.post(url, json={**batch, "slot": "snack", "absent_person_ids": [str(a)]}, headers=RW),
        422,
        "meals.served_and_absent",
    )
    _problem(await client.post(url, json=batch, headers=OTHER), 404)
    listed = (await client.get(url, headers=RO)).json()["items"]
    assert len(listed) == 2


async def test_ledger_and_summary(client: Any) -> None:
    k = await _kitchen(client, fresh_village())
    url = f"/v1/kitchens/{k['id']}/ledger"
    today = business_today().isoformat()
    r = await client.post(
        url,
        json={"kind": "income", "source": "dana_desa", "amount": 3_000_000, "entry_on": today},
        headers=RW,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        url,
        json={"kind": "expense", "category": "ingredients", "amount": 600_000, "entry_on": today},
        headers=RW,
    )
    assert r.status_code == 201
    _problem(
        await client.post(
            url, json={"kind": "expense", "category": "fuel", "amount": -5, "entry_on": today}, headers=RW
        ),
        422,
        None,
        "body.amount",
    )
    _problem(
        await client.post(
            url, json={"kind": "expense", "category": "fuel", "amount": 12.5, "entry_on": today}, headers=RW
        ),
        422,
        None,
        "body.amount",
    )
    _problem(
        await client.post(
            url,
            json={"kind": "expense", "category": "fuel", "amount": 9_000_000, "entry_on": today},
            headers=RW,
        ),
        422,
        "ledger.balance_negative",
    )
    _problem(
        await client.post(url, json={"kind": "income", "amount": 5, "entry_on": today}, headers=RW),
        422,
        "ledger.income_source",
    )
    _problem(
        await client.post(
            url,
            json={"kind": "income", "source": "uppka_contribution", "amount": 5, "entry_on": today},
            headers=RW,
        ),
        422,
        None,
        "body.source",
    )
    s = (await client.get(f"/v1/kitchens/{k['id']}/summary", headers=RO)).json()
    assert (s["balance"], s["income_total"], s["expense_total"]) == (2_400_000, 3_000_000, 600_000)
    assert s["burn_per_day_last_30"] == 20_000.0 and s["runway_days"] == 120 and s["cost_per_portion"] is None
    assert s["income_by_source"] == {"dana_desa": 3_000_000}
    assert len((await client.get(url, headers=RO)).json()["items"]) == 2
    _problem(await client.get(f"/v1/kitchens/{k['id']}/summary", headers=OTHER), 404)
