"""Life changes through the real broker: loss, move, merge and a KRS change, applied by a ConsumerRunner."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dashat.config import Settings
from dashat.consumer import BATCH_HANDLER, HANDLERS, TOPICS
from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.models import inbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.consumer import ConsumerRunner
from shared.events import CloudEvent, EventData
from shared.events import registry as reg
from shared.runtime import ensure_service_topics
from shared.testing.plugin import unique
from tests.dashat.conftest import ended, envelope, fresh_village, moved, pregnancy, stunting
from tests.dashat.helpers import open_kitchen
from tests.dashat.test_events import _produce

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def test_consumer_applies_loss_move_merge_and_priority(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    settings = Settings(topic_suffix="." + unique())
    await ensure_service_topics(settings, TOPICS)
    village, new_village, full_village = fresh_village(), fresh_village(), fresh_village()
    async with sm() as session:
        await open_kitchen(session, village)
        new_kitchen = await open_kitchen(session, new_village)
        await open_kitchen(session, full_village, capacity=0)
    t0 = datetime.now(UTC)
    mother, mother_fid = uuid.uuid4(), uuid.uuid4()
    preg = pregnancy(mother, mother_fid, village)
    mover, mover_fid = uuid.uuid4(), uuid.uuid4()
    merged, survivor, twin_fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    waiter, waiter_fid = uuid.uuid4(), uuid.uuid4()
    risk = reg.StuntingRiskChanged(
        family_id=waiter_fid,
        village_code=full_village,
        at_risk=True,
        reasons=["no_clean_water"],
        welfare_decile=1,
        rule_version="t",
    )

    def at(env_data: EventData, fid: uuid.UUID, seconds: int) -> CloudEvent:
        return envelope(env_data, key=str(fid), time=t0 + timedelta(seconds=seconds))

    events = [
        at(preg, mother_fid, 0),
        at(ended(preg, "loss"), mother_fid, 1),
        at(stunting(mover, mover_fid, village), mover_fid, 0),
        at(moved(mover, mover_fid, village, new_village), mover_fid, 1),
        at(stunting(merged, twin_fid, village), twin_fid, 0),
        at(stunting(survivor, twin_fid, village), twin_fid, 1),
        at(reg.PersonsMerged(person_id=survivor, merged_person_id=merged, family_id=twin_fid), twin_fid, 2),
        at(stunting(waiter, waiter_fid, full_village, decile=8, krs=False), waiter_fid, 0),
        at(risk, waiter_fid, 1),
    ]
    await _produce(kafka_bootstrap, settings.topic("kencana.registry"), events)
    runner = ConsumerRunner(
        name=f"dashat.projector{settings.topic_suffix}",
        topics=[settings.topic(t) for t in TOPICS],
        handlers=HANDLERS,
        batch_handler=BATCH_HANDLER,
        sessionmaker=sm,
        inbox=inbox,
        bootstrap_servers=kafka_bootstrap,
        backoff_seconds=0.01,
    )
    await runner.start()
    try:
        async with asyncio.timeout(60):
            while runner.outcome.applied + runner.outcome.dead_lettered < len(events):
                await runner.poll_once(timeout_ms=300)
    finally:
        await runner.close()
    assert (runner.outcome.applied, runner.outcome.dead_lettered) == (len(events), 0)
    async with sm() as s:
        rows = (
            await s.execute(
                select(Enrolment).where(Enrolment.person_id.in_([mother, mover, merged, survivor]))
            )
        ).scalars()
        got: dict[uuid.UUID, list[tuple[str, str | None, uuid.UUID]]] = {}
        for e in rows:
            got.setdefault(e.person_id, []).append((e.status, e.exit_reason, e.kitchen_id))
        [w] = (await s.execute(select(WaitlistEntry).where(WaitlistEntry.person_id == waiter))).scalars()
    assert [(st, r) for st, r, _ in got[mother]] == [("exited", "pregnancy_lost")]
    assert sorted((st, r) for st, r, _ in got[mover]) == [("active", None), ("exited", "moved")]
    assert [k for st, _, k in got[mover] if st == "active"] == [new_kitchen.id]
    assert merged not in got
    assert sorted((st, r) for st, r, _ in got[survivor]) == [("active", None), ("exited", "merged")]
    assert (w.status, w.priority) == ("waiting", 1)
