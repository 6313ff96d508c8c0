"""Data-subject export (UU 27/2022 PDP, issue 12 item 8): one person's data from the four running services.

A wife is registered with her family, uses KB, becomes pregnant with KEK (DASHAT enrols her as ibu hamil and
serves her a meal), joins an UPPKA group, and reporting projects her; everything goes through the public APIs
and Kafka. `kencana subject-export` (the real CLI, as a process) must give the union of the four services'
answers, each service must refuse a token without the scope (403) and answer a person outside the token's
region exactly as an unknown one (404), and every export must leave an audit entry in each service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.auth import issue_dev_token
from shared.clock import business_today
from shared.subject import EXPORT_ACTION, SUBJECT_EXPORT
from shared.testing.plugin import bearer, unique, wait_for
from tests.e2e.stack import Stack
from tests.e2e.test_flows import admin, family_with_baduta, fresh_village, member, open_kitchen

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

SERVICES = ("registry", "uppka", "dashat", "reporting")
PURPOSE = "PDP-2026-0042"


def export_url(stack: Stack, service: str, person_id: str) -> str:
    return stack.base_url(service) + f"/v1/subjects/{person_id}/export"


def exporter(region: str | None = "15.71", extra: str = "") -> dict[str, str]:
    return {
        **bearer(f"{SUBJECT_EXPORT} {extra}".strip(), region=region, sub="dpo-officer"),
        "X-Purpose": PURPOSE,
    }


def run_cli(stack: Stack, person_id: str, token: str, out: Path) -> subprocess.CompletedProcess[str]:
    kencana = Path(sys.executable).parent / "kencana"
    args = [str(kencana), "subject-export", person_id, "--purpose", PURPOSE, "--out", str(out)]
    for service in SERVICES:
        args += [f"--{service}-url", stack.base_url(service)]
    env = {**os.environ, "KENCANA_TOKEN": token}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False)


async def audit_rows(stack: Stack, service: str, person_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.urls[service].replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(
            await conn.fetch(
                "SELECT actor, purpose, action, sections FROM subject_access_log WHERE person_id = $1",
                uuid.UUID(person_id),
            )
        )
    finally:
        await conn.close()


async def _a_person_in_all_four(
    client: httpx.AsyncClient, stack: Stack
) -> tuple[dict[str, Any], str, str, str]:
    village, rw = fresh_village(), "006"
    kitchen = await open_kitchen(client, stack, village, rw)
    family = await family_with_baduta(client, stack, village, rw)
    wife = member(family, "istri")
    kb = await client.post(
        stack.base_url("registry") + f"/v1/persons/{wife['id']}/kb-status",
        json={"method": "pil", "since": "2025-01-01"},
        headers=admin(),
    )
    assert kb.status_code == 201, kb.text
    lmp = date.today() - timedelta(days=70)
    pregnancy = await client.post(
        stack.base_url("registry") + "/v1/pregnancies",
        json={"person_id": wife["id"], "lmp": lmp.isoformat(), "lila_cm": 22.0, "hb_g_dl": 11.5},
        headers=admin(),
    )
    assert pregnancy.status_code == 201, pregnancy.text

    async def enrolled() -> Any:
        r = await client.get(
            stack.base_url("dashat") + "/v1/enrolments", params={"person_id": wife["id"]}, headers=admin()
        )
        return [e for e in r.json()["items"] if e["status"] == "active"] or None

    await wait_for(
        enrolled, timeout=60, what="DASHAT enrols the pregnant wife with KEK (LiLA 22.0 < 23.5 cm)"
    )
    meals = await client.post(
        stack.base_url("dashat") + f"/v1/kitchens/{kitchen['id']}/meals",
        json={
            # The kitchen's business date (the enrolment starts on it), not the machine's UTC date.
            "served_on": business_today(village).isoformat(),
            "slot": "lunch",
            "portions_cooked": 1,
            "portions_delivered": 1,
            "portions_consumed": 1,
            "served_person_ids": [wife["id"]],
        },
        headers=admin(),
    )
    assert meals.status_code == 201, meals.text
    group_body = {
        "code": unique("UPPKA-"),
        "name": "UPPKA Mawar",
        "register_number": unique("REG-"),
        "sk_number": "SK/2/2024",
        "sk_date": "2024-02-10",
        "founded_on": "2024-02-10",
        "village_code": village,
        "rw": rw,
        "pembina_name": "PLKB Kota Jambi",
    }
    group = await client.post(stack.base_url("uppka") + "/v1/groups", json=group_body, headers=admin())
    assert group.status_code == 201, group.text

    async def joined() -> Any:
        r = await client.post(
            stack.base_url("uppka") + f"/v1/groups/{group.json()['id']}/members",
            json={"person_id": wife["id"], "role": "anggota"},
            headers=admin(),
        )
        return r.json() if r.status_code == 201 else None

    await wait_for(joined, timeout=60, what="uppka knows the registry person")

    async def projected() -> Any:
        r = await client.get(export_url(stack, "reporting", wife["id"]), headers=exporter())
        kinds = (
            {e["kind"] for e in r.json()["sections"]["projection_entities"]}
            if r.status_code == 200
            else set()
        )
        return r if "person" in kinds else None

    await wait_for(projected, timeout=60, what="reporting projects the wife")
    return wife, village, kitchen["id"], group.json()["id"]


async def test_subject_export_is_the_union_of_the_four_services_scoped_and_audited(
    stack: Stack, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        wife, village, kitchen_id, group_id = await _a_person_in_all_four(client, stack)
        pid = wife["id"]
        audited_before = {s: len(await audit_rows(stack, s, pid)) for s in SERVICES[1:]}

        # The CLI with the export scope only (regency of Kota Jambi): the NIK stays masked.
        out = tmp_path / "subject.json"
        done = run_cli(
            stack, pid, issue_dev_token(scopes=[SUBJECT_EXPORT], region="15.71", sub="dpo-officer"), out
        )
        assert done.returncode == 0, done.stderr
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        document = json.loads(out.read_text())
        assert document["person_id"] == pid and document["purpose"] == PURPOSE
        assert set(document["services"]) == set(SERVICES)

        # The union: each service's part equals what that service answers on its own.
        direct = {}
        for service in SERVICES:
            r = await client.get(export_url(stack, service, pid), headers=exporter())
            assert r.status_code == 200, r.text
            direct[service] = r.json()["sections"]
        for service in SERVICES:
            part = document["services"][service]
            assert part["held"] is True
            mine, theirs = dict(part["sections"]), dict(direct[service])
            if service == "registry":
                # The later direct export is one more entry in the access log: the CLI's entries are its start.
                log_cli, log_direct = mine.pop("access_log"), theirs.pop("access_log")
                assert log_direct[: len(log_cli)] == log_cli and len(log_direct) == len(log_cli) + 1
            assert mine == theirs, service

        registry = document["services"]["registry"]["sections"]
        person = registry["person"][0]
        assert person["id"] == pid and person["name"] == "Warga istri" and person["sex"] == "P"
        assert (
            person["nik"] is None and wife["nik"] is None
        )  # not shown without registry:pii:read, not even masked
        assert "nik_masked" not in person and "kk_masked" not in registry["families"][0]
        assert not {"nik_ciphertext", "nik_index", "nik_key_id", "name_key"} & set(person)
        assert [k["method"] for k in registry["kb_status"]] == ["pil"]
        assert len(registry["pregnancies"]) == 1 and registry["pregnancies"][0]["lila_cm"] == 22.0
        assert [m["family_id"] for m in registry["family_memberships"]] == [wife["family_id"]]
        assert registry["families"][0]["village_code"] == village
        assert not {"kk_ciphertext", "kk_index", "kk_key_id"} & set(registry["families"][0])
        assert [e["action"] for e in registry["access_log"]] == [EXPORT_ACTION]
        uppka = document["services"]["uppka"]["sections"]
        assert [(m["group_id"], m["person_id"]) for m in uppka["memberships"]] == [(group_id, pid)]
        assert uppka["person_replica"][0]["village_code"] == village
        dashat = document["services"]["dashat"]["sections"]
        assert [(e["category"], e["kitchen_id"]) for e in dashat["enrolments"]] == [("ibu_hamil", kitchen_id)]
        assert [m["person_id"] for m in dashat["meals_served"]] == [pid]
        # LiLA and Hb no longer travel (issue 12, item 7): DASHAT's replica has the flags, not the figures.
        assert dashat["person_replica"][0]["kek"] is True and dashat["person_replica"][0]["lila_cm"] is None
        reporting = document["services"]["reporting"]["sections"]
        assert "person" in {e["kind"] for e in reporting["projection_entities"]}

        # Audit: every export (the CLI's and the direct one) left one entry per service.
        for service in SERVICES[1:]:
            rows = await audit_rows(stack, service, pid)
            assert len(rows) == audited_before[service] + 2, service
            assert {(r["actor"], r["purpose"], r["action"]) for r in rows} == {
                ("dpo-officer", PURPOSE, EXPORT_ACTION)
            }

        # With registry:pii:read the NIK is shown unmasked, and that read is logged too.
        pii = run_cli(
            stack,
            pid,
            issue_dev_token(scopes=[SUBJECT_EXPORT, "registry:pii:read"], region="15.71", sub="dpo-officer"),
            tmp_path / "unmasked.json",
        )
        assert pii.returncode == 0, pii.stderr
        unmasked = json.loads((tmp_path / "unmasked.json").read_text())["services"]["registry"]["sections"]
        nik = unmasked["person"][0]["nik"]
        assert len(nik) == 16 and nik.isdigit()
        actions = [(e["action"], e["fields"]) for e in unmasked["access_log"]]
        assert (EXPORT_ACTION, ["nik"]) in actions

        # Scope: a token without kencana:subject:export is refused by every service (403), the CLI writes nothing.
        for service in SERVICES:
            r = await client.get(export_url(stack, service, pid), headers={**admin(), "X-Purpose": PURPOSE})
            assert r.status_code == 403, (service, r.text)
        refused = run_cli(
            stack, pid, issue_dev_token(scopes=["registry:read"], sub="x"), tmp_path / "no.json"
        )
        assert refused.returncode == 1 and "403" in refused.stderr and not (tmp_path / "no.json").exists()

        # Region: another region's token gets the answer an unknown person gets, from every service.
        unknown = str(uuid.uuid4())
        for service in SERVICES:
            outside = await client.get(export_url(stack, service, pid), headers=exporter("32.01"))
            missing = await client.get(export_url(stack, service, unknown), headers=exporter("32.01"))
            assert outside.status_code == missing.status_code == 404, service
            per_request = ("instance", "correlation_id")
            assert {k: v for k, v in outside.json().items() if k not in per_request} == {
                k: v for k, v in missing.json().items() if k not in per_request
            }
        elsewhere = run_cli(
            stack, pid, issue_dev_token(scopes=[SUBJECT_EXPORT], region="32.01"), tmp_path / "x.json"
        )
        assert elsewhere.returncode == 1 and "registry answered 404" in elsewhere.stderr

        # No purpose: 422 naming the header; and none of the refusals above was audited.
        r = await client.get(export_url(stack, "dashat", pid), headers=bearer(SUBJECT_EXPORT, region="15.71"))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "header.X-Purpose"
        for service in SERVICES[1:]:
            assert len(await audit_rows(stack, service, pid)) == audited_before[service] + 3, service
    stack.assert_alive()
