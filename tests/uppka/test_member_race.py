"""A member joining while the registry's KB change for that person is being applied never misses the change."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uppka.consumer import HANDLERS
from uppka.groups import service as groups
from uppka.groups.schemas import MemberCreate
from uppka.replicas import repository as replicas

from shared.auth import Principal
from shared.clock import business_today
from tests.uppka.conftest import env, group_body, kb_change, person_facts


async def test_join_waits_for_a_kb_change_in_flight_and_sees_it(sm: async_sessionmaker[AsyncSession]) -> None:
    from uppka.groups.schemas import GroupCreate

    from shared.events import parse_data

    principal = Principal(sub="t", scopes=frozenset({"uppka:read", "uppka:write"}))
    p = person_facts()
    async with sm() as s, s.begin():
        registered = env(p, p.family_id)
        await HANDLERS[registered.type](s, registered, parse_data(registered))
    group = (await groups.create_group(sm(), GroupCreate(**group_body()), principal, business_today())).group

    change = env(kb_change(p, "pil"), p.family_id)
    async with sm() as handler_session:
        await handler_session.begin()
        # The consumer is applying the KB change and holds the replica row...
        await HANDLERS[change.type](handler_session, change, parse_data(change))
        joining = asyncio.create_task(
            groups.add_member(
                sm(),
                group.id,
                MemberCreate(person_id=p.person_id, role="anggota"),
                principal,
                business_today(),
            )
        )
        await asyncio.sleep(1.0)
        assert not joining.done(), "the join must wait for the replica row"
        await handler_session.commit()
    member = await asyncio.wait_for(joining, timeout=30)
    assert member.kb_method == "pil"
    async with sm() as s:
        replica = await replicas.get_person(s, p.person_id)
    assert replica is not None and replica.kb_method == "pil"
