"""Every event says what it is about (`subject`) and what caused it (`causationid`): issue 17's envelopes."""

from __future__ import annotations

import uuid
from datetime import date

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.consumer import Delivery, handle_one_by_one
from shared.events.envelope import CloudEvent, EventData, build_envelope, event_types
from shared.events.registry import KbStatusChanged
from shared.events.uppka import MemberLeft
from shared.outbox import outbox_records, publish
from shared.testing.plugin import unique
from shared.web.context import reset_correlation_id, set_correlation_id
from tests.shared.conftest import ProbeHappened, outbox

VILLAGE = "15.71.01.1001"


def test_every_event_type_has_a_subject_and_a_key() -> None:
    for event_type, model in event_types().items():
        subject = model.subject_of({f: "x" for f in model.model_fields})
        assert subject is not None and subject.endswith("/x"), event_type
        assert model.key_aggregate() in model.model_fields, event_type


def kb_change(person_id: uuid.UUID) -> KbStatusChanged:
    return KbStatusChanged(
        person_id=person_id, family_id=uuid.uuid4(), village_code=VILLAGE, method="iud", is_user=True,
        mkjp=True, since=date(2026, 1, 2), pus=True,
    )  # fmt: skip


def test_subject_names_the_resource_and_a_request_is_the_cause() -> None:
    person = uuid.uuid4()
    env = build_envelope(kb_change(person), key="k", correlation_id="req-1")
    assert env.subject == f"person/{person}"
    assert (env.correlationid, env.causationid) == ("req-1", "req-1")
    member = uuid.uuid4()
    left = MemberLeft.model_validate(
        {"group_id": uuid.uuid4(), "member_id": member, "person_id": person, "village_code": VILLAGE,
         "left_on": "2026-02-01", "reason": "moved"}
    )  # fmt: skip
    assert build_envelope(left, key="g").subject == f"member/{member}"


def test_bulk_records_carry_each_events_own_subject() -> None:
    people = [uuid.uuid4() for _ in range(3)]
    facts = [
        (
            (KbStatusChanged, kb_change(p).model_dump()),
            "k",
        )
        for p in people
    ]
    records = outbox_records(facts, correlation_id="job-9")
    stored = [orjson.loads(r[4]) for r in records]
    assert [s["subject"] for s in stored] == [f"person/{p}" for p in people]
    assert {s["causationid"] for s in stored} == {"job-9"}


@pytest.mark.integration
async def test_an_event_published_while_handling_one_names_it_as_its_cause(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    label = unique("caused")
    upstream = build_envelope(ProbeHappened(key=label, n=1), key=label, correlation_id="req-42")

    async def handler(session: AsyncSession, env: CloudEvent, data: EventData) -> None:
        await publish(session, outbox, ProbeHappened(key=label, n=2), key=label)

    token = set_correlation_id(None)
    try:
        async with sessionmaker() as session, session.begin():
            await handle_one_by_one(
                session,
                {upstream.type: handler},
                [Delivery(upstream, ProbeHappened(key=label, n=1), topic="t", partition=0, offset=0)],
            )
    finally:
        reset_correlation_id(token)
    async with sessionmaker() as session:
        stored = (
            await session.execute(select(outbox.c.envelope).where(outbox.c.partition_key == label))
        ).scalar_one()
    assert stored["causationid"] == upstream.id
    assert stored["correlationid"] == "req-42"
