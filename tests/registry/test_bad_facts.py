"""Facts that cannot be true are refused (422 naming the field, nothing written), by the API and the import."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from registry.models import outbox
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.registry.conftest import auth, create_family, family_body, person
from tests.registry.test_imports import COLUMNS, family_rows, issues, post_import, rules_of, to_csv, to_ndjson

pytestmark = pytest.mark.integration

TODAY = business_today()


async def outbox_size(session: AsyncSession) -> int:
    async with session.begin():
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)


def first_error(r: httpx.Response) -> tuple[str, str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    err = r.json()["errors"][0]
    return err["field"], err["rule"]


async def family_with(client: httpx.AsyncClient, *members: dict[str, Any]) -> dict[str, Any]:
    head = person("kepala_keluarga", date(1985, 1, 1), "L")
    return await create_family(client, members=[head, *members])


def member(fam: dict[str, Any], relation: str) -> dict[str, Any]:
    return dict(next(m for m in fam["members"] if m["relation"] == relation))


# ------------------------------------------------------------------------------------------ KB status


async def test_impossible_kb_methods_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    toddler = person("anak", TODAY - timedelta(days=4 * 365 + 30), "P", with_nik=False)
    boy = person("anak", date(2008, 3, 3), "L", with_nik=False)
    fam = await family_with(client, person("istri", date(1990, 2, 2), "P"), toddler, boy)
    wife = member(fam, "istri")
    kids = sorted((m for m in fam["members"] if m["relation"] == "anak"), key=lambda m: m["birth_date"])
    boy_id, toddler_id = kids[0]["id"], kids[1]["id"]
    husband = member(fam, "kepala_keluarga")
    size = await outbox_size(session)

    cases = [
        (toddler_id, {"method": "implant", "since": TODAY.isoformat()}, ("body.method", "kb.method_age")),
        (boy_id, {"method": "iud", "since": "2026-01-01"}, ("body.method", "kb.method_sex")),
        (husband["id"], {"method": "pil", "since": "2026-01-01"}, ("body.method", "kb.method_sex")),
        (wife["id"], {"method": "mop", "since": "2026-01-01"}, ("body.method", "kb.method_sex")),
        (wife["id"], {"method": "suntik", "since": "1990-02-01"}, ("body.since", "kb.since_before_birth")),
        (
            wife["id"],
            {"method": "pil", "since": (TODAY + timedelta(days=2)).isoformat()},
            ("body.since", "kb.since_future"),
        ),
    ]
    for pid, body, expected in cases:
        r = await client.post(f"/v1/persons/{pid}/kb-status", json=body, headers=auth())
        assert first_error(r) == expected, body
        assert (await client.get(f"/v1/persons/{pid}/kb-status", headers=auth())).json() == []
    assert await outbox_size(session) == size

    # The couple's methods are either partner's: the husband's condom and vasectomy are accepted.
    for method in ("kondom", "mop"):
        r = await client.post(
            f"/v1/persons/{husband['id']}/kb-status",
            json={"method": method, "since": "2026-01-01"},
            headers=auth(),
        )
        assert r.status_code == 201, r.text


async def test_mal_and_traditional_apart_and_the_merged_value_refused(client: httpx.AsyncClient) -> None:
    fam = await family_with(client, person("istri", date(1990, 2, 2), "P"))
    url = f"/v1/persons/{member(fam, 'istri')['id']}/kb-status"
    r = await client.post(url, json={"method": "mal_tradisional", "since": "2026-01-01"}, headers=auth())
    assert first_error(r) == ("body.method", "literal_error")
    message = r.json()["errors"][0]["message"]
    assert "'mal'" in message and "'tradisional'" in message
    for method in ("mal", "tradisional"):
        r = await client.post(url, json={"method": method, "since": "2026-01-01"}, headers=auth())
        assert r.status_code == 201 and r.json()["method"] == method


# ------------------------------------------------------------------------------------------ birth dates


async def test_birth_dates_before_1900_or_after_today_are_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    size = await outbox_size(session)
    for birth, rule in (("1899-12-31", "date_range"), ((TODAY + timedelta(days=1)).isoformat(), None)):
        body = family_body(
            members=[
                {**person("kepala_keluarga", date(1950, 1, 1), "L", with_nik=False), "birth_date": birth}
            ]
        )
        r = await client.post("/v1/families", json=body, headers=auth(region=None))
        field, got = first_error(r)
        assert field == "body.members.0.birth_date"
        assert got == (rule or "person.birth_date_future")
    fam = await create_family(client)
    r = await client.patch(
        f"/v1/persons/{fam['members'][0]['id']}",
        json={"birth_date": "1800-01-01"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert first_error(r) == ("body.birth_date", "date_range")
    r = await client.post(
        f"/v1/families/{fam['id']}/members",
        json=person("anak", date(1899, 12, 31), "P", with_nik=False),
        headers=auth(),
    )
    assert first_error(r) == ("body.birth_date", "date_range")
    async with session.begin():
        types = list(await session.scalars(select(outbox.c.event_type).order_by(outbox.c.seq)))
    # Only the valid family's events (its family, its two persons and its first KRS status).
    assert types[size:].count("registry.family.registered.v1") == 1
    assert types[size:].count("registry.person.registered.v1") == 2, types


@pytest.mark.parametrize(
    ("value", "rule"),
    [(1700000000, "date_format"), (True, "date_format"), ("2026-13-01", "date_invalid"), ("1899-12-31", "date_range"),
     ("2026-1-5", "date_format"), ("2026-01-05T00:00:00", "date_format")],
)  # fmt: skip
async def test_numbers_and_malformed_strings_are_not_dates(
    client: httpx.AsyncClient, value: object, rule: str
) -> None:
    fam = await family_with(client, person("istri", date(1990, 2, 2), "P"))
    wife = member(fam, "istri")
    r = await client.post(
        f"/v1/persons/{wife['id']}/kb-status", json={"method": "pil", "since": value}, headers=auth()
    )
    assert first_error(r) == ("body.since", rule)
    r = await client.post("/v1/pregnancies", json={"person_id": wife["id"], "lmp": value}, headers=auth())
    assert first_error(r) == ("body.lmp", rule)
    if not isinstance(value, bool):
        r = await client.get("/v1/regions", params={"on": str(value)}, headers=auth())
        assert first_error(r)[0] == "query.on"


# ------------------------------------------------------------------------------------------ pregnancy


async def test_expected_delivery_alone_must_fit_an_ongoing_pregnancy(client: httpx.AsyncClient) -> None:
    fam = await family_with(client, person("istri", date(1990, 2, 2), "P"))
    wife = member(fam, "istri")
    for expected in (TODAY + timedelta(days=281), TODAY - timedelta(days=29), date(1950, 1, 1)):
        r = await client.post(
            "/v1/pregnancies",
            json={"person_id": wife["id"], "expected_delivery": expected.isoformat()},
            headers=auth(),
        )
        assert first_error(r) == ("body.expected_delivery", "pregnancy.expected_delivery_out_of_range")
    r = await client.post(
        "/v1/pregnancies",
        json={"person_id": wife["id"], "expected_delivery": (TODAY + timedelta(days=100)).isoformat()},
        headers=auth(),
    )
    assert r.status_code == 201, r.text
    # Without an LMP the pregnancy began 280 days before the expected delivery: it cannot end before that.
    began = TODAY + timedelta(days=100) - timedelta(days=280)
    r = await client.post(
        f"/v1/pregnancies/{r.json()['id']}/end",
        json={"outcome": "loss", "ended_on": (began - timedelta(days=1)).isoformat()},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert first_error(r) == ("body.ended_on", "pregnancy.ended_before_lmp")


# ------------------------------------------------------------------------------------------ the import


async def test_the_import_refuses_the_same_facts_per_row(client: httpx.AsyncClient) -> None:
    columns = [*COLUMNS, "kb_method", "kb_since"]
    old = family_rows()
    old[1]["birth_date"] = "1899-12-31"
    boy_iud = family_rows()
    boy_iud[2].update(sex="L", kb_method="iud", kb_since=TODAY.isoformat())
    young = family_rows()
    young[2].update(kb_method="implant", kb_since=TODAY.isoformat())  # the child is 300 days old
    merged = family_rows()
    merged[1].update(kb_method="mal_tradisional", kb_since="2026-01-01")
    before_birth = family_rows()
    before_birth[1].update(kb_method="pil", kb_since="1990-01-01")  # born 1995-05-05
    good = family_rows()
    good[1].update(kb_method="mal", kb_since="2026-01-01")
    rows = [r for f in (old, boy_iud, young, merged, before_birth, good) for r in f]
    job = await post_import(client, to_csv(rows, columns), mode="validate")
    got = rules_of(await issues(client, job["id"]))
    assert (2, "birth_date", "date_range") in got
    assert (6, "kb_method", "kb.method_sex") in got
    assert (9, "kb_method", "kb.method_age") in got
    assert (11, "kb_method", "literal_error") in got
    assert (14, "kb_since", "kb.since_before_birth") in got
    assert not any(row in (16, 17, 18) for row, _, _ in got)
    # NDJSON: a number is not a date there either.
    numeric = family_rows()
    numeric[0]["birth_date"] = 631152000
    job = await post_import(client, to_ndjson(numeric), mode="validate", content_type="application/x-ndjson")
    assert (1, "birth_date", "date_format") in rules_of(await issues(client, job["id"]))


# ------------------------------------------------------------------------------------------ KB history in events


async def kb_events(session: AsyncSession, person_id: str) -> list[dict[str, Any]]:
    async with session.begin():
        rows = await session.scalars(
            select(outbox.c.envelope)
            .where(outbox.c.event_type == "registry.kb_status.changed.v1")
            .order_by(outbox.c.seq)
        )
        return [e["data"] for e in rows if e["data"]["person_id"] == person_id]


async def test_kb_events_carry_what_held_before_by_effective_date(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    fam = await family_with(client, person("istri", date(1990, 2, 2), "P"))
    url = f"/v1/persons/{member(fam, 'istri')['id']}/kb-status"

    async def record(method: str | None, since: str, **extra: Any) -> dict[str, Any]:
        r = await client.post(url, json={"method": method, "since": since, **extra}, headers=auth())
        assert r.status_code == 201, r.text
        return dict(r.json())

    await record(None, "2024-01-01", reason_non_use="iat")  # the first record: what the survey found
    await record("pil", "2025-01-01")  # a new acceptor: a user after non-use
    await record("implant", "2026-01-01")  # a switch from a non-MKJP method to an MKJP one
    fixed = await record("iud", "2026-01-01")  # the same date again: corrects the implant entry
    late = await record("suntik", "2024-06-01")  # an older change typed late: history, not current
    assert fixed["current"] is True and late["current"] is False

    events = await kb_events(session, member(fam, "istri")["id"])
    got = [(e["method"], e["previous_method"], e["previous_mkjp"]) for e in events]
    assert got == [
        (None, None, False),
        ("pil", None, False),
        ("implant", "pil", False),
        ("iud", "pil", False),  # not "implant": that entry was the one corrected
        ("suntik", None, False),  # what held before 2024-06-01 was non-use (no method)
    ]
    # `first_record` is deprecated (issue 12, item 7: no consumer reads it): it travels false on every event.
    assert [e["first_record"] for e in events] == [False] * 5
    current = await client.get(url, headers=auth())
    assert [(h["method"], h["current"]) for h in current.json() if h["current"]] == [("iud", True)]


async def test_an_imported_first_kb_status_is_a_first_record(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    rows = family_rows()
    rows[1].update(kb_method="implant", kb_since="2025-03-01")
    job = await post_import(client, to_csv(rows, [*COLUMNS, "kb_method", "kb_since"]))
    assert job["summary"]["families"]["created"] == 1
    async with session.begin():
        found = list(
            await session.scalars(
                select(outbox.c.envelope).where(outbox.c.event_type == "registry.kb_status.changed.v1")
            )
        )
    mine = [
        e["data"] for e in found if e["data"]["since"] == "2025-03-01" and e["data"]["method"] == "implant"
    ]
    # The import records it as the first status (nothing held before it); the deprecated `first_record` flag
    # no longer travels (issue 12, item 7), so the event says it by naming no previous method.
    assert [(d["previous_method"], d["first_record"]) for d in mine][-1:] == [(None, False)]
