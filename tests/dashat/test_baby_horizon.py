"""A baby older than every rule version's breastfeeding age limit, and its mother, are applied set-based.

Only a baby under `ibu_menyusui_baby_months` (six in the seed) makes its mother a target; the batch handler sends
the facts of younger babies and of their mothers one by one, the rest set-based, and leaves DASHAT exactly as
the handlers one by one would. The limit is the longest of the versions in force today, wherever they apply.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from dashat.consumer import BATCH_HANDLER, HANDLERS
from dashat.enrolment.rules import DEFAULT_CONFIG
from dashat.people.handlers import set_based_apart
from dashat.ruleversions import repository as versions
from dashat.ruleversions.models import RuleVersion
from sqlalchemy.ext.asyncio import AsyncSession

from shared.ages import add_months
from shared.clock import business_today
from shared.consumer import handle_one_by_one
from tests.dashat.conftest import envelope, fresh_village, months_ago, person
from tests.dashat.helpers import open_kitchen
from tests.dashat.test_replica_batch import _deliveries, _family, _state

pytestmark = pytest.mark.integration


def _version(name: str, months: int, effective_from: date) -> RuleVersion:
    config = {**DEFAULT_CONFIG.to_json(), "ibu_menyusui_baby_months": months}
    return RuleVersion(
        version=name, region_prefix="99", effective_from=effective_from, config=config, created_by="test"
    )


async def test_the_longest_limit_in_force_today_counts(session: AsyncSession) -> None:
    today = business_today()
    async with session.begin():
        held = await versions.longest_breastfeeding_months(session, today)
        assert held >= 6  # the seed's six months (WHO: exclusive breastfeeding) at least
        session.add(_version(f"t-{uuid.uuid4().hex[:8]}", held + 3, today - timedelta(days=1)))
        await session.flush()
        assert await versions.longest_breastfeeding_months(session, today) == held + 3
        # A version that takes effect tomorrow does not decide today.
        session.add(_version(f"t-{uuid.uuid4().hex[:8]}", held + 10, today + timedelta(days=1)))
        await session.flush()
        assert await versions.longest_breastfeeding_months(session, today) == held + 3


async def test_older_babies_and_their_mothers_go_set_based_with_the_same_effects(
    session: AsyncSession,
) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=10)
    t = datetime.now(UTC)
    young, old = uuid.uuid4(), uuid.uuid4()  # families
    young_baby, young_mother, old_baby, old_mother = (uuid.uuid4() for _ in range(4))
    poll = [
        envelope(_family(young, village, 3), time=t),
        envelope(person(young_baby, young, village, birth_date=months_ago(3), relation="anak"), time=t),
        envelope(person(young_mother, young, village), time=t),
        envelope(_family(old, village, 3), time=t),
        envelope(person(old_baby, old, village, birth_date=months_ago(14), relation="anak"), time=t),
        envelope(person(old_mother, old, village), time=t),
    ]
    deliveries = _deliveries(poll)
    async with session.begin():
        longest = await versions.longest_breastfeeding_months(session, business_today())
    assert longest < 13, "a stored version in the test database allows babies of 14 months"
    split = set_based_apart(deliveries, {}, baby_born_after=add_months(business_today(), -(longest + 1)))
    assert {d.data.person_id for d in split.persons} == {old_baby, old_mother}
    assert {d.data.person_id for d in split.rest} == {young_baby, young_mother}
    ids = [young_baby, young_mother, old_baby, old_mother]
    async with session.begin():
        one_by_one = await session.begin_nested()
        await handle_one_by_one(session, HANDLERS, deliveries)
        await session.flush()
        expected = await _state(session, ids, [young, old])
        await one_by_one.rollback()
        session.expunge_all()
        batched = await session.begin_nested()
        await BATCH_HANDLER(session, deliveries)
        await session.flush()
        got = await _state(session, ids, [young, old])
        await batched.rollback()
    assert got == expected
    # Hand-checked: the mother of the three-month-old is a breastfeeding target, the other mother is not.
    assert [e[:3] for e in expected["enrolments"]] == [(young_mother, "ibu_menyusui", "active")]
    assert {p["person_id"] for p in expected["persons"]} == set(ids)
