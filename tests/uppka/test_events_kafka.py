"""Events through the real broker: every uppka event published by the relay, registry/DASHAT events consumed,
and a registry KB status change reaching the member record through Kafka. Plus the model/migration drift check.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uppka.config import Settings
from uppka.main import create_app
from uppka.models import Base, load_all_models, outbox

from shared.clock import business_today
from shared.db import utcnow
from shared.events.registry import PersonDied
from shared.migrations import model_drift
from shared.outbox import Relay
from shared.runtime import ensure_service_topics
from shared.testing.plugin import bearer, consume, running_app, unique
from tests.uppka.conftest import (
    VILLAGE,
    WRITE,
    env,
    group_body,
    kb_change,
    kitchen_opened,
    person_facts,
    produce,
    run_until,
    runner,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def test_models_and_migrations_agree(db_url: str) -> None:
    load_all_models()
    assert await model_drift(db_url, Base.metadata) == []


@pytest.fixture
async def settings(db_url: str, kafka_bootstrap: str) -> Settings:
    s = Settings(database_url=db_url, topic_suffix="." + unique(), topic_partitions=3)
    await ensure_service_topics(s, ["kencana.uppka", "kencana.registry", "kencana.dashat"])
    return s


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API committing for real (the relay and the consumer need committed rows)."""
    async with running_app(create_app(settings)) as c:
        c.headers.update(bearer(WRITE, region="15.71"))
        yield c


def _relay(sm: async_sessionmaker[AsyncSession], settings: Settings) -> Relay:
    return Relay(
        service="uppka-test",
        sessionmaker=sm,
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_for=settings.topic,
    )


async def _drain(relay: Relay) -> None:
    async with asyncio.timeout(60):
        while await relay.publish_batch():
            pass


async def _feed(sm: async_sessionmaker[AsyncSession], settings: Settings, envelopes: list[object]) -> None:
    """Produce registry/DASHAT envelopes to this test's topics and consume them with the uppka handlers."""
    by_topic: dict[str, list[object]] = {}
    for e in envelopes:
        by_topic.setdefault(settings.topic("kencana." + e.type.split(".")[0]), []).append(e)  # type: ignore[attr-defined]
    for topic, items in by_topic.items():
        await produce(settings.kafka_bootstrap_servers, topic, items)  # type: ignore[arg-type]
    r = runner(sm, settings.kafka_bootstrap_servers, list(by_topic))
    await run_until(r, lambda: r.outcome.applied + r.outcome.duplicates >= len(envelopes))
    assert r.outcome.dead_lettered == 0


async def _types_on_topic(topic: str, keys: set[str], want: set[str]) -> dict[str, list[dict[str, object]]]:
    def seen(records: list[object]) -> set[str]:
        return {
            orjson.loads(r.value)["type"]  # type: ignore[attr-defined]
            for r in records
            if r.key.decode() in keys  # type: ignore[attr-defined]
        }

    records = await consume(topic, until=lambda rs: want <= seen(rs), timeout=45)
    out: dict[str, list[dict[str, object]]] = {}
    for r in records:
        if r.key is not None and r.key.decode() in keys:
            body = orjson.loads(r.value or b"{}")
            out.setdefault(body["type"], []).append(body)
    return out


async def test_registry_kb_status_change_reaches_member_through_kafka(
    sm: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> None:
    p = person_facts()
    t = utcnow()
    await _feed(
        sm,
        settings,
        [
            env(p, p.family_id, time=t - timedelta(minutes=2)),
            env(kb_change(p, "pil"), p.family_id, time=t - timedelta(minutes=1)),
        ],
    )
    g = (await api.post("/v1/groups", json=group_body())).json()
    m = (
        await api.post(f"/v1/groups/{g['id']}/members", json={"person_id": str(p.person_id), "role": "ketua"})
    ).json()
    assert (m["kb_method"], m["mkjp"]) == ("pil", False)

    change = kb_change(p, "implant", previous="pil", since=business_today())
    await _feed(sm, settings, [env(change, p.family_id, time=t)])

    got = (await api.get(f"/v1/groups/{g['id']}/members/{m['id']}")).json()
    assert (got["kb_method"], got["kb_user"], got["mkjp"], got["kb_changed_on"]) == (
        "implant",
        True,
        True,
        business_today().isoformat(),
    )
    await _drain(_relay(sm, settings))
    events = await _types_on_topic(
        settings.topic("kencana.uppka"), {g["id"]}, {"uppka.member.kb_status_changed.v1"}
    )
    (published,) = events["uppka.member.kb_status_changed.v1"]
    data = published["data"]
    assert data == {  # type: ignore[comparison-overlap]
        "group_id": g["id"],
        "member_id": m["id"],
        "person_id": str(p.person_id),
        "village_code": VILLAGE,
        "kb_method": "implant",
        "kb_user": True,
        "mkjp": True,
        "previous_mkjp": False,
        "changed_on": business_today().isoformat(),
    }
    assert published["partitionkey"] == g["id"]


async def test_every_uppka_event_reaches_the_topic(
    sm: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> None:
    ketua, other = person_facts(), person_facts()
    kitchen = kitchen_opened()
    t = utcnow() - timedelta(minutes=5)
    await _feed(
        sm,
        settings,
        [
            env(ketua, ketua.family_id, time=t),
            env(kb_change(ketua, "iud"), ketua.family_id, time=t),
            env(other, other.family_id, time=t),
            env(kitchen, kitchen.kitchen_id, time=t),
        ],
    )
    g = (await api.post("/v1/groups", json=group_body())).json()
    gid = g["id"]
    ok = [
        await api.post(
            f"/v1/groups/{gid}/members", json={"person_id": str(ketua.person_id), "role": "ketua"}
        ),
        await api.post(f"/v1/groups/{gid}/members", json={"person_id": str(other.person_id)}),
        await api.patch(f"/v1/groups/{gid}", json={"name": "UPPKA Sejahtera"}, headers={"If-Match": '"1"'}),
        await api.patch(f"/v1/groups/{gid}", json={"status": "inactive"}, headers={"If-Match": '"2"'}),
        await api.post(f"/v1/groups/{gid}/businesses", json={"name": "Tempe", "sector": "food_processing"}),
    ]
    figures = {
        "omzet": 2_000_000,
        "costs": 1_500_000,
        "capital_balance": 1_000_000,
        "members_present": 2,
        "active_members": 2,
        "new_kb_acceptors": 1,
        "mkjp_switchers": 0,
    }
    rep = await api.post(
        f"/v1/groups/{gid}/reports",
        json={
            "period": "2024-05",
            **figures,
            "dashat_contributions": [
                {"kitchen_id": str(kitchen.kitchen_id), "kind": "cash", "amount": 250_000}
            ],
        },
    )
    ok.append(rep)
    ok.append(
        await api.post(
            f"/v1/groups/{gid}/reports/{rep.json()['id']}/amendments",
            json={**figures, "omzet": 2_100_000, "reason": "koreksi"},
            headers={"If-Match": '"1"'},
        )
    )
    members = (await api.get(f"/v1/groups/{gid}/members")).json()["items"]
    ok.append(
        await api.post(
            f"/v1/groups/{gid}/activities",
            json={
                "activity_type": "orientation",
                "held_on": business_today().isoformat(),
                "attendee_member_ids": [x["id"] for x in members],
            },
        )
    )
    national = bearer(WRITE)
    year = 2030 + int(uuid.uuid4().int % 60)
    target = await api.post(
        "/v1/targets", json={"year": year, "province_code": "15", "target_groups": 40}, headers=national
    )
    ok.append(target)
    assert all(r.status_code in (200, 201) for r in ok), [r.text for r in ok if r.status_code >= 300]
    # Registry side effects: a KB change of a member, and a death that ends a membership.
    await _feed(
        sm,
        settings,
        [
            env(kb_change(other, "suntik"), other.family_id),
            env(
                PersonDied(
                    person_id=other.person_id,
                    family_id=other.family_id,
                    village_code=VILLAGE,
                    died_on=business_today(),
                ),
                other.family_id,
                time=utcnow() + timedelta(seconds=1),
            ),
        ],
    )

    await _drain(_relay(sm, settings))
    want = {
        "uppka.group.registered.v1",
        "uppka.group.updated.v1",
        "uppka.group.status_changed.v1",
        "uppka.member.joined.v1",
        "uppka.member.left.v1",
        "uppka.member.kb_status_changed.v1",
        "uppka.business.registered.v1",
        "uppka.report.submitted.v1",
        "uppka.report.amended.v1",
        "uppka.dashat_contribution.made.v1",
        "uppka.activity.held.v1",
        "uppka.target.set.v1",
    }
    events = await _types_on_topic(settings.topic("kencana.uppka"), {gid, target.json()["id"]}, want)
    assert set(events) == want
    assert events["uppka.member.left.v1"][0]["data"]["reason"] == "died"  # type: ignore[index]
    contribution = events["uppka.dashat_contribution.made.v1"][0]["data"]
    assert contribution["kitchen_id"] == str(kitchen.kitchen_id) and contribution["amount"] == 250_000  # type: ignore[index]
    amended = events["uppka.report.amended.v1"][0]["data"]
    assert amended["amendment_no"] == 1 and amended["profit"] == 600_000 and amended["late"] is True  # type: ignore[index]
    # Payloads never carry names or identity numbers.
    for items in events.values():
        for e in items:
            assert not {"name", "nik", "kk_number"} & set(e["data"]) or e["type"].startswith("uppka.group.")  # type: ignore[arg-type]


async def test_every_consumed_event_type_through_kafka(
    sm: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    from sqlalchemy import select
    from uppka.consumer import HANDLERS
    from uppka.replicas.models import KitchenReplica, PersonReplica

    from shared.events.dashat import KitchenClosed, KitchenUpdated
    from shared.events.registry import FamilyMoved, PersonMoved, PersonsMerged, PersonUpdated

    a, b, dup = person_facts(), person_facts(), person_facts()
    k = kitchen_opened()
    t = utcnow() - timedelta(minutes=10)
    other = "15.71.01.1002"
    envelopes = [
        env(a, a.family_id, time=t),
        env(b, b.family_id, time=t),
        env(dup, dup.family_id, time=t),
        env(
            PersonUpdated(**{**a.model_dump(), "marital_status": "cerai_mati"}),
            a.family_id,
            time=t + timedelta(seconds=1),
        ),
        env(
            PersonMoved(
                person_id=b.person_id,
                from_family_id=b.family_id,
                family_id=b.family_id,
                from_village_code=VILLAGE,
                village_code=other,
                moved_on=business_today(),
            ),
            b.family_id,
            time=t + timedelta(seconds=1),
        ),
        env(
            FamilyMoved(
                family_id=a.family_id,
                from_village_code=VILLAGE,
                village_code=other,
                moved_on=business_today(),
            ),
            a.family_id,
            time=t + timedelta(seconds=2),
        ),
        env(
            PersonsMerged(person_id=a.person_id, merged_person_id=dup.person_id, family_id=a.family_id),
            a.family_id,
        ),
        env(kb_change(a, "mow"), a.family_id, time=t + timedelta(seconds=3)),
        env(
            PersonDied(
                person_id=b.person_id, family_id=b.family_id, village_code=other, died_on=business_today()
            ),
            b.family_id,
        ),
        env(k, k.kitchen_id, time=t),
        env(
            KitchenUpdated(**{**k.model_dump(exclude={"opened_on"}), "capacity_per_day": 60}),
            k.kitchen_id,
            time=t + timedelta(seconds=1),
        ),
        env(
            KitchenClosed(kitchen_id=k.kitchen_id, village_code=VILLAGE, closed_on=business_today()),
            k.kitchen_id,
            time=t + timedelta(seconds=2),
        ),
    ]
    assert {e.type for e in envelopes} == set(HANDLERS)
    await _feed(sm, settings, envelopes)
    async with sm() as s:
        people = {
            p.person_id: p
            for p in (
                await s.execute(
                    select(PersonReplica).where(
                        PersonReplica.person_id.in_([a.person_id, b.person_id, dup.person_id])
                    )
                )
            ).scalars()
        }
        kitchen = (
            await s.execute(select(KitchenReplica).where(KitchenReplica.kitchen_id == k.kitchen_id))
        ).scalar_one()
    assert people[a.person_id].marital_status == "cerai_mati" and people[a.person_id].village_code == other
    assert people[a.person_id].kb_method == "mow" and people[a.person_id].mkjp
    assert people[b.person_id].village_code == other and people[b.person_id].died_on == business_today()
    assert people[dup.person_id].merged_into == a.person_id
    assert kitchen.capacity_per_day == 60 and kitchen.closed_on == business_today()
