"""The daily age sweep: PUS and KRS follow birthdays, with one event per change dated the birthday."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from registry.ageing import domain
from registry.ageing import repository as age_repo
from registry.ageing import service as age_service
from registry.ageing.service import start_of, sweep
from registry.config import Settings
from registry.families import facts as families_facts
from registry.families import registration as families_registration
from registry.families import service as families_service
from registry.main import create_app
from registry.models import outbox
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.ages import add_months
from shared.db import create_engine, create_sessionmaker
from shared.outbox import Relay
from shared.testing.plugin import consume, running_app
from tests.registry.conftest import auth, family_body, person

pytestmark = [pytest.mark.integration]

# Days in the recent past: the registry takes no birth date after today and the sweep no day before it begins.
D = date.today() - timedelta(days=5)


@contextmanager
def registered_on(monkeypatch: pytest.MonkeyPatch, day: date) -> Iterator[None]:
    """Writes made inside happen on `day` (the statuses derived at the write are as of that day)."""
    with monkeypatch.context() as m:
        # Every module of a family's registration reads the day (the facts' PUS, the KRS rules, the checks).
        for module in (families_service, families_facts, families_registration):
            m.setattr(module, "today", lambda: day)
        yield


async def register(client: httpx.AsyncClient, members: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/families", json=family_body(members=members, **extra), headers=auth(region=None)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def set_watermark(session: AsyncSession, day: date) -> None:
    async with session.begin():
        await age_repo.advance(session, day)


async def events_of(session: AsyncSession, family_id: str) -> list[dict[str, Any]]:
    """The family's outbox envelopes, in order."""
    async with session.begin():
        rows = await session.scalars(
            select(outbox.c.envelope).where(outbox.c.partition_key == family_id).order_by(outbox.c.seq)
        )
        return [dict(r) for r in rows]


async def outbox_size(session: AsyncSession) -> int:
    async with session.begin():
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)


async def watermark(session: AsyncSession) -> date | None:
    async with session.begin():
        return await age_repo.last_swept_on(session)


def wife(birth: date, **extra: Any) -> dict[str, Any]:
    return person("istri", birth, "P", **extra)


def husband(birth: date = date(1970, 1, 1)) -> dict[str, Any]:
    return person("kepala_keluarga", birth, "L")


def member_id(family: dict[str, Any], relation: str) -> str:
    return str(next(m["id"] for m in family["members"] if m["relation"] == relation))


# ------------------------------------------------------------------------------------------ pure rules


def test_birth_window_is_the_same_day_earlier() -> None:
    assert domain.birth_window(600, date(2026, 12, 1)) == (date(1976, 12, 1), date(1976, 12, 1))
    assert domain.birth_window(60, date(2026, 6, 15)) == (date(2021, 6, 15), date(2021, 6, 15))


def test_birth_window_on_the_last_day_of_february_takes_the_29th() -> None:
    # Born 29 Feb 2012: completes 15 years on 28 Feb 2027 (shared/ages keeps the birthday on the month's end).
    low, high = domain.birth_window(180, date(2027, 2, 28))
    assert (low, high) == (date(2012, 2, 28), date(2012, 2, 29))
    assert domain.completes_on(date(2012, 2, 29), 180, date(2027, 2, 28))
    assert domain.completes_on(date(2012, 2, 28), 180, date(2027, 2, 28))
    assert not domain.completes_on(date(2012, 2, 29), 180, date(2027, 3, 1))


def test_thresholds() -> None:
    born = date(1976, 12, 1)
    assert [t.why for t in domain.crossed(born, date(2026, 12, 1), "wife")] == ["leaves PUS"]
    assert domain.crossed(born, date(2026, 11, 30), "wife") == []
    assert [t.why for t in domain.crossed(date(2006, 12, 1), date(2026, 12, 1), "wife")] == [
        "KRS: no longer too young"
    ]
    assert [t.why for t in domain.crossed(date(2021, 12, 1), date(2026, 12, 1), "child")] == [
        "KRS: no longer a balita"
    ]
    assert domain.crossed(date(2021, 12, 1), date(2026, 12, 1), "wife") == []


# ------------------------------------------------------------------------------------------ PUS


async def test_woman_turning_50_leaves_pus_on_her_birthday(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    born = add_months(D, -600)  # her 50th birthday is D
    with registered_on(monkeypatch, D - timedelta(days=1)):
        fam = await register(client, [husband(), wife(born)], latrine_type="tidak_ada")
    fid, wid = fam["id"], member_id(fam, "istri")
    registered = [e for e in await events_of(session, fid) if e["type"] == "registry.person.registered.v1"]
    assert next(e["data"]["pus"] for e in registered if e["data"]["person_id"] == wid) is True
    assert fam["krs"]["at_risk"] is True
    assert sorted(fam["krs"]["reasons"]) == ["latrine_improper", "wife_too_old"]
    await set_watermark(session, D - timedelta(days=1))
    before = len(await events_of(session, fid))

    result = await sweep(session, D)

    assert [d.day for d in result.days] == [D]
    new = (await events_of(session, fid))[before:]
    updated = [e for e in new if e["type"] == "registry.person.updated.v1"]
    assert len(updated) == 1
    assert updated[0]["data"]["person_id"] == wid and updated[0]["data"]["pus"] is False
    assert updated[0]["time"] == f"{D.isoformat()}T00:00:00+07:00"
    # No PUS wife, no pregnancy, no balita left: no longer a target family, so no longer at risk.
    risk = [e for e in new if e["type"] == "registry.family.stunting_risk_changed.v1"]
    assert len(risk) == 1
    assert risk[0]["data"]["at_risk"] is False and risk[0]["data"]["reasons"] == []
    assert risk[0]["time"] == f"{D.isoformat()}T00:00:00+07:00"
    r = await client.get(f"/v1/families/{fid}", headers=auth())
    assert r.json()["krs"] == {**r.json()["krs"], "target": False, "at_risk": False, "reasons": []}
    assert r.json()["version"] == fam["version"] + 1

    # The same day again publishes nothing, and changes nothing.
    size = await outbox_size(session)
    again = await sweep(session, D)
    assert again.days == [] and again.locked
    assert await outbox_size(session) == size


async def test_girl_married_at_15_enters_pus_on_her_birthday(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registered_on(monkeypatch, D - timedelta(days=1)):
        fam = await register(client, [husband(date(1990, 1, 1)), wife(add_months(D, -180))])
    fid = fam["id"]
    await set_watermark(session, D - timedelta(days=1))
    before = len(await events_of(session, fid))
    await sweep(session, D)
    new = (await events_of(session, fid))[before:]
    assert [(e["type"], e["data"].get("pus")) for e in new if e["type"].startswith("registry.person")] == [
        ("registry.person.updated.v1", True)
    ]
    # A PUS wife under 20 makes a target family at risk ("4 Terlalu": too young).
    risk = [e["data"] for e in new if e["type"] == "registry.family.stunting_risk_changed.v1"]
    assert [(r["at_risk"], r["reasons"]) for r in risk] == [(True, ["wife_too_young"])]


# ------------------------------------------------------------------------------------------ KRS


async def test_wife_turning_20_is_no_longer_too_young(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registered_on(monkeypatch, D - timedelta(days=1)):
        fam = await register(client, [husband(date(1995, 1, 1)), wife(add_months(D, -240))])
    fid = fam["id"]
    assert fam["krs"]["at_risk"] is True and fam["krs"]["reasons"] == ["wife_too_young"]
    await set_watermark(session, D - timedelta(days=1))
    before = len(await events_of(session, fid))

    result = await sweep(session, D)

    new = (await events_of(session, fid))[before:]
    assert [e["type"] for e in new] == ["registry.family.stunting_risk_changed.v1"]  # PUS did not change
    assert new[0]["data"]["at_risk"] is False and new[0]["data"]["reasons"] == []
    assert new[0]["time"] == f"{D.isoformat()}T00:00:00+07:00"
    assert result.families_changed >= 1
    r = await client.get(f"/v1/families/{fid}", headers=auth())
    assert r.json()["krs"]["target"] is True and r.json()["krs"]["at_risk"] is False


async def test_child_turning_5_ends_the_target_status(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    widower = person("kepala_keluarga", date(1980, 1, 1), "L", marital_status="cerai_mati")
    child = person("anak", add_months(D, -60), "P", with_nik=False)
    older = person("anak", date(2015, 1, 1), "L", with_nik=False)
    with registered_on(monkeypatch, D - timedelta(days=1)):
        fam = await register(client, [widower, child, older], drinking_water_source="air_hujan")
    fid = fam["id"]
    assert fam["krs"]["target"] is True and fam["krs"]["reasons"] == ["drinking_water_improper"]
    await set_watermark(session, D - timedelta(days=1))
    before = len(await events_of(session, fid))

    await sweep(session, D)

    new = (await events_of(session, fid))[before:]
    assert [(e["type"], e["data"]["at_risk"], e["data"]["target"], e["time"]) for e in new] == [
        ("registry.family.stunting_risk_changed.v1", False, False, f"{D.isoformat()}T00:00:00+07:00")
    ]
    r = await client.get(f"/v1/families/{fid}", headers=auth())
    assert r.json()["krs"]["target"] is False and r.json()["krs"]["at_risk"] is False


async def test_a_birthday_that_changes_nothing_publishes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Turning 35 makes a PUS wife "too old"; with an improper latrine the family was at risk already, but the
    # reasons change, so that is published. Turning 30 (no threshold) is not even looked at.
    with registered_on(monkeypatch, D - timedelta(days=1)):
        at35 = await register(client, [husband(), wife(add_months(D, -420))], latrine_type="tidak_ada")
        at30 = await register(client, [husband(), wife(add_months(D, -360))], latrine_type="tidak_ada")
    await set_watermark(session, D - timedelta(days=1))
    before35, before30 = len(await events_of(session, at35["id"])), len(await events_of(session, at30["id"]))
    monkeypatch.setattr(age_service, "FAMILY_BATCH", 1)  # families in several statements
    await sweep(session, D)
    new35 = (await events_of(session, at35["id"]))[before35:]
    assert [sorted(e["data"]["reasons"]) for e in new35] == [["latrine_improper", "wife_too_old"]]
    assert (await events_of(session, at30["id"]))[before30:] == []


async def test_a_family_that_stops_being_a_target_is_told_even_without_risk(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No risk factor at all: only the target status (the KRS share's denominator) changes when the child turns 5.
    widower = person("kepala_keluarga", date(1980, 1, 1), "L", marital_status="cerai_mati")
    child = person("anak", add_months(D, -60), "L", with_nik=False)
    with registered_on(monkeypatch, D - timedelta(days=1)):
        fam = await register(
            client, [widower, child], drinking_water_source="ledeng", latrine_type="jamban_sendiri_septik"
        )
    assert fam["krs"] == {**fam["krs"], "target": True, "at_risk": False, "reasons": []}
    await set_watermark(session, D - timedelta(days=1))
    before = len(await events_of(session, fam["id"]))
    await sweep(session, D)
    risk = [
        e["data"]
        for e in (await events_of(session, fam["id"]))[before:]
        if e["type"].endswith("risk_changed.v1")
    ]
    assert [(r["at_risk"], r["reasons"], r["target"]) for r in risk] == [(False, [], False)]


# ------------------------------------------------------------------------------------------ catch-up


async def test_catching_up_three_missed_days(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    d0 = D - timedelta(days=3)
    days = [d0 + timedelta(days=i) for i in (1, 2, 3)]
    with registered_on(monkeypatch, d0):
        fams = [await register(client, [husband(), wife(add_months(day, -600))]) for day in days]
    await set_watermark(session, d0)
    before = {f["id"]: len(await events_of(session, f["id"])) for f in fams}

    result = await sweep(session, days[-1])

    assert [d.day for d in result.days] == days
    for fam, day in zip(fams, days, strict=True):
        new = (await events_of(session, fam["id"]))[before[fam["id"]] :]
        updated = [e for e in new if e["type"] == "registry.person.updated.v1"]
        assert [(e["data"]["pus"], e["time"]) for e in updated] == [
            (False, f"{day.isoformat()}T00:00:00+07:00")
        ]
    assert await watermark(session) == days[-1]
    assert (await sweep(session, days[-1])).days == []


async def test_a_day_not_yet_begun_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="has not begun"):
        await sweep(session, date.today() + timedelta(days=2))


async def test_a_day_that_fails_leaves_the_watermark_where_it_was(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registered_on(monkeypatch, D - timedelta(days=2)):
        fam = await register(client, [husband(), wife(add_months(D, -600))])
    await set_watermark(session, D - timedelta(days=2))
    before = len(await events_of(session, fam["id"]))
    real = age_repo.insert_outbox
    calls = 0

    async def crash_on_second_day(s: AsyncSession, rows: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the process died")
        await real(s, rows)

    monkeypatch.setattr(age_repo, "insert_outbox", crash_on_second_day)
    with pytest.raises(RuntimeError):
        await sweep(session, D)
    assert await watermark(session) == D - timedelta(days=1)
    assert (await events_of(session, fam["id"]))[before:] == []  # her birthday (D) was the day that failed
    monkeypatch.setattr(age_repo, "insert_outbox", real)
    result = await sweep(session, D)
    assert [d.day for d in result.days] == [D]
    updated = [e for e in (await events_of(session, fam["id"]))[before:] if e["type"].endswith("updated.v1")]
    assert len(updated) == 1


# ------------------------------------------------------------------------------------------ on the wire


@pytest.mark.kafka
async def test_the_change_reaches_kafka_dated_on_the_birthday(
    registry_url: str, topic_factory: Callable[..., Awaitable[str]], kafka_bootstrap: str
) -> None:
    topic = await topic_factory("registry-ages")
    engine = create_engine(registry_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    saved: date | None = None
    try:
        async with sessionmaker() as s, s.begin():
            saved = await age_repo.last_swept_on(s)
            await s.execute(delete(age_repo.AgeSweep))
        with pytest.MonkeyPatch.context() as m:
            for module in (families_service, families_facts, families_registration):
                m.setattr(module, "today", lambda: D - timedelta(days=1))
            async with running_app(create_app(Settings(database_url=registry_url))) as client:
                fam = await register(client, [husband(), wife(add_months(D, -600))])
        async with sessionmaker() as s:
            async with s.begin():
                await age_repo.advance(s, D - timedelta(days=1))
            await sweep(s, D)
        relay = Relay(
            service="registry-test",
            sessionmaker=sessionmaker,
            table=outbox,
            bootstrap_servers=kafka_bootstrap,
            topic_for=lambda _t: topic,
        )
        try:
            while await relay.publish_batch():
                pass
        finally:
            await relay._reset_producer()

        def updated(records: list[Any]) -> list[dict[str, Any]]:
            envs = [orjson.loads(r.value) for r in records]
            return [
                e
                for e in envs
                if e["type"] == "registry.person.updated.v1" and e["partitionkey"] == fam["id"]
            ]

        records = await consume(topic, until=lambda rs: bool(updated(rs)), timeout=60)
        (env,) = updated(records)
        assert env["data"]["pus"] is False
        assert env["time"] == start_of(D).isoformat() == f"{D.isoformat()}T00:00:00+07:00"
        assert date.fromisoformat(env["time"][:10]) == D
    finally:
        async with sessionmaker() as s, s.begin():
            await s.execute(delete(age_repo.AgeSweep))
            if saved is not None:
                await age_repo.advance(s, saved)
        await engine.dispose()


# ------------------------------------------------------------------------------------------ command line


def test_command_refuses_a_day_not_yet_begun_and_a_malformed_one() -> None:
    from kencana_cli.main import app
    from typer.testing import CliRunner

    runner = CliRunner()
    r = runner.invoke(app, ["registry", "sweep-ages", "--on", "2026-13-01"])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output
    r = runner.invoke(app, ["registry", "sweep-ages", "--on", (date.today() + timedelta(days=3)).isoformat()])
    assert r.exit_code == 2 and "has not begun" in r.output


def test_command_sweeps_through_the_day_given(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from kencana_cli.main import app
    from typer.testing import CliRunner

    async def watermark_now(value: date | None = None, *, reset: bool = False) -> date | None:
        engine = create_engine(registry_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as s, s.begin():
                seen = await age_repo.last_swept_on(s)
                if reset:
                    await s.execute(delete(age_repo.AgeSweep))
                if value is not None:
                    await age_repo.advance(s, value)
                return seen
        finally:
            await engine.dispose()

    saved = asyncio.run(watermark_now(D - timedelta(days=2), reset=True))
    try:
        monkeypatch.setenv("REGISTRY_DATABASE_URL", registry_url)
        r = CliRunner().invoke(app, ["registry", "sweep-ages", "--on", D.isoformat()])
        assert r.exit_code == 0, r.output
        assert f"swept 2 day(s) through {D.isoformat()}" in r.output
        assert asyncio.run(watermark_now()) == D
    finally:
        asyncio.run(watermark_now(saved, reset=True))


def test_the_daily_schedule_in_jakarta_time() -> None:
    from datetime import UTC, datetime

    from shared.daily import due_through, seconds_to_next_run

    # 17:30 UTC is 00:30 WIB the next day: before the 01:00 run, the day due is the WIB yesterday.
    now = datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    assert due_through(now, 1).date() == date(2026, 12, 1)
    assert seconds_to_next_run(now, 1) == 30 * 60
    later = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 01:00 WIB on 2 December: that day is due
    assert due_through(later, 1).date() == date(2026, 12, 2)
    assert seconds_to_next_run(later, 1) == 3600  # next run in a day; looked at again within the hour
