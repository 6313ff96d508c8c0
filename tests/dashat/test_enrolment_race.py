"""A manual enrolment made while the registry's death of that person is being applied never outlives the death."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from dashat.consumer import HANDLERS
from dashat.enrolment import service as enrolment
from dashat.enrolment.schemas import EnrolmentCreate
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import business_today
from shared.errors import DomainError
from shared.events import parse_data
from shared.events.registry import PersonDied
from tests.dashat.conftest import deliver, envelope, fresh_village, person
from tests.dashat.helpers import ADMIN, enrolments, open_kitchen


async def test_enrolment_racing_a_death_ends_up_not_active(sm: async_sessionmaker[AsyncSession]) -> None:
    village = fresh_village()
    pid, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(sm(), envelope(person(pid, fid, village)))
    kitchen = await open_kitchen(sm(), village, rws=["001"])
    death = envelope(PersonDied(person_id=pid, family_id=fid, village_code=village, died_on=business_today()))

    async with sm() as handler_session:
        await handler_session.begin()
        # The consumer is applying the death and holds the person's replica row...
        await HANDLERS[death.type](handler_session, death, parse_data(death))
        body = EnrolmentCreate(person_id=pid, kitchen_id=kitchen.id, category="ibu_hamil")
        enrolling = asyncio.create_task(enrolment.enrol_manually(sm(), body, ADMIN))
        await asyncio.sleep(1.0)
        assert not enrolling.done(), "the enrolment must wait for the replica row"
        await handler_session.commit()
    with contextlib.suppress(DomainError):  # refused because the person died: a right outcome
        await asyncio.wait_for(enrolling, timeout=30)
    active = [e for e in await enrolments(sm(), pid) if e.status == "active"]
    assert active == [], "no active enrolment may survive the person's death"
