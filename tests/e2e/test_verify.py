"""`kencana reporting verify` on a small programme built through the public APIs (the four services running).

The programme: six PUS couples (an implant user, a pill user, a wife who wants a child later and then starts the
pill, recorded only after she joined an UPPKA group, one who wants no more children in a family without proper
water, and two wives using nothing whose husbands use MOP and condoms: KB couples, counted per couple), a pill user
who completes 50 years within the running month (out of PUS in it), two baduta measured (one stunted, enrolled by
DASHAT and fed), an UPPKA group founded before the reporting window with two PUS members, both using KB (one by the
late change). Reporting must show the hand-computed figures; then verify must find every main figure equal for the
month, the quarter and the year, and must catch a figure changed behind reporting's back.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry.identity.domain import make_kk
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.ages import add_months
from shared.clock import business_today
from shared.testing.plugin import unique, wait_for
from tests.e2e.stack import Stack
from tests.e2e.test_flows import (
    DISTRICT,
    _person,
    _serials,
    admin,
    fresh_village,
    measure,
    member,
    open_kitchen,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

RW = "001"
# The day reporting files this run's events under (it dates events in UTC), which is also the machine's date.
T = date.today()
# The programme's date (WIB, Kota Jambi's zone), by which the registry ages people and its sweep runs; from 17:00
# UTC it is already the day after T.
TODAY = business_today()
# The day a wife of the programme completes 50 years: tomorrow when it falls in this month, else today. Either way
# she leaves PUS within the running month, which reporting counts as at its last day.
FIFTY_ON = TODAY + timedelta(days=1) if (TODAY + timedelta(days=1)).month == TODAY.month else TODAY


def run_verify(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    urls = [f"--{svc}-url={stack.base_url(svc)}" for svc in ("registry", "uppka", "dashat", "reporting")]
    return subprocess.run(
        [str(Path(sys.executable).parent / "kencana"), "reporting", "verify", *urls, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


async def _family(
    client: httpx.AsyncClient,
    stack: Stack,
    village: str,
    wife_birth: date,
    *,
    child_days: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    members = [_person("kepala_keluarga", date(1990, 2, 3), "L"), _person("istri", wife_birth, "P")]
    if child_days is not None:
        members.append(_person("anak", T - timedelta(days=child_days), "P", nik=False))
    body = {
        "kk_number": make_kk(DISTRICT, date(2016, 4, 1), next(_serials) % 9999 + 1),
        "village_code": village,
        "rw": RW,
        "rt": "001",
        "members": members,
        **extra,
    }
    r = await client.post(stack.base_url("registry") + "/v1/families", json=body, headers=admin())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _kb(
    client: httpx.AsyncClient, stack: Stack, person_id: str, method: str | None, reason: str | None = None
) -> None:
    body: dict[str, Any] = {"method": method, "since": (T - timedelta(days=100)).isoformat()}
    if reason:
        body["reason_non_use"] = reason
    r = await client.post(
        stack.base_url("registry") + f"/v1/persons/{person_id}/kb-status", json=body, headers=admin()
    )
    assert r.status_code == 201, r.text


async def _programme(client: httpx.AsyncClient, stack: Stack, village: str) -> None:
    kitchen = await open_kitchen(client, stack, village, RW)
    implant = await _family(client, stack, village, date(1996, 6, 7), child_days=400)
    await _kb(client, stack, member(implant, "istri")["id"], "implant")
    pill = await _family(client, stack, village, date(1997, 3, 4), child_days=400)
    await _kb(client, stack, member(pill, "istri")["id"], "pil")
    later = await _family(client, stack, village, date(1998, 5, 6))
    await _kb(client, stack, member(later, "istri")["id"], None, "iat")
    no_more = await _family(client, stack, village, date(1999, 7, 8), drinking_water_source="air_permukaan")
    await _kb(client, stack, member(no_more, "istri")["id"], None, "tial")
    # Per couple: the wives use nothing, their husbands (the heads) do.
    vasectomy = await _family(client, stack, village, date(1995, 1, 2))
    await _kb(client, stack, member(vasectomy, "kepala_keluarga")["id"], "mop")
    condoms = await _family(client, stack, village, date(1994, 3, 4))
    await _kb(client, stack, member(condoms, "kepala_keluarga")["id"], "kondom")
    ageing = await _family(client, stack, village, add_months(FIFTY_ON, -600))
    await _kb(client, stack, member(ageing, "istri")["id"], "pil")
    stunted = member(implant, "anak")
    await measure(client, stack, stunted["id"], 66.0)  # HAZ about -3.5 at 400 days: a stunting case
    await measure(client, stack, member(pill, "anak")["id"], 75.0)  # about -0.1: normal

    group_body = {
        "code": unique("UPPKA-"),
        "name": "UPPKA Verifikasi",
        "register_number": unique("REG-"),
        "founded_on": (T - timedelta(days=400)).isoformat(),
        "village_code": village,
        "rw": RW,
    }
    r = await client.post(stack.base_url("uppka") + "/v1/groups", json=group_body, headers=admin())
    assert r.status_code == 201, r.text
    members_url = stack.base_url("uppka") + f"/v1/groups/{r.json()['id']}/members"
    for wife in (member(implant, "istri"), member(later, "istri")):

        async def joined(wife: dict[str, Any] = wife) -> Any:
            response = await client.post(
                members_url, json={"person_id": wife["id"], "role": "anggota"}, headers=admin()
            )
            return response.json() if response.status_code == 201 else None

        await wait_for(joined, timeout=60, what="uppka knows the registry person")

    # A late KB change of a member: the wife who wanted a child later started the pill three days ago, but it is
    # recorded only now, after her join (whose snapshot said non-user): it must not be folded under the join.
    r = await client.post(
        stack.base_url("registry") + f"/v1/persons/{member(later, 'istri')['id']}/kb-status",
        json={"method": "pil", "since": (T - timedelta(days=3)).isoformat()},
        headers=admin(),
    )
    assert r.status_code == 201, r.text

    async def enrolled() -> Any:
        r = await client.get(
            stack.base_url("dashat") + "/v1/enrolments", params={"person_id": stunted["id"]}, headers=admin()
        )
        return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None

    await wait_for(enrolled, timeout=60, what="DASHAT enrols the stunted baduta")
    batch = {
        # The kitchen's business date: the enrolment starts on it (T would predate it from 17:00 UTC).
        "served_on": TODAY.isoformat(),
        "slot": "lunch",
        "portions_cooked": 1,
        "portions_delivered": 1,
        "portions_consumed": 1,
        "served_person_ids": [stunted["id"]],
        "absent_person_ids": [],
    }
    r = await client.post(
        stack.base_url("dashat") + f"/v1/kitchens/{kitchen['id']}/meals", json=batch, headers=admin()
    )
    assert r.status_code == 201, r.text


# What reporting must show for the village this month, computed by hand from the programme above.
EXPECTED = {
    # PUS: implant, pill, pill (late), tial, MOP and condom couples = 6; the wife turning 50 this month is out of it.
    "pus": 6,
    "kb_users": 5,  # implant, pill, the late pill, MOP (husband), condoms (husband)
    "kb_modern_users": 5,  # all five methods are modern
    "mkjp_users": 2,  # implant, MOP
    "non_users_iat": 0,  # she wanted a child later until she started the pill
    "non_users_tial": 1,
    "cpr": 0.833333,  # 5 / 6
    "mcpr": 0.833333,  # 5 / 6
    "mkjp_share": 0.4,  # 2 / 5
    "unmet_need": 0.166667,  # (0 + 1) / 6
    "baduta_measured": 2,
    "baduta_stunted": 1,
    # Improper water; and the wife of 49 is "too old" (over 35) while she is PUS, until the registry's sweep on
    # her 50th birthday: today when that is today.
    "krs_families": 2 if FIFTY_ON > TODAY else 1,
    "uppka_groups_existing": 1,
    "uppka_members": 2,
    "uppka_members_kb_users": 2,  # the implant user and the late pill user (known after her join)
    "uppka_members_kb_participation": 1.0,  # PUS members using KB / PUS members = 2 / 2
    # No month's report is due in its own month (the deadline is the 10th of the next): not_due, not 0%.
    "uppka_reporting_rate": None,
    "uppka_reports_not_due": 1,
    "dashat_beneficiaries": 1,
    "dashat_enrolled": 1,
    "dashat_portions_served": 1,
}


async def test_verify_finds_reporting_equal_to_the_sources_and_catches_a_changed_figure(stack: Stack) -> None:
    village = fresh_village()
    async with httpx.AsyncClient(timeout=15) as client:
        await _programme(client, stack, village)

        async def caught_up() -> Any:
            r = await client.get(
                stack.base_url("reporting") + f"/v1/regions/{village}/summary",
                params={"period": f"{T:%Y-%m}"},
                headers=admin(),
            )
            values = r.json()["indicators"] if r.status_code == 200 else {}
            seen[0] = {k: (values.get(k), v) for k, v in EXPECTED.items() if values.get(k) != v}
            return values if not seen[0] else None

        seen: list[Any] = [None]
        try:
            await wait_for(caught_up, timeout=90, what="reporting shows the hand-computed village figures")
        except pytest.fail.Exception:
            pytest.fail(f"village {village}: (seen, expected) where they differ: {seen[0]}")

    ok = await asyncio.to_thread(run_verify, stack, "--region", village)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert "0 differ" in ok.stdout and "differ:" not in ok.stdout
    # Every main figure of the month, quarter and year was compared (figures main's reporting lacks are listed).
    for figure in (
        "pus",
        "cpr",
        "mcpr",
        "unmet_need",
        "stunting_prevalence",
        "uppka_members_kb_participation",
        "uppka_reporting_rate",
    ):
        equal = [ln for ln in ok.stdout.splitlines() if re.search(rf"\b{figure}\b.* yes\b", ln)]
        assert len(equal) >= 3, ok.stdout

    engine = create_async_engine(stack.urls["reporting"])
    change = text(
        "UPDATE rep_fact SET value = value + :d WHERE ctid = (SELECT ctid FROM rep_fact"
        " WHERE region = :region AND measure = 's.kb.pus' AND grain = 'm' ORDER BY period_start, slot LIMIT 1)"
    )
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(change, {"d": 1, "region": village})).rowcount == 1
        caught = await asyncio.to_thread(run_verify, stack, "--region", village, "--period", f"{T:%Y-%m}")
        async with engine.begin() as conn:
            await conn.execute(change, {"d": -1, "region": village})
    finally:
        await engine.dispose()
    assert caught.returncode == 1, caught.stdout[-4000:] + caught.stderr[-2000:]
    differing = caught.stdout.split("differ:", 1)[1]
    # One more PUS in reporting: PUS and every ratio over PUS differ, nothing else.
    assert differing.split() == ["cpr,", "mcpr,", "pus,", "unmet_need"] or differing.split() == [
        "cpr,",
        "pus,",
        "unmet_need",
    ], caught.stdout[-3000:]
    stack.assert_alive()
