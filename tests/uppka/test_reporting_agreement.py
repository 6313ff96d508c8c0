"""uppka's `GET /v1/indicators/reporting` and reporting's summary give the same reporting rate.

Groups are built through uppka's API (founded in the past, paused, dissolved, reports late and early); the events
uppka wrote to its outbox are produced to real Kafka topics and projected by reporting's real consumer into its
own database; then every month, quarter and year from the first founding to this month is compared.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from reporting.config import Settings as ReportingSettings
from reporting.consumer import TOPICS
from reporting.main import create_app as create_reporting_app
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from uppka.models import outbox

from shared.ages import add_months
from shared.clock import business_today
from shared.db import create_engine
from shared.events import CloudEvent
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, bearer, recreate_database, running_app, unique
from tests.reporting.conftest import produce, project
from tests.uppka.conftest import make_group

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

# A village no other uppka test writes to, so committed groups of other tests do not count here.
VILLAGE = "15.71.02.1005"
FIG = {
    "omzet": 900_000,
    "costs": 400_000,
    "capital_balance": 0,
    "members_present": 3,
    "active_members": 4,
    "new_kb_acceptors": 0,
    "mkjp_switchers": 0,
}
PAIRS = {
    "due": "uppka_groups_due",
    "on_time": "uppka_reports_on_time",
    "late": "uppka_reports_late",
    "missing": "uppka_reports_missing",
    "not_due": "uppka_reports_not_due",
    "reporting_rate": "uppka_reporting_rate",
    "completeness": "uppka_reporting_completeness",
    "existing": "uppka_groups_existing",
}


def month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


async def _status(client: httpx.AsyncClient, group: dict[str, Any], status: str, on: date) -> dict[str, Any]:
    r = await client.patch(
        f"/v1/groups/{group['id']}",
        json={"status": status, "status_changed_on": on.isoformat()},
        headers={"If-Match": f'"{group["version"]}"'},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _report(client: httpx.AsyncClient, group: dict[str, Any], period: date) -> None:
    r = await client.post(f"/v1/groups/{group['id']}/reports", json={"period": month(period), **FIG})
    assert r.status_code == 201, r.text


async def test_uppka_and_reporting_agree(
    client: httpx.AsyncClient, session: AsyncSession, kafka_bootstrap: str
) -> None:
    cur = business_today().replace(day=1)
    first = add_months(cur, -8)
    kkb = str(uuid.uuid4())
    a = await make_group(
        client, village_code=VILLAGE, founded_on=first.replace(day=5).isoformat(), kampung_kb_id=kkb
    )
    b = await make_group(
        client, village_code=VILLAGE, founded_on=add_months(first, 2).replace(day=20).isoformat()
    )
    c = await make_group(client, village_code=VILLAGE, founded_on=first.isoformat(), kampung_kb_id=kkb)
    b = await _status(client, b, "inactive", add_months(first, 4).replace(day=3))
    await _status(client, b, "active", add_months(first, 6))
    await _status(client, c, "dissolved", add_months(first, 5).replace(day=10))
    for g, m in ((a, first), (a, add_months(first, 1)), (b, add_months(first, 3)), (c, first)):
        await _report(client, g, m)  # past months, submitted today: late
    await _report(client, a, add_months(cur, -1))  # last month's: on time until the 10th
    await _report(client, a, cur)  # this month's: early, not due yet
    await _report(client, b, cur)

    keys = [a["id"], b["id"], c["id"]]
    rows = await session.execute(
        select(outbox.c.envelope).where(outbox.c.partition_key.in_(keys)).order_by(outbox.c.seq)
    )
    envelopes = [CloudEvent.model_validate(r[0]) for r in rows]
    await session.commit()  # ends the read's transaction (a savepoint of the rolled-back one)
    assert len(envelopes) >= 13

    url = await recreate_database(f"test_reporting_agree_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = ReportingSettings(database_url=url, topic_suffix="." + unique(), topic_partitions=3)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(url, pool_size=2)
    try:
        await produce(settings, envelopes)
        await project(settings, engine, len(envelopes))
        periods = [month(m) for m in (add_months(first, i) for i in range(9))]
        periods += sorted({f"{p[:4]}-Q{(int(p[5:7]) - 1) // 3 + 1}" for p in periods})
        periods += sorted({p[:4] for p in periods})
        compared = 0
        async with running_app(create_reporting_app(ReportingSettings(database_url=url))) as rep:
            for period in periods:
                own = (
                    await client.get("/v1/indicators/reporting", params={"region": VILLAGE, "period": period})
                ).json()
                r = await rep.get(
                    f"/v1/regions/{VILLAGE}/summary?period={period}", headers=bearer("reporting:read")
                )
                assert r.status_code == 200, r.text
                seen = r.json()["indicators"]
                assert {k: own[k] for k in PAIRS} == {k: seen[v] for k, v in PAIRS.items()}, period
                compared += int(own["due"] > 0)
        assert compared >= 6  # most periods have reports due: the comparison is not of zeros
        # First month: A and C due (B not founded); A's and C's reports arrived late -> rate 0, complete 1.
        first_month = (
            await client.get("/v1/indicators/reporting", params={"region": VILLAGE, "period": month(first)})
        ).json()
        assert (first_month["due"], first_month["late"], first_month["reporting_rate"]) == (2, 2, 0.0)
        assert first_month["completeness"] == 1.0
        now = (
            await client.get("/v1/indicators/reporting", params={"region": VILLAGE, "period": month(cur)})
        ).json()
        assert (now["due"], now["not_due"], now["reporting_rate"]) == (0, 2, None)  # A and B active
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])
