"""Breastfeeding mothers the registry knows are enrolled (ibu_menyusui), not only DASHAT pregnancies.

A woman is a target when a baby under six completed months (seed version) is in her family card (relation anak)
or the registry records a birth; her enrolment runs until the baby's six-month day.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from dashat.enrolment import service as enrolment_service
from dashat.enrolment.schemas import EnrolmentExit
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.ages import add_months
from shared.clock import business_today
from shared.events import registry as reg
from tests.dashat.conftest import deliver, ended, envelope, fresh_village, person, pregnancy
from tests.dashat.helpers import ADMIN, enrolments, open_kitchen, waiting
from tests.dashat.test_recovery import _enrolments_of, _through_consumer

pytestmark = pytest.mark.integration

SEED = "dashat-enrolment-2026.1"


def _family(village: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """(family, husband, wife, baby) ids."""
    return uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _baby(pid: uuid.UUID, fid: uuid.UUID, village: str, born: date, **kw: object) -> reg.PersonFacts:
    return person(pid, fid, village, sex="L", birth_date=born, relation="anak", **kw)  # type: ignore[arg-type]


async def test_a_mother_with_a_baby_in_her_family_card_is_enrolled_until_six_months(
    session: AsyncSession,
) -> None:
    village = fresh_village()
    kitchen = await open_kitchen(session, village)
    fid, husband, wife, baby = _family(village)
    born = business_today() - timedelta(days=61)
    await deliver(session, envelope(person(husband, fid, village, sex="L", relation="kepala_keluarga")))
    await deliver(session, envelope(person(wife, fid, village)))
    assert await enrolments(session, wife) == []
    await deliver(session, envelope(_baby(baby, fid, village, born)))
    [e] = await enrolments(session, wife)
    assert (e.category, e.status, e.kitchen_id, e.rule_id, e.rule_version) == (
        "ibu_menyusui",
        "active",
        kitchen.id,
        "registry_breastfeeding",
        SEED,
    )
    # Until the baby's six-month day (same day of the month, six months on).
    assert e.planned_end_date == add_months(born, 6)
    assert (e.trigger_ref, e.facts["evidence"], e.facts["child_birth_date"]) == (
        baby,
        "child_registered",
        born.isoformat(),
    )
    # Nobody else in the family, and the same facts again enrol nobody twice.
    await deliver(session, envelope(_baby(baby, fid, village, born, updated=True)))
    await deliver(session, envelope(person(wife, fid, village, updated=True)))
    assert len(await enrolments(session, wife)) == 1
    assert await enrolments(session, husband) == [] and await enrolments(session, baby) == []


async def test_a_baby_registered_before_its_mother(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    fid, _, wife, baby = _family(village)
    await deliver(session, envelope(_baby(baby, fid, village, business_today() - timedelta(days=10))))
    await deliver(session, envelope(person(wife, fid, village)))
    assert [e.category for e in await enrolments(session, wife)] == ["ibu_menyusui"]


async def test_a_female_head_of_family_is_the_mother(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    fid, _, head, baby = _family(village)
    await deliver(session, envelope(person(head, fid, village, relation="kepala_keluarga")))
    await deliver(session, envelope(_baby(baby, fid, village, business_today() - timedelta(days=30))))
    assert [e.category for e in await enrolments(session, head)] == ["ibu_menyusui"]


async def test_two_wives_is_ambiguous_until_the_registry_records_the_birth(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    fid, _, first, baby = _family(village)
    second = uuid.uuid4()
    born = business_today() - timedelta(days=20)
    await deliver(session, envelope(person(first, fid, village)))
    await deliver(session, envelope(person(second, fid, village)))
    await deliver(session, envelope(_baby(baby, fid, village, born)))
    assert await enrolments(session, first) == [] and await enrolments(session, second) == []
    # A birth recorded in the registry names the mother (she was no DASHAT pregnancy target).
    p = pregnancy(second, fid, village, kek=False, welfare_decile=9)
    birth = ended(p, "birth").model_copy(update={"ended_on": born, "child_person_id": baby})
    await deliver(session, envelope(birth))
    [e] = await enrolments(session, second)
    assert (e.rule_id, e.facts["evidence"], e.planned_end_date) == (
        "registry_breastfeeding",
        "birth_recorded",
        add_months(born, 6),
    )
    assert await enrolments(session, first) == []


@pytest.mark.parametrize(("months", "days_less", "enrolled"), [(6, 0, False), (6, 1, True)])
async def test_only_babies_under_six_completed_months(
    session: AsyncSession, months: int, days_less: int, enrolled: bool
) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    fid, _, wife, baby = _family(village)
    born = add_months(business_today(), -months) + timedelta(days=days_less)
    await deliver(session, envelope(person(wife, fid, village)))
    await deliver(session, envelope(_baby(baby, fid, village, born)))
    assert len(await enrolments(session, wife)) == (1 if enrolled else 0)


async def test_a_dashat_pregnancy_mother_is_not_enrolled_twice(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    fid, _, wife, baby = _family(village)
    await deliver(session, envelope(person(wife, fid, village)))
    p = pregnancy(wife, fid, village)  # KEK: a DASHAT target
    await deliver(session, envelope(p))
    await deliver(session, envelope(ended(p, "birth").model_copy(update={"child_person_id": baby})))
    await deliver(session, envelope(_baby(baby, fid, village, business_today())))
    rows = await enrolments(session, wife)
    assert sorted((e.category, e.status, e.rule_id) for e in rows) == [
        ("ibu_hamil", "completed", "pregnancy_at_risk"),
        ("ibu_menyusui", "active", "birth_breastfeeding"),
    ]
    # Her programme ends; the baby's facts change later: she is not enrolled again for the same baby.
    [menyusui] = [e for e in rows if e.category == "ibu_menyusui"]
    await enrolment_service.exit_enrolment(
        session, menyusui.id, EnrolmentExit(reason="completed"), menyusui.version, ADMIN
    )
    await deliver(session, envelope(_baby(baby, fid, village, business_today(), updated=True)))
    assert len([e for e in await enrolments(session, wife) if e.category == "ibu_menyusui"]) == 1


async def test_a_full_kitchen_waitlists_her(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=0)
    fid, _, wife, baby = _family(village)
    await deliver(session, envelope(person(wife, fid, village)))
    await deliver(session, envelope(_baby(baby, fid, village, business_today() - timedelta(days=5))))
    assert await enrolments(session, wife) == []
    [w] = await waiting(session, wife)
    assert (w.category, w.reason, w.rule_id, w.rule_version) == (
        "ibu_menyusui",
        "kitchen_full",
        "registry_breastfeeding",
        SEED,
    )
    # The same evidence again does not queue her twice.
    await deliver(
        session, envelope(_baby(baby, fid, village, business_today() - timedelta(days=5), updated=True))
    )
    assert len(await waiting(session, wife)) == 1


@pytest.mark.kafka
async def test_mother_and_baby_in_one_poll_through_the_consumer(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    village = fresh_village()
    async with sm() as session:
        await open_kitchen(session, village)
    fid, husband, wife, baby = _family(village)
    events = [
        envelope(person(husband, fid, village, sex="L", relation="kepala_keluarga"), key=str(fid)),
        envelope(person(wife, fid, village), key=str(fid)),
        envelope(_baby(baby, fid, village, business_today() - timedelta(days=40)), key=str(fid)),
        envelope(
            _baby(baby, fid, village, business_today() - timedelta(days=40), updated=True), key=str(fid)
        ),
    ]
    await _through_consumer(sm, kafka_bootstrap, events)
    assert [(e.category, e.status) for e in await _enrolments_of(sm, wife)] == [("ibu_menyusui", "active")]
    assert await _enrolments_of(sm, husband) == []
