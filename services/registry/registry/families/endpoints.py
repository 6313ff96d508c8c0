"""`/v1/kampung-kb`, `/v1/families`, `/v1/persons`: thin routers over the service layer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from registry.common import PII_READ, RegionQuery
from registry.deps import IfMatch, NikSearcher, PurposeDep, Reader, SearchPurposeDep, VaultDep, Writer
from registry.families import repository as repo
from registry.families import service
from registry.families.schemas import (
    AccessLogRead,
    FamilyCreate,
    FamilyMove,
    FamilyRead,
    FamilyUpdate,
    FamilyWithMembers,
    KampungKbCreate,
    KampungKbRead,
    KampungKbUpdate,
    KkHistoryRead,
    MembershipRead,
    PersonDeath,
    PersonInput,
    PersonMove,
    PersonRead,
    PersonSearch,
    PersonUpdate,
)
from shared.auth import Principal, require_scopes
from shared.db import read_only
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import set_etag
from shared.web.idempotency import READ_ONLY_POST
from shared.web.pagination import Page, UpdatedSince
from shared.web.problems import PROBLEM_RESPONSES
from shared.web.ratelimit import PERSONAL_DATA_SEARCH

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
PiiReader = Annotated[Principal, require_scopes(PII_READ)]
ETAG_HEADER = {
    "ETag": {"description": "Version of the resource; send it back as If-Match", "schema": {"type": "string"}}
}


# ------------------------------------------------------------------------------------------ Kampung KB


@router.post(
    "/kampung-kb",
    status_code=201,
    response_model=KampungKbRead,
    tags=["kampung-kb"],
    summary="Designate a Kampung KB",
)
async def create_kampung_kb(
    body: KampungKbCreate, session: SessionDep, response: Response, principal: Writer
) -> KampungKbRead:
    row = await service.create_kampung_kb(session, principal, body)
    set_etag(response, row.version)
    return KampungKbRead.from_domain(row)


@router.get(
    "/kampung-kb",
    response_model=Page[KampungKbRead],
    tags=["kampung-kb"],
    summary="Kampung KB list / change feed",
)
async def list_kampung_kb(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    active: bool | None = None,
    updated_since: UpdatedSince = None,
) -> Page[KampungKbRead]:
    rows, cursor = await read_only(
        session,
        repo.kampung_kb_page,
        principal,
        page,
        region=region,
        active=active,
        updated_since=updated_since,
    )
    return Page(items=[KampungKbRead.from_domain(r) for r in rows], next_cursor=cursor)


@router.get(
    "/kampung-kb/{kkb_id}",
    response_model=KampungKbRead,
    tags=["kampung-kb"],
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_kampung_kb(
    kkb_id: uuid.UUID, session: SessionDep, response: Response, principal: Reader
) -> KampungKbRead:
    row = await service.get_kampung_kb(session, principal, kkb_id)
    set_etag(response, row.version)
    return KampungKbRead.from_domain(row)


@router.patch(
    "/kampung-kb/{kkb_id}",
    response_model=KampungKbRead,
    tags=["kampung-kb"],
    summary="Update (If-Match required)",
)
async def update_kampung_kb(
    kkb_id: uuid.UUID,
    body: KampungKbUpdate,
    expected: IfMatch,
    session: SessionDep,
    response: Response,
    principal: Writer,
) -> KampungKbRead:
    row = await service.update_kampung_kb(session, principal, kkb_id, body, expected)
    set_etag(response, row.version)
    return KampungKbRead.from_domain(row)


# ------------------------------------------------------------------------------------------ families


@router.post(
    "/families",
    status_code=201,
    response_model=FamilyWithMembers,
    tags=["families"],
    summary="Register a family with its head and members",
)
async def create_family(
    body: FamilyCreate, session: SessionDep, vault: VaultDep, response: Response, principal: Writer
) -> FamilyWithMembers:
    family, persons = await service.register_family(session, vault, principal, body)
    set_etag(response, family.version)
    response.headers["Location"] = f"/v1/families/{family.id}"
    return FamilyWithMembers.with_members(family, persons)


@router.get(
    "/families", response_model=Page[FamilyRead], tags=["families"], summary="Families list / change feed"
)
async def list_families(
    session: SessionDep,
    vault: VaultDep,
    page: PageDep,
    principal: Reader,
    purpose: PurposeDep,
    region: RegionQuery = None,
    kampung_kb_id: uuid.UUID | None = None,
    krs: Annotated[bool | None, Query(description="Only families at risk of stunting (or not)")] = None,
    updated_since: UpdatedSince = None,
) -> Page[FamilyRead]:
    families, revealed, cursor = await service.list_families(
        session,
        vault,
        principal,
        purpose,
        page,
        region=region,
        kampung_kb_id=kampung_kb_id,
        krs=krs,
        updated_since=updated_since,
    )
    return Page(items=[FamilyRead.from_domain(f, revealed) for f in families], next_cursor=cursor)


@router.get(
    "/families/{family_id}",
    response_model=FamilyWithMembers,
    tags=["families"],
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_family(
    family_id: uuid.UUID,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Reader,
    purpose: PurposeDep,
) -> FamilyWithMembers:
    family, members, revealed = await service.get_family(session, vault, principal, family_id, purpose)
    set_etag(response, family.version)
    return FamilyWithMembers.with_members(family, members, revealed)


@router.patch(
    "/families/{family_id}",
    response_model=FamilyRead,
    tags=["families"],
    summary="Update facts (If-Match required)",
)
async def update_family(
    family_id: uuid.UUID,
    body: FamilyUpdate,
    expected: IfMatch,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Writer,
) -> FamilyRead:
    family = await service.update_family(session, vault, principal, family_id, body, expected)
    set_etag(response, family.version)
    return FamilyRead.from_domain(family)


@router.post(
    "/families/{family_id}/move",
    response_model=FamilyRead,
    tags=["families"],
    summary="Move to another address (If-Match)",
)
async def move_family(
    family_id: uuid.UUID,
    body: FamilyMove,
    expected: IfMatch,
    session: SessionDep,
    response: Response,
    principal: Writer,
) -> FamilyRead:
    family = await service.move_family(session, principal, family_id, body, expected)
    set_etag(response, family.version)
    return FamilyRead.from_domain(family)


@router.delete(
    "/families/{family_id}",
    status_code=204,
    tags=["families"],
    summary="Delete a family entered in error (tombstone)",
)
async def delete_family(
    family_id: uuid.UUID, expected: IfMatch, session: SessionDep, principal: Writer
) -> Response:
    await service.delete_family(session, principal, family_id, expected)
    return Response(status_code=204)


@router.get(
    "/families/{family_id}/kk-history",
    response_model=list[KkHistoryRead],
    tags=["families"],
    summary="Every KK number the family has carried (masked unless registry:pii:read; unmasked reads logged)",
)
async def get_kk_history(
    family_id: uuid.UUID, session: SessionDep, vault: VaultDep, principal: Reader, purpose: PurposeDep
) -> list[KkHistoryRead]:
    history = await service.kk_history(session, vault, principal, family_id, purpose)
    return [KkHistoryRead.from_row(h, kk_number=number) for h, number in history]


@router.get("/families/{family_id}/members", response_model=list[PersonRead], tags=["families"])
async def list_members(
    family_id: uuid.UUID, session: SessionDep, vault: VaultDep, principal: Reader, purpose: PurposeDep
) -> list[PersonRead]:
    members, revealed = await service.list_members(session, vault, principal, family_id, purpose)
    return [PersonRead.from_domain(p, revealed) for p in members]


@router.post(
    "/families/{family_id}/members",
    status_code=201,
    response_model=PersonRead,
    tags=["families"],
    summary="Add a person to a family",
)
async def add_member(
    family_id: uuid.UUID,
    body: PersonInput,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Writer,
) -> PersonRead:
    person, _ = await service.add_member(session, vault, principal, family_id, body)
    set_etag(response, person.version)
    response.headers["Location"] = f"/v1/persons/{person.id}"
    return PersonRead.from_domain(person)


# ------------------------------------------------------------------------------------------ persons


@router.post(
    "/persons:search",
    response_model=Page[PersonRead],
    tags=["persons"],
    summary="Find a person by NIK (in the body)",
    description="Requires `registry:nik:search` and an `X-Purpose` header; every search, hit or miss, is "
    "written to the access log. A NIK nobody holds and a NIK held outside the caller's region give the same "
    "answer (200, no items). The NIK is shown only to callers with `registry:pii:read`.",
    # Each search is a guess at a NIK: it also spends from the tighter personal-data search budget. A lookup
    # takes no Idempotency-Key: its answer (the persons found) is not kept outside the registry.
    dependencies=[PERSONAL_DATA_SEARCH, READ_ONLY_POST],
)
async def search_persons(
    body: PersonSearch,
    session: SessionDep,
    vault: VaultDep,
    principal: NikSearcher,
    purpose: SearchPurposeDep,
) -> Page[PersonRead]:
    persons, revealed = await service.search_by_nik(session, vault, principal, body.nik, purpose)
    return Page(items=[PersonRead.from_domain(p, revealed) for p in persons], next_cursor=None)


@router.get(
    "/persons", response_model=Page[PersonRead], tags=["persons"], summary="Persons list / change feed"
)
async def list_persons(
    session: SessionDep,
    vault: VaultDep,
    page: PageDep,
    principal: Reader,
    purpose: PurposeDep,
    region: RegionQuery = None,
    family_id: uuid.UUID | None = None,
    sex: Annotated[str | None, Query(pattern="^[LP]$")] = None,
    updated_since: UpdatedSince = None,
) -> Page[PersonRead]:
    persons, revealed, cursor = await service.list_persons(
        session,
        vault,
        principal,
        purpose,
        page,
        region=region,
        family_id=family_id,
        sex=sex,
        updated_since=updated_since,
    )
    return Page(items=[PersonRead.from_domain(p, revealed) for p in persons], next_cursor=cursor)


@router.get(
    "/persons/{person_id}",
    response_model=PersonRead,
    tags=["persons"],
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_person(
    person_id: uuid.UUID,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Reader,
    purpose: PurposeDep,
) -> PersonRead:
    person, revealed = await service.get_person(session, vault, principal, person_id, purpose)
    set_etag(response, person.version)
    return PersonRead.from_domain(person, revealed)


@router.patch(
    "/persons/{person_id}", response_model=PersonRead, tags=["persons"], summary="Update (If-Match required)"
)
async def update_person(
    person_id: uuid.UUID,
    body: PersonUpdate,
    expected: IfMatch,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Writer,
) -> PersonRead:
    person, _ = await service.update_person(session, vault, principal, person_id, body, expected)
    set_etag(response, person.version)
    return PersonRead.from_domain(person)


@router.delete(
    "/persons/{person_id}",
    status_code=204,
    tags=["persons"],
    summary="Delete a person entered in error (tombstone)",
)
async def delete_person(
    person_id: uuid.UUID, expected: IfMatch, session: SessionDep, principal: Writer
) -> Response:
    await service.delete_person(session, principal, person_id, expected)
    return Response(status_code=204)


@router.post(
    "/persons/{person_id}/death",
    response_model=PersonRead,
    tags=["persons"],
    summary="Record a death (If-Match)",
)
async def record_death(
    person_id: uuid.UUID,
    body: PersonDeath,
    expected: IfMatch,
    session: SessionDep,
    response: Response,
    principal: Writer,
) -> PersonRead:
    person, _ = await service.person_died(session, principal, person_id, body, expected)
    set_etag(response, person.version)
    return PersonRead.from_domain(person)


@router.post(
    "/persons/{person_id}/move",
    response_model=PersonRead,
    tags=["persons"],
    summary="Move to another family or out of the area (If-Match)",
)
async def move_person(
    person_id: uuid.UUID,
    body: PersonMove,
    expected: IfMatch,
    session: SessionDep,
    response: Response,
    principal: Writer,
) -> PersonRead:
    person, _ = await service.move_person(session, principal, person_id, body, expected)
    set_etag(response, person.version)
    return PersonRead.from_domain(person)


@router.get(
    "/persons/{person_id}/memberships",
    response_model=list[MembershipRead],
    tags=["persons"],
    summary="Family membership history",
)
async def list_memberships(
    person_id: uuid.UUID, session: SessionDep, principal: Reader
) -> list[MembershipRead]:
    return [
        MembershipRead.model_validate(m) for m in await service.memberships(session, principal, person_id)
    ]


@router.get(
    "/persons/{person_id}/access-log",
    response_model=Page[AccessLogRead],
    tags=["persons"],
    summary="Who read this person's NIK/KK unmasked, when and why (data-subject requests)",
)
async def get_access_log(
    person_id: uuid.UUID,
    session: SessionDep,
    page: PageDep,
    principal: PiiReader,
    x_purpose: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Page[AccessLogRead]:
    rows, cursor = await service.access_log(session, principal, person_id, page)
    return Page(items=[AccessLogRead.model_validate(r) for r in rows], next_cursor=cursor)
