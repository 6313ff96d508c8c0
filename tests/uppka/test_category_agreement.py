"""Members' categories that change with age: reporting's stocks move in the month of the change, and uppka's own
indicators and reporting give the same members by category.

Members join through uppka's API with a join date before their birthday in month M (two months back): a remaja
turning 25 and a man turning 60 (the join's birthdays since are applied at once), a PUS wife turning 50 (the
registry's person event on her birthday), and a PUS wife of 30. uppka's outbox goes through real Kafka into
reporting's real consumer and database.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from reporting.config import Settings as ReportingSettings
from reporting.consumer import TOPICS
from reporting.main import create_app as create_reporting_app
from reporting.rebuild import rebuild
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from uppka.models import outbox

from shared.ages import add_months
from shared.clock import business_today
from shared.db import create_engine
from shared.events import CloudEvent
from shared.events.registry import PersonUpdated
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, bearer, recreate_database, running_app, unique
from tests.reporting.conftest import fact_snapshot, produce, project
from tests.uppka.conftest import apply, env, kb_change, make_group, person_facts

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

# A village no other uppka test writes to, so committed groups of other tests do not count here.
VILLAGE = "15.71.02.1006"
WIB = ZoneInfo("Asia/Jakarta")
CATEGORIES = ("remaja", "pus", "lansia", "lainnya")


def month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


async def test_categories_move_in_the_birthday_month_in_both(
    client: httpx.AsyncClient, session: AsyncSession, kafka_bootstrap: str
) -> None:
    m = add_months(business_today().replace(day=1), -2)
    bday = m.replace(day=15)
    joined = add_months(m, -3).isoformat()
    long_ago = datetime.combine(bday, time.min, tzinfo=WIB) - timedelta(days=400)
    g = await make_group(client, village_code=VILLAGE, founded_on=add_months(m, -12).isoformat())

    async def member(kb: str | None, **facts: object) -> tuple[object, str]:
        p = person_facts(village=VILLAGE, **facts)  # type: ignore[arg-type]
        await apply(session, env(p, p.family_id, time=long_ago))
        if kb is not None:
            await apply(session, env(kb_change(p, kb), p.family_id, time=long_ago + timedelta(seconds=1)))
        r = await client.post(
            f"/v1/groups/{g['id']}/members", json={"person_id": str(p.person_id), "joined_on": joined}
        )
        assert r.status_code == 201, r.text
        return p, str(r.json()["id"])

    await member(None, birth=add_months(bday, -12 * 25), marital="belum_kawin", pus=False, sex="P")
    wife50, _ = await member("pil", birth=add_months(bday, -12 * 50), marital="kawin", pus=True)
    await member(None, birth=add_months(bday, -12 * 30), marital="kawin", pus=True)
    await member(None, birth=add_months(bday, -12 * 60), marital="kawin", pus=False, sex="L")
    # The registry's age sweep: she leaves PUS on her 50th birthday (dated 00:00 WIB that day).
    left_pus = PersonUpdated(**{**wife50.model_dump(), "pus": False})  # type: ignore[attr-defined]
    await apply(session, env(left_pus, wife50.family_id, time=datetime.combine(bday, time.min, tzinfo=WIB)))  # type: ignore[attr-defined]

    rows = await session.execute(
        select(outbox.c.envelope).where(outbox.c.partition_key == g["id"]).order_by(outbox.c.seq)
    )
    envelopes = [CloudEvent.model_validate(r[0]) for r in rows]
    await session.commit()
    changes = [e for e in envelopes if e.type == "uppka.member.category_changed.v1"]
    assert sorted((c.data["previous_category"], c.data["category"]) for c in changes) == [  # type: ignore[index]
        ("lainnya", "lansia"),
        ("pus", "lainnya"),
        ("remaja", "lainnya"),
    ]
    assert {c.data["changed_on"] for c in changes} == {bday.isoformat()}  # type: ignore[index]

    url = await recreate_database(f"test_uppka_categories_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = ReportingSettings(database_url=url, topic_suffix="." + unique(), topic_partitions=3)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(url, pool_size=2)
    # By hand: before M, remaja 1 (25 on the 15th), PUS 2 (the wife of 49 using the pill, the wife of 30),
    # lainnya 1 (the man of 59); from M, lainnya 2 (the woman of 25, the wife of 50), PUS 1, lansia 1.
    expected = {
        month(add_months(m, -1)): ({"remaja": 1, "pus": 2, "lansia": 0, "lainnya": 1}, 0.5, 2),
        month(m): ({"remaja": 0, "pus": 1, "lansia": 1, "lainnya": 2}, 0.0, 1),
        month(add_months(m, 1)): ({"remaja": 0, "pus": 1, "lansia": 1, "lainnya": 2}, 0.0, 1),
    }
    try:
        await produce(settings, envelopes)
        await project(settings, engine, len(envelopes))
        # Replaying every topic into fresh tables gives the same facts as the incremental fold.
        before = await fact_snapshot(engine)
        await rebuild(settings, timeout=60)
        assert await fact_snapshot(engine) == before
        async with running_app(create_reporting_app(ReportingSettings(database_url=url))) as rep:
            for period, (by_category, participation, pus_members) in expected.items():
                own = (await client.get(f"/v1/groups/{g['id']}/indicators", params={"period": period})).json()
                assert own["members_by_category"] == by_category, period
                r = await rep.get(
                    f"/v1/regions/{VILLAGE}/summary?period={period}", headers=bearer("reporting:read")
                )
                assert r.status_code == 200, r.text
                seen = r.json()["indicators"]
                assert {c: seen[f"uppka_members_{c}"] for c in CATEGORIES} == by_category, period
                assert seen["uppka_members"] == 4
                assert seen["uppka_members_kb_participation"] == participation, period
                assert seen["uppka_members_kb_participation_denominator"] == pus_members, period
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
