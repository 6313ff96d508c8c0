"""`/v1/persons/duplicates` (review list) and `/v1/persons/{id}/merge`.

Registered before the families router so that `/v1/persons/duplicates` is not taken for a person id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import ConfigDict, Field

from registry.deps import IfMatch, Reader, VaultDep, Writer
from registry.duplicates import service
from registry.families.schemas import PersonRead
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES
from shared.web.schemas import ApiInput, ApiOutput

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, tags=["persons"])


class DuplicateGroup(ApiOutput):
    reason: Literal["same_name_birth_village", "without_nik"] = Field(
        description="same normalised name, birth date and village; or a person without NIK with look-alikes"
    )
    village_code: str | None
    birth_date: str
    persons: list[PersonRead] = Field(description="For without_nik: the person first, then look-alikes")

    @classmethod
    def from_domain(cls, found: service.DuplicateCandidates) -> DuplicateGroup:
        return cls(
            reason=found.reason,
            village_code=found.village_code,
            birth_date=found.birth_date.isoformat(),
            persons=[PersonRead.from_domain(p) for p in found.persons],
        )


class MergeRequest(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"merged_person_id": "6b1c2d3e-0000-4000-8000-000000000002"}]}
    )

    merged_person_id: uuid.UUID = Field(description="The duplicate; it becomes a tombstone pointing here")


@router.get(
    "/persons/duplicates",
    response_model=Page[DuplicateGroup],
    summary="Potential duplicates for review (same name, birth date and village; persons without NIK)",
)
async def list_duplicates(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    kind: Annotated[Literal["near", "without_nik"], Query(description="Which list")] = "near",
) -> Page[DuplicateGroup]:
    items, cursor = await service.list_duplicates(session, principal, page, kind)
    return Page(items=[DuplicateGroup.from_domain(c) for c in items], next_cursor=cursor)


@router.post(
    "/persons/{person_id}/merge",
    response_model=PersonRead,
    summary="Merge a duplicate into this person (If-Match of this person); history kept, events re-pointed",
)
async def merge_person(
    person_id: uuid.UUID,
    body: MergeRequest,
    expected: IfMatch,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Writer,
) -> PersonRead:
    person, _ = await service.merge_persons(
        session, vault, principal, person_id, body.merged_person_id, expected
    )
    set_etag(response, person.version)
    return PersonRead.from_domain(person)
