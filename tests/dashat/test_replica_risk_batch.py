"""Families' stunting-risk (KRS) statuses applied set-based leave DASHAT exactly as its handlers one by one would.

Mixed polls: a status after its family's facts and members, a late (older) status, two statuses of a family, a
status before its family's facts, a status of a family a known person joins, of a family not seen yet, of a
family whose child was just found stunted; a measurement before and after its child's detection; the members
registered after a baby (who may enrol its mother).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dashat.consumer import BATCH_HANDLER, HANDLERS
from dashat.people.handlers import set_based_apart
from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import handle_one_by_one
from shared.events import registry as reg
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, person, stunting
from tests.dashat.helpers import open_kitchen
from tests.dashat.test_replica_batch import _deliveries, _family, _measured, _state

pytestmark = pytest.mark.integration


def _risk(
    family_id: uuid.UUID, village: str, at_risk: bool, decile: int | None = None
) -> reg.StuntingRiskChanged:
    return reg.StuntingRiskChanged(
        family_id=family_id,
        village_code=village,
        at_risk=at_risk,
        reasons=["air_minum", "jamban"] if at_risk else [],
        welfare_decile=decile,
        rule_version="krs-test",
    )


async def test_krs_statuses_set_based_match_the_handlers_one_by_one(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village, capacity=10)
    t = datetime.now(UTC)
    a, b, c, d, e, g, h, i, m, n = (uuid.uuid4() for _ in range(10))  # families
    a1, a2, b1, d1, g1, k1, l1, m1 = (uuid.uuid4() for _ in range(8))  # persons
    n1, n2, n3, n4, n5 = (uuid.uuid4() for _ in range(5))  # a family registered baby first
    before = [
        # b1 enrolled for stunting while family b had decile 2: its KRS status with a decile changes priority.
        envelope(_family(b, village, 2), time=t - timedelta(hours=2)),
        envelope(person(b1, b, village, sex="L", birth_date=months_ago(10)), time=t - timedelta(hours=2)),
        envelope(stunting(b1, b, village), time=t - timedelta(hours=2)),
        # d holds a newer KRS status than the poll's; g1 lives in family h so far.
        envelope(_family(d, village, 6), time=t - timedelta(hours=2)),
        envelope(person(d1, d, village), time=t - timedelta(hours=2)),
        envelope(_risk(d, village, True), time=t + timedelta(hours=1)),
        envelope(person(g1, h, village), time=t - timedelta(hours=2)),
    ]
    for env in before:
        await deliver(session, env)
    poll = [
        envelope(_family(a, village, 4), time=t),  # facts, members, then the status: set-based
        envelope(person(a1, a, village), time=t),
        envelope(person(a2, a, village, sex="L", relation="kepala_keluarga"), time=t),
        envelope(_risk(a, village, True), time=t),
        envelope(_risk(b, village, True, decile=9), time=t),  # decile and KRS: b1's priority follows
        envelope(_risk(c, village, True), time=t),  # two statuses of one family: the second one by one
        envelope(_risk(c, village, False, decile=3), time=t + timedelta(minutes=1)),
        envelope(_risk(d, village, False), time=t),  # older than held: nothing, the priority refreshed
        envelope(_risk(e, village, True, decile=5), time=t),  # a status before its family's facts
        envelope(_family(e, village, 7, updated=True), time=t),
        envelope(person(g1, g, village, updated=True), time=t),  # a known person joins g before its status
        envelope(_risk(g, village, True), time=t),
        envelope(_risk(i, village, True, decile=2), time=t),  # a family not seen yet
        # A measurement before its child's detection: set-based; after it: in order.
        envelope(person(k1, m, village, sex="L", birth_date=months_ago(30), relation="anak"), time=t),
        envelope(_measured(k1, m, village), time=t),
        envelope(stunting(k1, m, village, birth_date=months_ago(30)), time=t),
        envelope(_risk(m, village, True), time=t),  # its family touched by the detection: one by one
        envelope(person(m1, m, village), time=t),
        # A baby (one by one: it may enrol its mother), then an older child, a grandmother and a husband (new
        # persons no decision reads: set-based), then the wife (one by one, now her baby's mother), and her KRS.
        envelope(_family(n, village, 3), time=t),
        envelope(person(n1, n, village, sex="L", birth_date=months_ago(5), relation="anak"), time=t),
        envelope(person(n2, n, village, birth_date=months_ago(100), relation="anak"), time=t),
        envelope(person(n3, n, village, birth_date=months_ago(800), relation="orang_tua"), time=t),
        envelope(person(n4, n, village, sex="L", relation="kepala_keluarga"), time=t),
        envelope(person(n5, n, village), time=t),
        envelope(_risk(n, village, True), time=t),
        envelope(stunting(l1, i, village), time=t),
        envelope(_measured(l1, i, village), time=t),
    ]
    deliveries = _deliveries(poll)
    split = set_based_apart(deliveries, {g1: h}, baby_born_after=months_ago(24))
    assert [dl.envelope.id for dl in split.risks] == [poll[n].id for n in (3, 4, 5, 7, 8, 12)]
    assert [dl.envelope.id for dl in split.measurements] == [poll[14].id]
    apart = {dl.envelope.id for dl in [*split.families, *split.risks, *split.persons, *split.measurements]}
    assert poll[9].id not in apart and poll[11].id not in apart and poll[16].id not in apart
    assert {dl.data.person_id for dl in split.persons} >= {n2, n3, n4}
    held_back = [
        (type(dl.data).__name__, getattr(dl.data, "person_id", dl.data.family_id)) for dl in split.rest
    ]
    assert {("PersonRegistered", n1), ("PersonRegistered", n5), ("StuntingRiskChanged", n)} <= set(held_back)
    assert held_back[-1] == ("ChildMeasured", l1)  # measured after its detection: in order
    ids = [a1, a2, b1, d1, g1, k1, l1, m1, n1, n2, n3, n4, n5]
    fams = [a, b, c, d, e, g, h, i, m, n]
    async with session.begin():
        one_by_one = await session.begin_nested()
        await handle_one_by_one(session, HANDLERS, deliveries)
        await session.flush()
        expected = await _state(session, ids, fams)
        await one_by_one.rollback()
        session.expunge_all()
        batched = await session.begin_nested()
        await BATCH_HANDLER(session, deliveries)
        await session.flush()
        got = await _state(session, ids, fams)
        await batched.rollback()
    assert got == expected
    # Hand-checked: what applying the poll in order must leave.
    persons = {row["person_id"]: row for row in expected["persons"]}
    families = {row["family_id"]: row for row in expected["families"]}
    assert (persons[a1]["krs"], persons[a1]["krs_reasons"], persons[a1]["welfare_decile"]) == (
        True,
        ["air_minum", "jamban"],
        4,
    )
    assert (families[c]["krs"], families[c]["welfare_decile"]) == (False, 3)
    assert families[d]["krs"] is True and persons[d1]["krs"] is True
    assert families[e]["welfare_decile"] == 7 and families[e]["krs"] is True
    assert (families[i]["village_code"], families[i]["welfare_decile"], families[i]["krs"]) == (
        village,
        2,
        True,
    )
    assert persons[g1]["krs"] is True
    # b's priority: decile 9, at risk (9 * 2 - 1), the enrolment's version moved once.
    assert (b1, "baduta_stunting", "active", 17, 2) in expected["enrolments"]
    # The wife, registered after her baby, enrolled as a breastfeeding mother; her family at risk.
    assert [e[:3] for e in expected["enrolments"] if e[0] == n5] == [(n5, "ibu_menyusui", "active")]
    assert all(persons[x]["krs"] is True for x in (n1, n2, n3, n4, n5))
