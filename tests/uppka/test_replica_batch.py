"""A poll applied through the batch handler leaves the replicas exactly as the handlers one by one would."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uppka.consumer import BATCH_HANDLER, HANDLERS
from uppka.replicas.models import PersonReplica

from shared.consumer import Delivery, handle_one_by_one
from shared.db import utcnow
from shared.events import CloudEvent, parse_data
from shared.events.registry import FamilyMoved, PersonRegistered
from tests.uppka.conftest import OTHER_VILLAGE, env, kb_change, person_facts

pytestmark = pytest.mark.integration


def _deliveries(envelopes: list[CloudEvent]) -> list[Delivery]:
    return [Delivery(e, parse_data(e), "kencana.registry", 0, i) for i, e in enumerate(envelopes)]


async def _rows(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    table = PersonReplica.__table__
    result = await session.execute(select(table).where(table.c.person_id.in_(ids)))
    return {row.person_id: dict(row._mapping) for row in result}


async def test_batch_handler_matches_the_handlers_one_by_one(sm: async_sessionmaker[AsyncSession]) -> None:
    t = utcnow()
    again, kb_user, moved, held_newer, placeholder = (person_facts() for _ in range(5))
    elsewhere = PersonRegistered(**{**again.model_dump(), "village_code": OTHER_VILLAGE})
    divorced = PersonRegistered(**{**again.model_dump(), "marital_status": "cerai_hidup", "pus": False})
    before = [
        env(held_newer, held_newer.family_id, time=t + timedelta(hours=1)),
        env(kb_change(placeholder, "pil"), placeholder.family_id, time=t - timedelta(hours=1)),
    ]
    poll = [
        env(again, again.family_id, time=t),
        env(
            elsewhere, again.family_id, time=t - timedelta(minutes=1)
        ),  # older: facts stay, time does not move
        env(divorced, again.family_id, time=t + timedelta(minutes=1)),  # newer: wins
        env(kb_user, kb_user.family_id, time=t),
        env(kb_change(kb_user, "iud"), kb_user.family_id, time=t),
        env(moved, moved.family_id, time=t),
        env(
            FamilyMoved(
                family_id=moved.family_id,
                from_village_code=moved.village_code,
                village_code=OTHER_VILLAGE,
                rw="009",
                moved_on=t.date(),
            ),
            moved.family_id,
            time=t + timedelta(minutes=2),
        ),
        env(PersonRegistered(**{**held_newer.model_dump(), "rw": "099"}), held_newer.family_id, time=t),
        env(placeholder, placeholder.family_id, time=t),
    ]
    ids = [p.person_id for p in (again, kb_user, moved, held_newer, placeholder)]
    async with sm() as session, session.begin():
        await handle_one_by_one(session, HANDLERS, _deliveries(before))
        one_by_one = await session.begin_nested()
        await handle_one_by_one(session, HANDLERS, _deliveries(poll))
        expected = await _rows(session, ids)
        await one_by_one.rollback()
        session.expunge_all()
        batched = await session.begin_nested()
        await BATCH_HANDLER(session, _deliveries(poll))
        await session.flush()
        got = await _rows(session, ids)
        await batched.rollback()
        await session.rollback()
    assert got == expected
    assert expected[again.person_id]["marital_status"] == "cerai_hidup"
    assert expected[moved.person_id]["village_code"] == OTHER_VILLAGE
    assert expected[held_newer.person_id]["rw"] != "099"
    assert (
        expected[placeholder.person_id]["facts_known"]
        and expected[placeholder.person_id]["kb_method"] == "pil"
    )
