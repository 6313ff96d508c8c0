"""The event-fed replicas: registry persons and DASHAT kitchens, tolerant of order and duplicates."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uppka.replicas.models import KitchenReplica, PersonReplica

from shared.clock import business_today
from shared.db import utcnow
from shared.events.dashat import KitchenClosed, KitchenUpdated
from shared.events.registry import FamilyMoved, PersonDied, PersonMoved, PersonsMerged, PersonUpdated
from tests.uppka.conftest import (
    OTHER_VILLAGE,
    VILLAGE,
    apply,
    env,
    kb_change,
    kitchen_opened,
    person_facts,
    produce,
    run_until,
    runner,
)

pytestmark = pytest.mark.integration


async def _person(session: AsyncSession, person_id: uuid.UUID) -> PersonReplica:
    session.expire_all()
    row = (
        await session.execute(select(PersonReplica).where(PersonReplica.person_id == person_id))
    ).scalar_one()
    await session.commit()
    return row


async def test_registered_then_kb_change(session: AsyncSession) -> None:
    p = person_facts()
    t = utcnow()
    await apply(session, env(p, p.family_id, time=t), env(kb_change(p, "iud"), p.family_id, time=t))
    r = await _person(session, p.person_id)
    assert r.facts_known and r.village_code == VILLAGE and r.sex == "P" and r.birth_date == p.birth_date
    assert (r.kb_method, r.is_user, r.mkjp, r.ever_kb_user) == ("iud", True, True, True)


async def test_older_update_is_ignored(session: AsyncSession) -> None:
    p = person_facts()
    t = utcnow()
    newer = PersonUpdated(**{**p.model_dump(), "marital_status": "cerai_hidup", "pus": False})
    older = PersonUpdated(**{**p.model_dump(), "village_code": OTHER_VILLAGE})
    await apply(session, env(p, p.family_id, time=t - timedelta(minutes=5)))
    await apply(session, env(newer, p.family_id, time=t))
    await apply(session, env(older, p.family_id, time=t - timedelta(minutes=1)))
    r = await _person(session, p.person_id)
    assert r.marital_status == "cerai_hidup" and r.village_code == VILLAGE and r.facts_at == t


async def test_kb_event_before_person_creates_placeholder(session: AsyncSession) -> None:
    p = person_facts()
    t = utcnow()
    await apply(session, env(kb_change(p, "implant"), p.family_id, time=t))
    r = await _person(session, p.person_id)
    assert not r.facts_known and r.kb_method == "implant" and r.village_code == VILLAGE
    await apply(session, env(p, p.family_id, time=t - timedelta(seconds=10)))
    r = await _person(session, p.person_id)
    assert r.facts_known and r.birth_date == p.birth_date and r.kb_method == "implant"


async def test_older_kb_change_is_ignored_but_proves_past_use(session: AsyncSession) -> None:
    p = person_facts()
    t = utcnow()
    await apply(session, env(kb_change(p, None), p.family_id, time=t))
    await apply(session, env(kb_change(p, "pil"), p.family_id, time=t - timedelta(days=1)))
    r = await _person(session, p.person_id)
    assert r.kb_method is None and not r.is_user and r.ever_kb_user


async def test_died_moved_family_moved_merged(session: AsyncSession) -> None:
    p = person_facts()
    q = person_facts(family_id=p.family_id)
    t = utcnow()
    await apply(session, env(p, p.family_id, time=t), env(q, p.family_id, time=t))
    await apply(
        session,
        env(
            FamilyMoved(
                family_id=p.family_id,
                from_village_code=VILLAGE,
                village_code=OTHER_VILLAGE,
                moved_on=business_today(),
            ),
            p.family_id,
            time=t + timedelta(seconds=1),
        ),
    )
    assert (await _person(session, q.person_id)).village_code == OTHER_VILLAGE
    await apply(
        session,
        env(
            PersonDied(
                person_id=p.person_id,
                family_id=p.family_id,
                village_code=OTHER_VILLAGE,
                died_on=business_today(),
            ),
            p.family_id,
        ),
    )
    assert (await _person(session, p.person_id)).died_on == business_today()
    await apply(
        session,
        env(
            PersonMoved(
                person_id=q.person_id,
                from_family_id=q.family_id,
                family_id=None,
                from_village_code=OTHER_VILLAGE,
                moved_on=business_today(),
            ),
            q.family_id,
            time=t + timedelta(seconds=2),
        ),
    )
    assert (await _person(session, q.person_id)).moved_out_on == business_today()
    survivor = person_facts()
    await apply(session, env(survivor, survivor.family_id, time=t))
    await apply(session, env(kb_change(p, "iud"), p.family_id, time=t))
    await apply(
        session,
        env(
            PersonsMerged(
                person_id=survivor.person_id, merged_person_id=p.person_id, family_id=survivor.family_id
            ),
            survivor.family_id,
        ),
    )
    assert (await _person(session, p.person_id)).merged_into == survivor.person_id
    assert (await _person(session, survivor.person_id)).ever_kb_user


async def test_kitchen_opened_updated_closed_out_of_order(session: AsyncSession) -> None:
    k = kitchen_opened()
    t = utcnow()
    closed = KitchenClosed(kitchen_id=k.kitchen_id, village_code=VILLAGE, closed_on=business_today())
    await apply(session, env(closed, k.kitchen_id, time=t + timedelta(seconds=2)))
    await apply(session, env(k, k.kitchen_id, time=t))
    updated = KitchenUpdated(**{**k.model_dump(exclude={"opened_on"}), "capacity_per_day": 99})
    await apply(session, env(updated, k.kitchen_id, time=t - timedelta(seconds=1)))
    session.expire_all()
    row = (
        await session.execute(select(KitchenReplica).where(KitchenReplica.kitchen_id == k.kitchen_id))
    ).scalar_one()
    assert row.facts_known and row.name == k.name and row.capacity_per_day == 40
    assert row.closed_on == business_today() and row.opened_on == k.opened_on


@pytest.mark.kafka
async def test_registry_and_dashat_events_through_kafka(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    reg = await topic_factory("registry")  # type: ignore[operator]
    dash = await topic_factory("dashat")  # type: ignore[operator]
    p = person_facts()
    k = kitchen_opened()
    envs = [env(p, p.family_id), env(kb_change(p, "mop"), p.family_id)]
    await produce(kafka_bootstrap, reg, [*envs, envs[1]])  # the KB event delivered twice
    await produce(kafka_bootstrap, dash, [env(k, k.kitchen_id)])
    r = runner(sm, kafka_bootstrap, [reg, dash])
    await run_until(r, lambda: r.outcome.applied + r.outcome.duplicates >= 4)
    assert r.outcome.applied == 3 and r.outcome.duplicates == 1 and r.outcome.dead_lettered == 0
    async with sm() as s:
        person = (
            await s.execute(select(PersonReplica).where(PersonReplica.person_id == p.person_id))
        ).scalar_one()
        kitchen = (
            await s.execute(select(KitchenReplica).where(KitchenReplica.kitchen_id == k.kitchen_id))
        ).scalar_one()
    assert person.kb_method == "mop" and person.mkjp and person.facts_known
    assert kitchen.name == k.name and kitchen.village_code == VILLAGE
