"""Businesses, monthly reports, DASHAT contributions, activities and targets through the API."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from uppka.reports.domain import period_of

from shared.clock import business_today
from shared.events.dashat import KitchenClosed
from shared.testing.plugin import bearer
from tests.uppka.conftest import (
    FAR_VILLAGE,
    VILLAGE,
    apply,
    env,
    make_group,
    make_member,
    outbox_types,
    rule_of,
    seed_kitchen,
)

pytestmark = pytest.mark.integration

TODAY = business_today()
THIS_MONTH = period_of(TODAY)
FIGURES = {
    "omzet": 12_500_000,
    "costs": 9_000_000,
    "capital_balance": 4_000_000,
    "members_present": 18,
    "active_members": 20,
    "new_kb_acceptors": 2,
    "mkjp_switchers": 1,
}


def report(period: str = THIS_MONTH, **kw: object) -> dict[str, object]:
    return {"period": period, **FIGURES, **kw}


# --- businesses --------------------------------------------------------------------------------------------


async def test_business_with_products_and_capital(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    body = {
        "name": "Keripik Pisang Sipin",
        "sector": "food_processing",
        "started_on": "2023-05-01",
        "supplies_dashat": True,
        "products": [
            {
                "name": "Keripik pisang",
                "unit": "bungkus 250 g",
                "price": 15_000,
                "keunggulan": "tanpa pengawet",
                "licences": {"nib": "9120001234567", "pirt": "2061571010123-27", "halal": "ID15110000123"},
            }
        ],
        "capital": [{"source": "kur", "amount": 10_000_000}, {"source": "swadaya", "amount": 2_000_000}],
    }
    r = await client.post(f"/v1/groups/{g['id']}/businesses", json=body)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["capital_total"] == 12_000_000 and b["products"][0]["licences"]["pirt"] == "2061571010123-27"
    assert b["products"][0]["licences"]["bpom"] is None
    url = f"/v1/groups/{g['id']}/businesses/{b['id']}"
    r = await client.post(url + "/products", json={"name": "Sale pisang", "unit": "kg", "price": 60_000})
    assert r.status_code == 201
    r = await client.patch(url, json={"supplies_dashat": False}, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["supplies_dashat"] is False and len(r.json()["products"]) == 2
    listed = (await client.get(f"/v1/groups/{g['id']}/businesses")).json()["items"]
    assert [x["id"] for x in listed] == [b["id"]]
    assert "uppka.business.registered.v1" in await outbox_types(session, g["id"])


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"sector": "mining"}, "body.sector", "literal_error"),
        (
            {"products": [{"name": "x", "unit": "kg", "price": -5}]},
            "body.products.0.price",
            "greater_than_equal",
        ),
        # JSON Schema's integer admits 1500.0 (a zero fraction), so only a fraction is refused.
        (
            {"products": [{"name": "x", "unit": "kg", "price": 1.5}]},
            "body.products.0.price",
            "int_from_float",
        ),
        ({"products": [{"name": "x", "unit": "kg", "price": "1000"}]}, "body.products.0.price", "int_type"),
        ({"capital": [{"source": "kur", "amount": -1}]}, "body.capital.0.amount", "greater_than_equal"),
        ({"started_on": "2099-01-01"}, "body.started_on", "business.in_future"),
    ],
)
async def test_business_bad_input(
    client: httpx.AsyncClient, patch: dict[str, object], field: str, rule: str
) -> None:
    g = await make_group(client)
    r = await client.post(
        f"/v1/groups/{g['id']}/businesses", json={"name": "Usaha", "sector": "trade", **patch}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field and rule_of(r) == rule
    assert (await client.get(f"/v1/groups/{g['id']}/businesses")).json()["items"] == []


# --- reports -----------------------------------------------------------------------------------------------


async def test_report_submitted_profit_derived_and_second_is_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=report())
    assert r.status_code == 201, r.text
    rep = r.json()
    assert rep["profit"] == 3_500_000 and rep["late"] is False and rep["amendment_no"] == 0
    assert (
        rep["submitted_on"] == TODAY.isoformat()
        or abs((date.fromisoformat(rep["submitted_on"]) - TODAY).days) <= 1
    )
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=report())
    assert r.status_code == 409 and rule_of(r) == "report.duplicate_period"
    assert (await outbox_types(session, g["id"]))[-1] == "uppka.report.submitted.v1"


async def test_old_period_is_late_and_loss_is_negative_profit(client: httpx.AsyncClient) -> None:
    g = await make_group(client)
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=report("2024-01", omzet=100, costs=400))
    assert r.status_code == 201 and r.json()["late"] is True and r.json()["profit"] == -300


async def test_amendment_keeps_history(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    rep = (await client.post(f"/v1/groups/{g['id']}/reports", json=report())).json()
    url = f"/v1/groups/{g['id']}/reports/{rep['id']}/amendments"
    amended = {**FIGURES, "omzet": 13_000_000, "reason": "nota terlambat"}
    assert (await client.post(url, json=amended)).status_code == 428
    r = await client.post(url, json=amended, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["amendment_no"] == 1 and out["profit"] == 4_000_000 and out["late"] is False
    assert [(v["amendment_no"], v["omzet"]) for v in out["revisions"]] == [(0, 12_500_000), (1, 13_000_000)]
    assert (await client.post(url, json=amended, headers={"If-Match": '"1"'})).status_code == 412
    assert (await outbox_types(session, g["id"]))[-1] == "uppka.report.amended.v1"


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        (report(period_of(TODAY.replace(day=1) + timedelta(days=32))), "body.period", "report.future_period"),
        (report("2024-13"), "body.period", "string_pattern_mismatch"),
        (report(omzet=-1), "body.omzet", "greater_than_equal"),
        (report(costs=1000.5), "body.costs", "int_from_float"),
        (report(members_present=21), "body.members_present", "report.present_exceeds_active"),
        (report(profit=5), "body.profit", "extra_forbidden"),
    ],
)
async def test_report_bad_input(
    client: httpx.AsyncClient, body: dict[str, object], field: str, rule: str
) -> None:
    g = await make_group(client)
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field and rule_of(r) == rule
    assert (await client.get(f"/v1/groups/{g['id']}/reports")).json()["items"] == []


async def test_a_whole_number_written_with_a_zero_fraction_is_the_integer(client: httpx.AsyncClient) -> None:
    g = await make_group(client)
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=report(omzet=1000.0))
    assert r.status_code == 201, r.text
    assert r.json()["omzet"] == 1000 and isinstance(r.json()["omzet"], int)


async def test_reports_list_by_period_range(client: httpx.AsyncClient) -> None:
    g = await make_group(client)
    for p in ("2024-01", "2024-02", "2024-03"):
        assert (await client.post(f"/v1/groups/{g['id']}/reports", json=report(p))).status_code == 201
    got = (await client.get(f"/v1/groups/{g['id']}/reports", params={"from": "2024-02", "limit": 1})).json()
    assert [x["period"] for x in got["items"]] == ["2024-02"] and got["next_cursor"]
    nxt = (
        await client.get(
            f"/v1/groups/{g['id']}/reports",
            params={"from": "2024-02", "limit": 1, "cursor": got["next_cursor"]},
        )
    ).json()
    assert [x["period"] for x in nxt["items"]] == ["2024-03"]


# --- DASHAT contributions ----------------------------------------------------------------------------------


async def test_contributions_with_report_and_alone(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    kitchen = await seed_kitchen(session)
    body = report(
        dashat_contributions=[
            {"kitchen_id": str(kitchen), "kind": "cash", "amount": 500_000},
            {"kitchen_id": str(kitchen), "kind": "in_kind", "amount": 150_000, "goods": "telur 10 kg"},
        ]
    )
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=body)
    assert r.status_code == 201, r.text
    assert sorted(c["kind"] for c in r.json()["dashat_contributions"]) == ["cash", "in_kind"]
    r = await client.post(
        f"/v1/groups/{g['id']}/dashat-contributions",
        json={"kitchen_id": str(kitchen), "kind": "cash", "amount": 1},
    )
    assert r.status_code == 201 and r.json()["report_id"] is None
    assert (await outbox_types(session, g["id"])).count("uppka.dashat_contribution.made.v1") == 3
    assert len((await client.get(f"/v1/groups/{g['id']}/dashat-contributions")).json()["items"]) == 3


async def test_contribution_bad_input(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    url = f"/v1/groups/{g['id']}/dashat-contributions"
    r = await client.post(url, json={"kitchen_id": str(uuid.uuid4()), "kind": "cash", "amount": 1000})
    assert r.status_code == 422 and rule_of(r) == "contribution.kitchen_unknown"
    far = await seed_kitchen(session, village=FAR_VILLAGE)
    r = await client.post(url, json={"kitchen_id": str(far), "kind": "cash", "amount": 1000})
    assert r.status_code == 422 and rule_of(r) == "contribution.kitchen_unknown"
    kitchen = await seed_kitchen(session)
    r = await client.post(url, json={"kitchen_id": str(kitchen), "kind": "in_kind", "amount": 1000})
    assert r.status_code == 422 and rule_of(r) == "contribution.goods_required"
    r = await client.post(url, json={"kitchen_id": str(kitchen), "kind": "cash", "amount": -1})
    assert r.status_code == 422 and rule_of(r) == "greater_than_equal"
    await apply(
        session, env(KitchenClosed(kitchen_id=kitchen, village_code=VILLAGE, closed_on=TODAY), kitchen)
    )
    r = await client.post(url, json={"kitchen_id": str(kitchen), "kind": "cash", "amount": 1000})
    assert r.status_code == 422 and rule_of(r) == "contribution.kitchen_closed"
    # Inside a report, an unknown kitchen refuses the whole report: nothing partial is written.
    bad = report(dashat_contributions=[{"kitchen_id": str(uuid.uuid4()), "kind": "cash", "amount": 5}])
    r = await client.post(f"/v1/groups/{g['id']}/reports", json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.dashat_contributions.0.kitchen_id"
    assert (await client.get(f"/v1/groups/{g['id']}/reports")).json()["items"] == []
    assert "uppka.report.submitted.v1" not in await outbox_types(session, g["id"])


# --- activities --------------------------------------------------------------------------------------------


async def test_activity_with_attendance(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    a = await make_member(client, session, g["id"])
    b = await make_member(client, session, g["id"])
    body = {
        "activity_type": "pek_stunting",
        "held_on": TODAY.isoformat(),
        "facilitator": "PLKB Kota Baru",
        "attendee_member_ids": [a["id"], b["id"]],
    }
    r = await client.post(f"/v1/groups/{g['id']}/activities", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["attendance"] == 2
    got = (await client.get(f"/v1/groups/{g['id']}/activities", params={"period": THIS_MONTH})).json()[
        "items"
    ]
    assert sorted(got[0]["attendee_member_ids"]) == sorted([a["id"], b["id"]])
    assert (await outbox_types(session, g["id"]))[-1] == "uppka.activity.held.v1"


async def test_activity_bad_input(client: httpx.AsyncClient, session: AsyncSession) -> None:
    g = await make_group(client)
    other = await make_group(client)
    stranger = await make_member(client, session, other["id"])
    m = await make_member(client, session, g["id"])
    url = f"/v1/groups/{g['id']}/activities"
    base = {"activity_type": "socialisation", "held_on": TODAY.isoformat()}
    cases = [
        ({**base, "activity_type": "party"}, "literal_error"),
        ({**base, "held_on": "2099-01-01"}, "activity.in_future"),
        ({**base, "attendee_member_ids": [m["id"], m["id"]]}, "activity.duplicate_attendee"),
        ({**base, "attendee_member_ids": [stranger["id"]]}, "activity.attendee_not_member"),
        ({**base, "held_on": "2020-01-01", "attendee_member_ids": [m["id"]]}, "activity.attendee_not_member"),
    ]
    for body, rule in cases:
        r = await client.post(url, json=body)
        assert r.status_code == 422 and rule_of(r) == rule, (body, r.text)
    assert (await client.get(url)).json()["items"] == []


# --- targets -----------------------------------------------------------------------------------------------


async def test_targets_2022_national(client: httpx.AsyncClient, session: AsyncSession) -> None:
    from shared.regions import load_regions

    national = bearer("uppka:read uppka:write")
    provinces = [r.code for r in load_regions().children(None)][:33]
    total = 1542
    per, extra = divmod(total, 33)
    ids = {}
    for i, code in enumerate(provinces):
        r = await client.post(
            "/v1/targets",
            json={"year": 2022, "province_code": code, "target_groups": per + (1 if i < extra else 0)},
            headers=national,
        )
        assert r.status_code == 201, r.text
        ids[code] = r.json()["id"]
    summary = (await client.get("/v1/targets/summary", params={"year": 2022}, headers=national)).json()
    assert (summary["provinces"], summary["target_groups"]) == (33, 1542)
    # Progress: a Kampung KB group founded in 2022 in Jambi (15) counts; one founded in 2023 and one outside a
    # Kampung KB do not (the target is for Kampung KB groups).
    before = (await client.get(f"/v1/targets/{ids['15']}", headers=national)).json()["achieved_groups"]
    kkb = str(uuid.uuid4())
    await make_group(client, founded_on="2022-03-01", sk_date="2022-03-01", kampung_kb_id=kkb)
    await make_group(client, founded_on="2022-03-01", sk_date="2022-03-01")
    await make_group(client, founded_on="2023-03-01", kampung_kb_id=kkb)
    jambi = (await client.get(f"/v1/targets/{ids['15']}", headers=national)).json()
    assert jambi["achieved_groups"] == before + 1 and jambi["progress_pct"] is not None
    r = await client.post(
        "/v1/targets", json={"year": 2022, "province_code": "15", "target_groups": 3}, headers=national
    )
    assert r.status_code == 409 and rule_of(r) == "target.duplicate"
    r = await client.patch(
        f"/v1/targets/{ids['15']}", json={"target_groups": 50}, headers={**national, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.json()["target_groups"] == 50 and r.headers["ETag"] == '"2"'
    assert await outbox_types(session, ids["15"]) == ["uppka.target.set.v1", "uppka.target.set.v1"]
    # A regency user sees no province targets; a province user only their own.
    assert (await client.get(f"/v1/targets/{ids['15']}")).status_code == 404
    assert (await client.get("/v1/targets", params={"year": 2022})).json() == []
    jambi_user = bearer("uppka:read", region="15")
    assert [t["province_code"] for t in (await client.get("/v1/targets", headers=jambi_user)).json()] == [
        "15"
    ]


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"year": 2022, "province_code": "15.71", "target_groups": 1}, "region.unknown_province"),
        ({"year": 2022, "province_code": "99", "target_groups": 1}, "region.unknown_province"),
        ({"year": 2022, "province_code": "15", "target_groups": -1}, "greater_than_equal"),
        ({"year": 1900, "province_code": "15", "target_groups": 1}, "greater_than_equal"),
    ],
)
async def test_target_bad_input(client: httpx.AsyncClient, body: dict[str, object], rule: str) -> None:
    r = await client.post("/v1/targets", json=body, headers=bearer("uppka:write uppka:read"))
    assert r.status_code == 422 and rule_of(r) == rule
