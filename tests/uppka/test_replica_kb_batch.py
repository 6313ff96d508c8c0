"""KB statuses applied set-based by the batch handler leave uppka exactly as the handlers one by one would.

Mixed polls: registrations and KB statuses of the same persons in any order, late (older) statuses, a status
recorded again at the same instant, a repeated delivery, placeholders, a member's status (one by one: it is
copied to the membership and told to the group), statuses of persons another event of the poll touches.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from uppka.consumer import BATCH_HANDLER, HANDLERS
from uppka.groups.models import Member
from uppka.models import outbox
from uppka.replicas.models import PersonReplica

from shared.consumer import Delivery, handle_one_by_one
from shared.db import utcnow
from shared.events import CloudEvent, parse_data
from shared.events.registry import FamilyMoved, PersonUpdated
from tests.uppka.conftest import OTHER_VILLAGE, env, kb_change, make_group, person_facts, seed_person

pytestmark = pytest.mark.integration


def _deliveries(envelopes: list[CloudEvent]) -> list[Delivery]:
    return [Delivery(e, parse_data(e), "kencana.registry", 0, i) for i, e in enumerate(envelopes)]


async def _state(session: AsyncSession, ids: list[uuid.UUID]) -> dict[str, Any]:
    """The replica rows of the persons, their memberships and the outbox rows (without ids and times)."""
    replicas = PersonReplica.__table__
    rows = await session.execute(select(replicas).where(replicas.c.person_id.in_(ids)))
    members = await session.execute(
        select(Member.person_id, Member.kb_method, Member.kb_user, Member.mkjp, Member.kb_changed_on)
        .where(Member.person_id.in_(ids))
        .order_by(Member.person_id)
    )
    events = await session.execute(select(outbox.c.event_type, outbox.c.envelope).order_by(outbox.c.seq))
    return {
        "replicas": {row.person_id: dict(row._mapping) for row in rows},
        "members": [tuple(m) for m in members],
        "outbox": [(t, {k: v for k, v in p["data"].items() if k != "member_id"}) for t, p in events],
    }


async def test_kb_statuses_set_based_match_the_handlers_one_by_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    t = utcnow()
    group = await make_group(client)
    member = await seed_person(session, kb="pil")
    r = await client.post(f"/v1/groups/{group['id']}/members", json={"person_id": str(member.person_id)})
    assert r.status_code == 201, r.text
    held, placeholder, updated = person_facts(), person_facts(), person_facts()
    first_kb, registered, stopped, never, moving = (person_facts() for _ in range(5))
    for e in (
        env(held, held.family_id, time=t + timedelta(hours=1)),
        env(kb_change(held, "iud"), held.family_id, time=t + timedelta(hours=1)),
        env(kb_change(placeholder, "pil"), placeholder.family_id, time=t - timedelta(hours=1)),
        env(updated, updated.family_id, time=t - timedelta(hours=2)),
    ):
        await HANDLERS[e.type](session, e, parse_data(e))
    await session.flush()
    late_kondom = env(kb_change(registered, "kondom"), registered.family_id, time=t - timedelta(hours=1))
    poll = [
        # A status before its person's registration, the registration older than the status.
        env(kb_change(first_kb, "suntik"), first_kb.family_id, time=t),
        env(first_kb, first_kb.family_id, time=t - timedelta(minutes=1)),
        # A registration, its status, a late older status, a status again at the same instant: the first stays.
        env(registered, registered.family_id, time=t),
        env(kb_change(registered, "implant"), registered.family_id, time=t),
        late_kondom,
        env(kb_change(registered, "pil"), registered.family_id, time=t),
        late_kondom,  # delivered twice
        # Older than what is held: the status stays, having used KB is still proven.
        env(kb_change(held, "pil"), held.family_id, time=t),
        env(held.model_copy(update={"rw": "099"}), held.family_id, time=t),
        # A placeholder's facts arrive; an older status than its own changes nothing.
        env(placeholder, placeholder.family_id, time=t),
        env(kb_change(placeholder, "iud"), placeholder.family_id, time=t - timedelta(hours=2)),
        # A member's status: copied to the membership, the group told.
        env(kb_change(member, "iud", previous="pil"), member.family_id, time=t + timedelta(minutes=30)),
        # Stopped using: no method now, but a previous one proves use; never used: no proof.
        env(kb_change(stopped, None, previous="pil"), stopped.family_id, time=t),
        env(kb_change(never, None), never.family_id, time=t),
        # Touched by another event of the poll: in order, one by one.
        env(kb_change(updated, "mow"), updated.family_id, time=t),
        env(
            PersonUpdated(**{**updated.model_dump(), "marital_status": "cerai_hidup", "pus": False}),
            updated.family_id,
            time=t + timedelta(minutes=1),
        ),
        # A placeholder's family moves after its status in the poll: the move reaches it.
        env(kb_change(moving, "pil"), moving.family_id, time=t),
        env(
            FamilyMoved(
                family_id=moving.family_id,
                from_village_code=moving.village_code,
                village_code=OTHER_VILLAGE,
                rw="009",
                moved_on=t.date(),
            ),
            moving.family_id,
            time=t + timedelta(minutes=2),
        ),
    ]
    ids = [
        p.person_id
        for p in (member, held, placeholder, updated, first_kb, registered, stopped, never, moving)
    ]
    one_by_one = await session.begin_nested()
    await handle_one_by_one(session, HANDLERS, _deliveries(poll))
    expected = await _state(session, ids)
    await one_by_one.rollback()
    session.expunge_all()
    batched = await session.begin_nested()
    await BATCH_HANDLER(session, _deliveries(poll))
    await session.flush()
    got = await _state(session, ids)
    await batched.rollback()
    assert got == expected
    # Hand-checked: what applying the poll in order must leave.
    rows = expected["replicas"]
    assert (rows[first_kb.person_id]["kb_method"], rows[first_kb.person_id]["facts_known"]) == (
        "suntik",
        True,
    )
    assert rows[registered.person_id]["kb_method"] == "implant"
    assert rows[registered.person_id]["kb_at"] == t
    assert (rows[held.person_id]["kb_method"], rows[held.person_id]["rw"]) == ("iud", held.rw)
    assert rows[placeholder.person_id]["kb_method"] == "pil" and rows[placeholder.person_id]["facts_known"]
    assert (rows[stopped.person_id]["is_user"], rows[stopped.person_id]["ever_kb_user"]) == (False, True)
    assert (rows[never.person_id]["ever_kb_user"], rows[never.person_id]["facts_known"]) == (False, False)
    assert rows[never.person_id]["pus"] is True  # a placeholder's PUS comes from its status
    assert rows[updated.person_id]["kb_method"] == "mow" and rows[updated.person_id]["pus"] is False
    assert rows[moving.person_id]["village_code"] == OTHER_VILLAGE
    assert [m[1:4] for m in expected["members"]] == [("iud", True, True)]
    assert [e[0] for e in expected["outbox"]][-1] == "uppka.member.kb_status_changed.v1"
