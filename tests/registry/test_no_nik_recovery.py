"""Issue 12 item 1: the audit's NIK recovery, attacked the way the audit did it.

The audit read a person with a `registry:read` token, saw the masked NIK `1571**********01` beside the village,
birth date and sex, rebuilt digits 5-12 from those, and confirmed the right one of the 100 candidates left with
`POST /v1/persons:search` (59 requests, 0.3 s, nothing logged, nothing throttled).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from registry.config import Settings
from registry.families.models import AccessLog
from registry.identity.domain import make_nik, mask_nik
from registry.main import create_app
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.testing.plugin import running_app
from tests.registry.conftest import OTHER_VILLAGE, auth, create_family, family_body, person, sql_statements
from tests.shared.web_controls import settings_for_controls

pytestmark = pytest.mark.integration

SEARCHER = "registry:read registry:nik:search"
MIN_CANDIDATES = 10**6  # below this, a masked form is not shown at all


def candidates(shown: dict[str, Any], village_code: str) -> list[str]:
    """Every NIK consistent with what one response shows: the attacker's enumeration.

    Digits 1-6 are the district of the village (the usual case: a NIK is issued where one lives), digits 7-12
    the birth date DDMMYY with day + 40 for women, digits 13-16 a serial 0001-9999 (domain/regions-and-ids.md);
    any digit the masked form shows must match.
    """
    birth, sex = date.fromisoformat(shown["birth_date"]), shown["sex"]
    prefix = make_nik(village_code[:8], birth, sex, 1)[:12]
    masked = shown["nik"] or "*" * 16
    out = []
    for serial in range(1, 10_000):
        nik = f"{prefix}{serial:04d}"
        if all(m in ("*", d) for m, d in zip(masked, nik, strict=True)):
            out.append(nik)
    return out


def test_any_masked_form_leaves_too_few_candidates_so_none_is_shown() -> None:
    shown = {"birth_date": "1990-01-01", "sex": "L"}
    real = make_nik("15.71.01", date(1990, 1, 1), "L", 1701)
    # The old mask (digits 1-4 and 15-16): the serial's last two digits are known, 100 candidates remain
    # (serials 0001, 0101, ..., 9901).
    assert len(candidates({**shown, "nik": mask_nik(real)}, "15.71.01.1001")) == 100
    # Even a mask showing no digit at all leaves only the serial: 9,999 candidates, far below 10^6.
    assert len(candidates({**shown, "nik": "*" * 16}, "15.71.01.1001")) == 9_999 < MIN_CANDIDATES


@pytest.fixture
async def limited(registry_url: str, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=registry_url, **settings_for_controls(rate_limit_search="5/minute"))
    async with running_app(create_app(settings), session) as c:
        yield c


async def search_log(session: AsyncSession, actor: str) -> list[AccessLog]:
    async with session.begin():
        rows = await session.scalars(select(AccessLog).where(AccessLog.actor == actor))
        return list(rows)


async def test_the_audits_attack_finds_no_way_to_the_nik(
    limited: httpx.AsyncClient, session: AsyncSession
) -> None:
    fam = await create_family(limited)
    head = fam["members"][0]
    pii = {**auth("registry:read registry:pii:read", region=None), "X-Purpose": "test oracle"}
    real = (await limited.get(f"/v1/persons/{head['id']}", headers=pii)).json()["nik"]

    # 1. What a partner's read-only token shows: no number, masked or not.
    partner = auth("registry:read", sub="partner")
    shown = (await limited.get(f"/v1/persons/{head['id']}", headers=partner)).json()
    assert shown["nik"] is None and shown["has_nik"] is True
    assert real[12:] not in (await limited.get(f"/v1/families/{fam['id']}", headers=partner)).text
    pool = candidates(shown, fam["village_code"])
    assert len(pool) == 9_999 and real in pool  # the serial is all that is left, and it is not shown

    # 2. Confirming a candidate with the partner's tokens: the search has its own scope.
    # Refused attempts spend from the search budget too (the guard counts first), so guessing is slow either way.
    refused = []
    for nik in [*pool[:20], real]:
        r = await limited.post("/v1/persons:search", json={"nik": nik}, headers=partner)
        refused.append(r.status_code)
    assert refused == [403] * 5 + [429] * 16
    writer = auth("registry:read registry:write", sub="kader")
    r = await limited.post("/v1/persons:search", json={"nik": real}, headers=writer)
    assert r.status_code == 403

    # 3. With the scope, a purpose is required.
    r = await limited.post("/v1/persons:search", json={"nik": real}, headers=auth(SEARCHER, sub="hurried"))
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "pii.purpose_required"
    searcher = auth(SEARCHER, sub="searcher")

    # 4. With scope and purpose: 5 searches a minute here (30 by default), every one in the access log.
    statuses = []
    for nik in [*[n for n in pool if n != real][:7], real]:
        r = await limited.post(
            "/v1/persons:search", json={"nik": nik}, headers={**searcher, "X-Purpose": "enumeration"}
        )
        statuses.append(r.status_code)
        assert r.status_code == 429 or r.json()["items"] == []
    assert statuses == [200] * 5 + [429] * 3  # the real NIK, 8th, is never answered
    log = await search_log(session, "searcher")
    assert len(log) == 5 and all(e.action == "nik_search" and e.purpose == "enumeration" for e in log)
    assert all(e.person_id is None for e in log)  # misses are logged too


async def test_no_such_nik_and_outside_your_region_answer_alike(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    held = person("kepala_keluarga", date(1990, 1, 1), "L")
    fam = await create_family(client, members=[held])
    unused = make_nik("15.71.01", date(1990, 1, 1), "L", 9_998)  # serials count up from 1: nobody holds this
    outsider = {**auth(SEARCHER, region="32.76", sub="outsider"), "X-Purpose": "lookup"}
    answers, statements = [], []
    for nik in (held["nik"], unused):
        with sql_statements(session) as seen:
            r = await client.post("/v1/persons:search", json={"nik": nik}, headers=outsider)
        answers.append((r.status_code, r.json()))
        statements.append(seen)
    assert answers[0] == answers[1] == (200, {"items": [], "next_cursor": None})
    # The same path, statement for statement: one index lookup and one log row, no early return for either.
    assert statements[0] == statements[1] and sum("access_log" in s for s in statements[0]) == 1
    log = await search_log(session, "outsider")
    # The holder's own log records who looked, from which region's token; the miss is logged without a person.
    assert sorted(str(e.person_id) for e in log) == sorted([fam["members"][0]["id"], "None"])


async def test_a_nik_held_elsewhere_is_refused_without_echoing_it(client: httpx.AsyncClient) -> None:
    held = person("kepala_keluarga", date(1990, 1, 1), "L")
    await create_family(client, members=[held])
    again = person("kepala_keluarga", date(1990, 1, 1), "L", nik=held["nik"])
    outsider = auth(region="32.76")
    r = await client.post(
        "/v1/families", json=family_body(village=OTHER_VILLAGE, members=[again]), headers=outsider
    )
    assert r.status_code == 409
    body = r.json()
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [("body.members.0.nik", "nik.duplicate")]
    assert not [key for key in body if key.startswith("existing_")]  # neither the number nor the holder
    # The correlation id is random hex: it can end in the NIK's last two digits by chance (seen once).
    text = json.dumps({k: v for k, v in body.items() if k != "correlation_id"})
    for part in (held["nik"], held["nik"][-2:] + '"', mask_nik(held["nik"]), "Person", "1990"):
        assert part not in text
