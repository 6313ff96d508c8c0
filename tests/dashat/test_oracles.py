"""Issue 12 item 2 on DASHAT: another region's person, kitchen or enrolment answers like one that does not exist.

The audit's case: `POST /v1/enrolments` at one's own kitchen for a person of another region answered with their
sex and exact age in months ("requires a child under 24 months (this one is 547)"), where an unknown id said
"the person is not known".
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import business_today
from tests.dashat.conftest import deliver, envelope, fresh_village, months_ago, person
from tests.dashat.helpers import OTHER, RW
from tests.shared.oracles import comparable, compare_everywhere

pytestmark = pytest.mark.integration

ELSEWHERE = "15.71.01.1001"  # outside the RW token's region 33


async def kitchen_in(client: Any, village: str) -> dict[str, Any]:
    body = {
        "name": "Dapur Sehat Oracle",
        "village_code": village,
        "management_model": "combined",
        "capacity_per_day": 5,
        "opened_on": (business_today() - timedelta(days=40)).isoformat(),
    }
    r = await client.post("/v1/kitchens", json=body, headers=RW)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_enrolling_another_regions_person_answers_like_an_unknown_id(
    client: Any, session: AsyncSession
) -> None:
    kitchen = await kitchen_in(client, fresh_village())
    man, woman, fid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # A man of 547 months and a woman of another region, as the registry's events describe them.
    await deliver(session, envelope(person(man, fid, ELSEWHERE, sex="L", birth_date=months_ago(547.5))))
    await deliver(session, envelope(person(woman, fid, ELSEWHERE, sex="P")))
    for category in ("baduta_stunting", "balita_stunting", "ibu_hamil", "ibu_menyusui", "catin"):
        for someone in (man, woman):
            answers = []
            for pid in (someone, uuid.uuid4()):
                body = {"person_id": str(pid), "kitchen_id": kitchen["id"], "category": category}
                answers.append(await client.post("/v1/enrolments", json=body, headers=RW))
            assert comparable(answers[0]) == comparable(answers[1]), (category, answers[0].text)
            problem = answers[0].json()
            assert answers[0].status_code == 422 and problem["errors"][0]["rule"] == "person.unknown"
            for leak in ("547", "month", "woman", "sex", "died", "moved", "area"):
                assert leak not in answers[0].text, (category, leak)


async def test_every_id_of_another_region_answers_like_no_record(client: Any, session: AsyncSession) -> None:
    village = fresh_village()
    kitchen = await kitchen_in(client, village)
    mother, fid = uuid.uuid4(), uuid.uuid4()
    await deliver(session, envelope(person(mother, fid, village, sex="P", rw="001")))
    r = await client.post(
        "/v1/enrolments",
        json={"person_id": str(mother), "kitchen_id": kitchen["id"], "category": "ibu_hamil"},
        headers=RW,
    )
    assert r.status_code == 201, r.text
    real = {"kitchen_id": kitchen["id"], "enrolment_id": r.json()["id"], "person_id": str(mother)}
    nobody = {name: str(uuid.uuid4()) for name in real}
    # OTHER holds dashat:read and dashat:write for 15.71: everything above lies in 33.
    compared = await compare_everywhere(
        client,
        real=real,
        nobody=nobody,
        headers={**OTHER, "If-Match": '"1"'},
        personal=["1995-05-05", "istri"],
    )
    print({status: len(labels) for status, labels in sorted(compared.items())})
    assert sum(len(v) for v in compared.values()) >= 10, compared
