"""What each way of creating a person or sealing a number costs in SQL statements (issue 16: a refactor keeps it).

Registration itself is held at two statements by test_family_registration.py; these are the other paths that
create a person or seal a NIK/KK: a member added, a KK number changed, a child born, a NIK gained by a merge.
"""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from registry.identity.domain import make_kk
from sqlalchemy.ext.asyncio import AsyncSession

from tests.registry.conftest import auth, create_family, person, serial, sql_statements


def _kinds(sent: list[str]) -> str:
    """The first word of each statement (SELECT, INSERT, UPDATE...), in order: enough to see what the path does."""
    return " ".join(s.split(None, 1)[0].upper() for s in sent)


async def test_adding_a_member_with_a_nik(client: httpx.AsyncClient, session: AsyncSession) -> None:
    fam = await create_family(client)
    body = person("anak", date(2015, 1, 1), "L")
    with sql_statements(session) as sent:
        r = await client.post(f"/v1/families/{fam['id']}/members", json=body, headers=auth())
    assert r.status_code == 201, r.text
    # family (locked), NIK holder lookup, person, membership, family head/version, PersonRegistered outbox row;
    # then the KRS refresh: members, ongoing pregnancy, (no KRS change: no event), re-read of the person.
    assert _kinds(sent) == "SELECT SELECT INSERT INSERT INSERT SELECT SELECT SELECT", sent


async def test_changing_the_kk_number(client: httpx.AsyncClient, session: AsyncSession) -> None:
    fam = await create_family(client)
    new_kk = make_kk("15.71.01", date(2024, 6, 1), serial())
    with sql_statements(session) as sent:
        r = await client.patch(
            f"/v1/families/{fam['id']}",
            json={"kk_number": new_kk, "kk_change_reason": "pecah_kk"},
            headers={**auth(), "If-Match": '"1"'},
        )
    assert r.status_code == 200, r.text
    # family (locked), KK holder lookup, current history row; the flush writes the old history row's end, the
    # family and the new history row; FamilyUpdated; KRS refresh (members, pregnancy); re-read of the family.
    assert _kinds(sent) == "SELECT SELECT SELECT UPDATE UPDATE INSERT INSERT SELECT SELECT SELECT", sent


async def test_a_birth_creates_the_child(client: httpx.AsyncClient, session: AsyncSession) -> None:
    fam = await create_family(client)
    wife = fam["members"][1]
    lmp = date.today() - timedelta(days=200)
    r = await client.post(
        "/v1/pregnancies", json={"person_id": wife["id"], "lmp": lmp.isoformat()}, headers=auth()
    )
    assert r.status_code == 201, r.text
    end = {"outcome": "birth", "ended_on": date.today().isoformat(), "child": {"name": "Bayi", "sex": "P"}}
    with sql_statements(session) as sent:
        r = await client.post(
            f"/v1/pregnancies/{r.json()['id']}/end", json=end, headers={**auth(), "If-Match": '"1"'}
        )
    assert r.status_code == 200, r.text
    # pregnancy (locked), mother; the child: person, membership; the pregnancy ended and PregnancyEnded; the
    # child read back and PersonRegistered; KRS refresh (members, pregnancy), re-read of the pregnancy.
    assert _kinds(sent) == "SELECT SELECT INSERT INSERT UPDATE INSERT SELECT INSERT SELECT SELECT SELECT", (
        sent
    )


async def test_a_merge_hands_the_nik_to_the_survivor(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    birth = date.today() - timedelta(days=200)
    name = f"Merge {birth.isoformat()} Statements"
    fam_a = await create_family(
        client,
        members=[person("kepala_keluarga", date(1980, 2, 2), "L"), person("anak", birth, "L", name=name)],
    )
    fam_b = await create_family(
        client,
        members=[
            person("kepala_keluarga", date(1981, 3, 3), "L"),
            person("anak", birth, "L", with_nik=False, name=name),
        ],
    )
    with_nik = next(m for m in fam_a["members"] if m["relation"] == "anak")
    without = next(m for m in fam_b["members"] if m["relation"] == "anak")
    with sql_statements(session) as sent:
        r = await client.post(
            f"/v1/persons/{without['id']}/merge",
            json={"merged_person_id": with_nik["id"]},
            headers={**auth(), "If-Match": '"1"'},
        )
    assert r.status_code == 200, r.text
    assert r.json()["has_nik"] is True
    # Both persons (locked); the checks (pregnancy, case, KB status); the duplicate's membership ended and its
    # records repointed (membership, KB, measurement, case, pregnancy x2, catin, guardian); its NIK released and
    # its tombstone, the survivor's NIK sealed; PersonsMerged, PersonUpdated; KRS refresh of both families (one
    # status changed: an UPDATE and its event); the survivor re-read.
    assert _kinds(sent) == " ".join(
        ["SELECT"] * 5 + ["UPDATE"] * 12 + ["INSERT"] * 2 + ["SELECT"] * 4 + ["UPDATE", "INSERT", "SELECT"]
    ), sent
