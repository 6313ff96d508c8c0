"""Member categories that age: the daily sweep on the 10th/25th/60th birthday, the registry's PUS flip, a late join.

Every change is stored on the membership and published once as `uppka.member.category_changed.v1`, dated 00:00
Asia/Jakarta of the day it took effect.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner
from uppka.categories import repository as sweep_repo
from uppka.categories.service import sweep
from uppka.groups.models import Member
from uppka.models import outbox

from shared.ages import add_months
from shared.clock import business_today
from shared.events.registry import PersonUpdated
from tests.uppka.conftest import apply, env, make_group, person_facts, seed_person

pytestmark = pytest.mark.integration

WIB = ZoneInfo("Asia/Jakarta")
TODAY = business_today()
D = TODAY - timedelta(days=3)  # the birthday, in the recent past (the sweep takes no day after today)
CHANGED = "uppka.member.category_changed.v1"


def midnight(day: date) -> datetime:
    """00:00 WIB of a day."""
    return datetime.combine(day, time.min, tzinfo=WIB)


def time_of(envelope: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(envelope["time"])


async def envelopes(session: AsyncSession, key: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(outbox.c.envelope).where(outbox.c.partition_key == key).order_by(outbox.c.seq)
    )
    out = [dict(r[0]) for r in rows]
    await session.commit()
    return out


async def join(client: httpx.AsyncClient, group_id: str, person_id: uuid.UUID, **body: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/groups/{group_id}/members", json={"person_id": str(person_id), **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def joined_earlier(session: AsyncSession, member_id: str, on: date, category: str) -> None:
    """The membership as it was recorded on `on`, with the category of that day (before the birthday)."""
    await session.execute(
        update(Member)
        .where(Member.id == uuid.UUID(member_id))
        .values(joined_on=on, category=category, category_since=on)
    )
    await session.commit()


async def member(client: httpx.AsyncClient, group_id: str, member_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/v1/groups/{group_id}/members/{member_id}")).json())


async def test_a_remaja_turning_25_changes_category_once_dated_her_birthday(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    p = await seed_person(session, kb=None, birth=add_months(D, -12 * 25), marital="belum_kawin", pus=False)
    m = await join(client, g["id"], p.person_id)
    assert m["category"] == "lainnya"  # 25 already today
    await joined_earlier(session, m["id"], D - timedelta(days=30), "remaja")
    await sweep_repo.advance(session, D - timedelta(days=2))  # swept through two days before her birthday
    await session.commit()
    before = len(await envelopes(session, g["id"]))

    result = await sweep(session, TODAY)
    assert [day for day, _ in result.days] == [D - timedelta(days=1) + timedelta(days=i) for i in range(5)]
    got = await member(client, g["id"], m["id"])
    assert (got["category"], got["category_since"]) == ("lainnya", D.isoformat())
    new = (await envelopes(session, g["id"]))[before:]
    assert [e["type"] for e in new] == [CHANGED]
    assert time_of(new[0]) == midnight(D)
    assert {k: new[0]["data"][k] for k in ("member_id", "category", "previous_category", "changed_on")} == {
        "member_id": m["id"],
        "category": "lainnya",
        "previous_category": "remaja",
        "changed_on": D.isoformat(),
    }
    # A second sweep (the watermark is at today) and a sweep of an already swept day emit nothing.
    again = await sweep(session, TODAY)
    assert again.days == [] and again.locked
    await sweep_repo.advance(session, D - timedelta(days=1))
    await session.commit()
    await sweep(session, TODAY)
    assert len(await envelopes(session, g["id"])) == before + 1
    assert await sweep_repo.last_swept_on(session) == TODAY
    await session.commit()


async def test_a_member_turning_60_becomes_lansia_and_a_child_turning_10_remaja(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    old = await seed_person(session, kb=None, birth=add_months(D, -12 * 60), marital="kawin", pus=False)
    kid = await seed_person(session, kb=None, birth=add_months(D, -12 * 10), marital="belum_kawin", pus=False)
    a = await join(client, g["id"], old.person_id)
    b = await join(client, g["id"], kid.person_id)
    await joined_earlier(session, a["id"], D - timedelta(days=10), "lainnya")
    await joined_earlier(session, b["id"], D - timedelta(days=10), "lainnya")
    await sweep_repo.advance(session, D - timedelta(days=1))
    await session.commit()
    await sweep(session, D)
    assert (await member(client, g["id"], a["id"]))["category"] == "lansia"
    assert (await member(client, g["id"], b["id"]))["category"] == "remaja"


async def test_the_registrys_pus_flip_changes_the_category(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    # Registered with the registry two months ago (her facts then: married, 49, PUS).
    p = person_facts(birth=add_months(D, -12 * 50), marital="kawin", pus=True)
    await apply(session, env(p, p.family_id, time=midnight(D) - timedelta(days=60)))
    m = await join(client, g["id"], p.person_id)
    await joined_earlier(session, m["id"], D - timedelta(days=40), "pus")
    before = len(await envelopes(session, g["id"]))
    # The registry's age sweep publishes her leaving PUS on her 50th birthday, dated 00:00 WIB that day.
    at = datetime.combine(D, time.min, tzinfo=WIB)
    flip = PersonUpdated(**{**p.model_dump(), "pus": False})
    await apply(session, env(flip, p.family_id, time=at))
    got = await member(client, g["id"], m["id"])
    assert (got["category"], got["category_since"]) == ("lainnya", D.isoformat())
    new = (await envelopes(session, g["id"]))[before:]
    assert [e["type"] for e in new] == [CHANGED]
    assert time_of(new[0]) == midnight(D)
    assert (new[0]["data"]["previous_category"], new[0]["data"]["changed_on"]) == ("pus", D.isoformat())
    # The same facts again (a redelivery, or a later unrelated update) change nothing.
    await apply(session, env(flip, p.family_id, time=at + timedelta(hours=5)))
    assert len(await envelopes(session, g["id"])) == before + 1


async def test_a_join_recorded_late_applies_the_birthdays_since(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    g = await make_group(client)
    p = await seed_person(session, kb=None, birth=add_months(D, -12 * 25), marital="belum_kawin", pus=False)
    m = await join(client, g["id"], p.person_id, joined_on=(D - timedelta(days=20)).isoformat())
    assert (m["category"], m["category_since"]) == ("lainnya", D.isoformat())
    new = await envelopes(session, g["id"])
    assert [e["type"] for e in new][-2:] == ["uppka.member.joined.v1", CHANGED]
    assert new[-2]["data"]["category"] == "remaja"
    assert (new[-1]["data"]["changed_on"], time_of(new[-1])) == (D.isoformat(), midnight(D))


def test_cli_refuses_a_bad_or_future_day() -> None:
    from kencana_cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["uppka", "sweep-categories", "--on", "2026-13-01"])
    assert r.exit_code != 0 and "YYYY-MM-DD" in r.output
    r = runner.invoke(app, ["uppka", "sweep-categories", "--on", (TODAY + timedelta(days=3)).isoformat()])
    assert r.exit_code != 0 and "not begun" in r.output
