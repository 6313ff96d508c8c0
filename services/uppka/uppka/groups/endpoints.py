"""HTTP routes of groups and members (thin: parse, call the service, shape the response)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shared.regions import CODE_SCHEMA
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import IfMatch, set_etag
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES
from uppka.common import normalize_region_filter
from uppka.deps import Reader, TodayDep, Writer
from uppka.groups import service
from uppka.groups.domain import GroupStatus
from uppka.groups.schemas import (
    FundingIn,
    FundingRead,
    GroupCreate,
    GroupRead,
    GroupSummary,
    GroupUpdate,
    MemberCreate,
    MemberLeave,
    MemberRead,
    MemberUpdate,
)

router = APIRouter(prefix="/v1/groups", tags=["groups"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201)
async def create_group(
    body: GroupCreate, session: SessionDep, principal: Writer, today: TodayDep, response: Response
) -> GroupRead:
    """Register an UPPKA group (status active); publishes `uppka.group.registered.v1`."""
    out = await service.create_group(session, body, principal, today)
    set_etag(response, out.group.version)
    response.headers["Location"] = f"/v1/groups/{out.group.id}"
    return GroupRead.from_domain(out)


@router.get("")
async def list_groups(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    region: Annotated[
        str | None, Query(description="Kemendagri code prefix", json_schema_extra=CODE_SCHEMA)
    ] = None,
    kampung_kb_id: uuid.UUID | None = None,
    status: GroupStatus | None = None,
) -> Page[GroupSummary]:
    """Groups in the caller's region, filtered; keyset-paginated by code."""
    prefix = normalize_region_filter(region)
    rows, cursor = await service.list_groups(
        session, page, principal, region=prefix, kampung_kb_id=kampung_kb_id, status=status
    )
    return Page(items=[GroupSummary.model_validate(g) for g in rows], next_cursor=cursor)


@router.get("/{group_id}")
async def get_group(
    group_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> GroupRead:
    """A group with its officers, funding and status history; the ETag is its version."""
    out = await service.get_group(session, group_id, principal)
    set_etag(response, out.group.version)
    return GroupRead.from_domain(out)


@router.patch("/{group_id}")
async def update_group(
    group_id: uuid.UUID,
    body: GroupUpdate,
    if_match: IfMatch,
    session: SessionDep,
    principal: Writer,
    today: TodayDep,
    response: Response,
) -> GroupRead:
    """Change a group's facts or status (If-Match required); dissolving ends every membership."""
    out = await service.update_group(session, group_id, body, principal, if_match, today)
    set_etag(response, out.group.version)
    return GroupRead.from_domain(out)


@router.post("/{group_id}/funding", status_code=201)
async def add_funding(
    group_id: uuid.UUID, body: FundingIn, session: SessionDep, principal: Writer, today: TodayDep
) -> FundingRead:
    """Record money the group received from a source."""
    return FundingRead.model_validate(await service.add_funding(session, group_id, body, principal, today))


@router.post("/{group_id}/members", status_code=201)
async def add_member(
    group_id: uuid.UUID,
    body: MemberCreate,
    session: SessionDep,
    principal: Writer,
    today: TodayDep,
    response: Response,
) -> MemberRead:
    """A registry person joins; category and KB status come from the registry's facts."""
    member = await service.add_member(session, group_id, body, principal, today)
    set_etag(response, member.version)
    return MemberRead.model_validate(member)


@router.get("/{group_id}/members")
async def list_members(
    group_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    active: Annotated[bool | None, Query(description="true: current members; false: former")] = None,
) -> Page[MemberRead]:
    """Members of a group."""
    rows, cursor = await service.list_members(session, group_id, page, principal, active=active)
    return Page(items=[MemberRead.model_validate(m) for m in rows], next_cursor=cursor)


@router.get("/{group_id}/members/{member_id}")
async def get_member(
    group_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep, principal: Reader, response: Response
) -> MemberRead:
    member = await service.get_member(session, group_id, member_id, principal)
    set_etag(response, member.version)
    return MemberRead.model_validate(member)


@router.patch("/{group_id}/members/{member_id}")
async def change_role(
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    body: MemberUpdate,
    if_match: IfMatch,
    session: SessionDep,
    principal: Writer,
    response: Response,
) -> MemberRead:
    """Change a member's role (If-Match required); a ketua must be a current or former KB user."""
    member = await service.change_role(session, group_id, member_id, body, principal, if_match)
    set_etag(response, member.version)
    return MemberRead.model_validate(member)


@router.post("/{group_id}/members/{member_id}/leave")
async def leave(
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    body: MemberLeave,
    if_match: IfMatch,
    session: SessionDep,
    principal: Writer,
    today: TodayDep,
    response: Response,
) -> MemberRead:
    """End a membership (If-Match required); publishes `uppka.member.left.v1`."""
    member = await service.leave(session, group_id, member_id, body, principal, if_match, today)
    set_etag(response, member.version)
    return MemberRead.model_validate(member)
