"""Every way a place frees up gives it, in the same transaction, to the best waiting target of that place."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from dashat.enrolment import service as enrolment_service
from dashat.enrolment.models import Enrolment
from dashat.enrolment.schemas import EnrolmentExit
from dashat.kitchens.models import Kitchen
from dashat.kitchens.schemas import KitchenUpdate
from dashat.kitchens.service import update as update_kitchen
from dashat.models import outbox
from dashat.people.models import PersonReplica
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from shared.events import registry as reg
from tests.dashat.conftest import (
    confirm_recovery,
    deliver,
    ended,
    envelope,
    fresh_village,
    moved,
    pregnancy,
    retracted,
    stunting,
)
from tests.dashat.helpers import ADMIN, enrolments, open_kitchen, waiting

pytestmark = pytest.mark.integration


@dataclass
class Place:
    village: str
    kitchen: Kitchen
    holder: uuid.UUID  # enrolled, holding the only place
    family: uuid.UUID
    data: reg.BadutaStuntingDetected | reg.PregnancyRegistered  # the event that enrolled the holder


Free = Callable[[AsyncSession, Place], Awaitable[None]]


async def _by_api_exit(session: AsyncSession, p: Place) -> None:
    [e] = await enrolments(session, p.holder)
    await enrolment_service.exit_enrolment(session, e.id, EnrolmentExit(reason="refused"), e.version, ADMIN)


async def _by_resolution(session: AsyncSession, p: Place) -> None:
    case = p.data
    assert isinstance(case, reg.BadutaStuntingDetected)
    await confirm_recovery(session, case)


async def _by_retraction(session: AsyncSession, p: Place) -> None:
    assert isinstance(p.data, reg.BadutaStuntingDetected)
    await deliver(session, envelope(retracted(p.data)))


async def _by_death(session: AsyncSession, p: Place) -> None:
    died = reg.PersonDied(
        person_id=p.holder, family_id=p.family, village_code=p.village, died_on=business_today()
    )
    await deliver(session, envelope(died))


async def _by_move(session: AsyncSession, p: Place) -> None:
    await deliver(session, envelope(moved(p.holder, p.family, p.village, fresh_village())))


async def _by_sweep_completion(session: AsyncSession, p: Place) -> None:
    async with session.begin():
        await session.execute(
            update(Enrolment)
            .where(Enrolment.person_id == p.holder)
            .values(planned_end_date=business_today() - timedelta(days=1))
        )
    assert await enrolment_service.sweep(session) is not None


async def _by_birth(session: AsyncSession, p: Place) -> None:
    assert isinstance(p.data, reg.PregnancyRegistered)
    await deliver(session, envelope(ended(p.data, "birth")))


async def _by_loss(session: AsyncSession, p: Place) -> None:
    assert isinstance(p.data, reg.PregnancyRegistered)
    await deliver(session, envelope(ended(p.data, "loss")))


async def _by_capacity(session: AsyncSession, p: Place) -> None:
    await update_kitchen(session, p.kitchen.id, KitchenUpdate(capacity_per_day=2), p.kitchen.version, ADMIN)


async def _resolved_events(session: AsyncSession, person_id: uuid.UUID) -> list[dict[str, str | None]]:
    async with session.begin():
        rows = await session.execute(
            select(outbox.c.envelope).where(outbox.c.event_type == "dashat.beneficiary.waitlist_resolved.v1")
        )
        found = [r[0]["data"] for r in rows if r[0]["data"]["person_id"] == str(person_id)]
    return [{k: d[k] for k in ("waitlist_id", "status", "resolution", "enrolment_id")} for d in found]


@pytest.mark.parametrize(
    ("free", "holder_is_pregnant"),
    [
        (_by_api_exit, False),
        (_by_resolution, False),
        (_by_retraction, False),
        (_by_death, False),
        (_by_move, False),
        (_by_sweep_completion, False),
        (_by_birth, True),
        (_by_loss, True),
        (_by_capacity, False),
    ],
    ids=lambda x: x.__name__.removeprefix("_by_") if callable(x) else None,
)
async def test_freed_place_goes_to_the_best_waiting_target(
    session: AsyncSession, free: Free, holder_is_pregnant: bool
) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village, capacity=1)
    holder, fid = uuid.uuid4(), uuid.uuid4()
    data: reg.BadutaStuntingDetected | reg.PregnancyRegistered
    if holder_is_pregnant:
        data = pregnancy(holder, fid, village, welfare_decile=10)
    else:
        # Measured 40 days ago: a confirmed recovery needs normal measurements a month apart after it.
        data = stunting(
            holder, fid, village, decile=10, krs=False, measured_on=business_today() - timedelta(days=40)
        )
    await deliver(session, envelope(data))
    best, next_best = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(next_best, uuid.uuid4(), village, decile=6, krs=False)))
    await deliver(session, envelope(stunting(best, uuid.uuid4(), village, decile=1, krs=True)))
    [w] = await waiting(session, best)
    await free(session, Place(village, kitchen, holder, fid, data))
    [e] = await enrolments(session, best)
    assert (e.status, e.kitchen_id, e.waitlist_id) == ("active", kitchen.id, w.id)
    assert await enrolments(session, next_best) == []
    async with session.begin():
        published = [
            r[0]["data"]
            for r in await session.execute(
                select(outbox.c.envelope).where(outbox.c.event_type == "dashat.beneficiary.enrolled.v1")
            )
        ]
    assert [x["enrolment_id"] for x in published if x["person_id"] == str(best)] == [str(e.id)]
    assert [x["waitlist_id"] for x in published if x["person_id"] == str(best)] == [str(w.id)]
    # The queue tells that the entry left it (reporting counts who is waiting from these events).
    assert await _resolved_events(session, best) == [
        {"waitlist_id": str(w.id), "status": "enrolled", "resolution": "enrolled", "enrolment_id": str(e.id)}
    ]


async def test_rw_added_to_a_kitchen_enrols_its_waiting_targets(session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village, rws=["1"])
    child = uuid.uuid4()
    await deliver(session, envelope(stunting(child, uuid.uuid4(), village, rw="7")))
    [w] = await waiting(session, child)
    assert w.reason == "no_kitchen"
    await update_kitchen(session, kitchen.id, KitchenUpdate(rws=["1", "7"]), kitchen.version, ADMIN)
    [e] = await enrolments(session, child)
    assert (e.status, e.waitlist_id) == ("active", w.id)


async def test_a_waiting_target_known_to_have_died_is_not_enrolled(session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village, capacity=0)
    gone, alive = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(stunting(gone, uuid.uuid4(), village, decile=1)))
    await deliver(session, envelope(stunting(alive, uuid.uuid4(), village, decile=5)))
    async with session.begin():
        # The replica already knows; the waiting entry was not cancelled (e.g. replayed events, older data).
        await session.execute(
            update(PersonReplica).where(PersonReplica.person_id == gone).values(alive=False)
        )
    await update_kitchen(session, kitchen.id, KitchenUpdate(capacity_per_day=1), kitchen.version, ADMIN)
    assert await enrolments(session, gone) == []
    assert [(w.status, w.resolution) for w in await waiting(session, gone)] == [("cancelled", "died")]
    [w] = await waiting(session, gone)
    assert await _resolved_events(session, gone) == [
        {"waitlist_id": str(w.id), "status": "cancelled", "resolution": "died", "enrolment_id": None}
    ]
    assert [e.status for e in await enrolments(session, alive)] == ["active"]
