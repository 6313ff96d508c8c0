"""Use cases of groups and members: each opens the transaction, writes rows and outbox events, commits once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import uppka as ev
from shared.outbox import publish
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams
from uppka.categories import service as categories
from uppka.common import check_not_future, writable_region
from uppka.groups import domain
from uppka.groups import repository as repo
from uppka.groups.models import Group, GroupFunding, GroupStatusChange, Member
from uppka.groups.schemas import FundingIn, GroupCreate, GroupUpdate, MemberCreate, MemberLeave, MemberUpdate
from uppka.models import outbox
from uppka.replicas import repository as replicas


async def load_group(
    session: AsyncSession, group_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> Group:
    """The group, or 404 when it does not exist or lies outside the caller's region."""
    group = await repo.get_group(session, group_id, lock=lock)
    if group is None or not principal.can_access(group.village_code):
        raise NotFound("group not found")
    return group


async def lock_open_group(session: AsyncSession, group_id: uuid.UUID, principal: Principal) -> Group:
    """The group, locked for a write that needs it not dissolved (409 when it is)."""
    group = await load_group(session, group_id, principal, lock=True)
    if group.status == "dissolved":
        raise Conflict("the group is dissolved", field="path.group_id", rule="group.dissolved")
    return group


@dataclass(frozen=True)
class GroupRecord:
    """A group with its funding, officers and status history, as one read loads them (the API model is made at
    the edge: `GroupRead.from_domain`)."""

    group: Group
    funding: list[GroupFunding]
    officers: list[Member]
    status_history: list[GroupStatusChange]


async def read_group(session: AsyncSession, group: Group) -> GroupRecord:
    funding = await repo.funding_of(session, group.id)
    officers = await repo.officers_of(session, group.id)
    history = await repo.status_history(session, group.id)
    return GroupRecord(group, funding, officers, history)


async def get_group(session: AsyncSession, group_id: uuid.UUID, principal: Principal) -> GroupRecord:
    """A group with its officers, funding and status history."""
    async with session.begin():
        out = await read_group(session, await load_group(session, group_id, principal))
    return out


def _facts(group: Group) -> dict[str, Any]:
    return {
        "group_id": group.id,
        "code": group.code,
        "name": group.name,
        "village_code": group.village_code,
        "rw": group.rw,
        "kampung_kb_id": group.kampung_kb_id,
        "status": group.status,
        "founded_on": group.founded_on,
    }


async def create_group(
    session: AsyncSession, body: GroupCreate, principal: Principal, today: date
) -> GroupRecord:
    village = writable_region(body.village_code, "village", principal, field="body.village_code")
    for name in ("sk_date", "founded_on"):
        check_not_future(getattr(body, name), today, field=f"body.{name}", rule="group.date_in_future")
    async with session.begin():
        if await repo.code_taken(session, body.code):
            raise Conflict("a group with this code exists", field="body.code", rule="group.code_taken")
        if body.register_number and await repo.register_number_taken(session, body.register_number):
            raise Conflict(
                "a group with this register number exists",
                field="body.register_number",
                rule="group.register_number_taken",
            )
        group = Group(
            id=uuid.uuid4(),
            **body.model_dump(exclude={"funding", "village_code"}),
            village_code=village,
            status="active",
            status_since=body.founded_on or today,
            version=1,
        )
        session.add(group)
        session.add(
            GroupStatusChange(
                group_id=group.id, status="active", previous_status=None, changed_on=group.status_since
            )
        )
        for f in body.funding:
            session.add(GroupFunding(group_id=group.id, **f.model_dump()))
        await session.flush()
        await publish(session, outbox, ev.GroupRegistered(**_facts(group)), key=group.id)
        out = await read_group(session, group)
    return out


async def update_group(
    session: AsyncSession,
    group_id: uuid.UUID,
    body: GroupUpdate,
    principal: Principal,
    expected_version: IfMatchCondition,
    today: date,
) -> GroupRecord:
    changes = body.model_dump(exclude_unset=True, exclude={"status", "status_changed_on"})
    for name in ("sk_date", "founded_on"):
        check_not_future(changes.get(name), today, field=f"body.{name}", rule="group.date_in_future")
    async with session.begin():
        group = await load_group(session, group_id, principal, lock=True)
        check_version(expected_version, group.version)
        if changes.get("register_number") and await repo.register_number_taken(
            session, changes["register_number"], exclude=group.id
        ):
            raise Conflict(
                "a group with this register number exists",
                field="body.register_number",
                rule="group.register_number_taken",
            )
        if "name" in changes and changes["name"] is None:
            raise ValidationFailed("name cannot be empty", field="body.name", rule="group.name_required")
        facts_changed = any(getattr(group, k) != v for k, v in changes.items())
        for k, v in changes.items():
            setattr(group, k, v)
        status_changed = body.status is not None and body.status != group.status
        if status_changed:
            assert body.status is not None
            changed_on = body.status_changed_on or today
            domain.check_status_change(
                group.status, body.status, changed_on=changed_on, since=group.status_since, today=today
            )
            previous = group.status
            group.status = body.status
            group.status_since = changed_on
            group.dissolved_on = changed_on if body.status == "dissolved" else None
            session.add(
                GroupStatusChange(
                    group_id=group.id, status=body.status, previous_status=previous, changed_on=changed_on
                )
            )
            await publish(
                session,
                outbox,
                ev.GroupStatusChanged(
                    group_id=group.id,
                    village_code=group.village_code,
                    status=body.status,
                    previous_status=previous,
                    changed_on=changed_on,
                ),
                key=group.id,
            )
            if body.status == "dissolved":
                for member in await repo.active_members(session, group.id):
                    await end_membership(session, member, group, left_on=changed_on, reason="group_dissolved")
        if facts_changed or status_changed:
            group.version += 1
        if facts_changed:
            await publish(session, outbox, ev.GroupUpdated(**_facts(group)), key=group.id)
        await session.flush()
        out = await read_group(session, group)
    return out


async def add_funding(
    session: AsyncSession, group_id: uuid.UUID, body: FundingIn, principal: Principal, today: date
) -> GroupFunding:
    check_not_future(body.received_on, today, field="body.received_on", rule="funding.in_future")
    async with session.begin():
        group = await load_group(session, group_id, principal, lock=True)
        row = GroupFunding(id=uuid.uuid4(), group_id=group.id, **body.model_dump())
        session.add(row)
        group.version += 1
        await session.flush()
    return row


async def list_groups(
    session: AsyncSession,
    params: PageParams,
    principal: Principal,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    status: str | None,
) -> tuple[list[Group], str | None]:
    """Groups in the caller's region, filtered; keyset-paginated by code."""
    async with session.begin():
        page = await repo.list_groups(
            session,
            params,
            caller_region=principal.region,
            region=region,
            kampung_kb_id=kampung_kb_id,
            status=status,
        )
    return page


# --- members -----------------------------------------------------------------------------------------------


def _person_facts(person: Any) -> domain.PersonFacts | None:
    if person is None:
        return None
    return domain.PersonFacts(
        known=person.facts_known,
        village_code=person.village_code,
        died_on=person.died_on,
        moved_out_on=person.moved_out_on,
        merged_into=person.merged_into is not None,
        ever_kb_user=person.ever_kb_user,
        birth_date=person.birth_date,
    )


async def add_member(
    session: AsyncSession, group_id: uuid.UUID, body: MemberCreate, principal: Principal, today: date
) -> Member:
    joined_on = body.joined_on or today
    async with session.begin():
        group = await lock_open_group(session, group_id, principal)
        # Locked like the registry handlers lock it: a KB change (or death) being applied at this moment either
        # commits first and is read here, or waits and then finds this membership; never neither.
        person = await replicas.get_person(session, body.person_id, lock=True)
        if person is not None and not principal.can_access(person.village_code):
            person = None  # someone outside the caller's region is "unknown", never "outside the area"
        domain.check_can_join(
            _person_facts(person),
            group_village_code=group.village_code,
            role=body.role,
            joined_on=joined_on,
            today=today,
        )
        assert person is not None and person.family_id is not None and person.village_code is not None
        if await repo.active_membership(session, group.id, person.person_id) is not None:
            raise Conflict("the person is already a member", field="body.person_id", rule="member.duplicate")
        if body.role != "anggota" and await repo.active_officer(session, group.id, body.role) is not None:
            raise Conflict(
                f"the group already has a {body.role}", field="body.role", rule="member.role_taken"
            )
        category = domain.member_category(
            birth_date=person.birth_date, marital_status=person.marital_status, pus=person.pus, on=joined_on
        )
        member = Member(
            id=uuid.uuid4(),
            group_id=group.id,
            person_id=person.person_id,
            family_id=person.family_id,
            village_code=person.village_code,
            role=body.role,
            category=category,
            category_rule_version=domain.CATEGORY_RULE_VERSION,
            category_since=joined_on,
            joined_on=joined_on,
            kb_method=person.kb_method,
            kb_user=person.is_user,
            mkjp=person.mkjp,
            kb_changed_on=person.kb_since,
            version=1,
        )
        session.add(member)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent join of the same person won the race
            raise Conflict(
                "the person is already a member", field="body.person_id", rule="member.duplicate"
            ) from exc
        await publish(
            session,
            outbox,
            ev.MemberJoined(
                group_id=group.id,
                member_id=member.id,
                person_id=member.person_id,
                family_id=member.family_id,
                village_code=group.village_code,
                category=category,
                role=body.role,
                joined_on=joined_on,
                kb_method=member.kb_method,
                kb_user=member.kb_user,
                mkjp=member.mkjp,
            ),
            key=group.id,
        )
        # The join's category is the one of `joined_on`; birthdays since then (a join recorded late) follow it.
        await categories.apply_ageing_since_join(session, member, group, person, today)
    return member


async def load_member(
    session: AsyncSession,
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    principal: Principal,
    *,
    lock: bool = False,
) -> tuple[Group, Member]:
    group = await load_group(session, group_id, principal)
    member = await repo.get_member(session, group.id, member_id, lock=lock)
    if member is None:
        raise NotFound("member not found")
    return group, member


async def get_member(
    session: AsyncSession, group_id: uuid.UUID, member_id: uuid.UUID, principal: Principal
) -> Member:
    """A member of a group the caller may see."""
    async with session.begin():
        _, member = await load_member(session, group_id, member_id, principal)
    return member


async def list_members(
    session: AsyncSession,
    group_id: uuid.UUID,
    params: PageParams,
    principal: Principal,
    *,
    active: bool | None,
) -> tuple[list[Member], str | None]:
    """Members of a group, current (active=True), former (False) or all."""
    async with session.begin():
        group = await load_group(session, group_id, principal)
        page = await repo.list_members(session, group.id, params, active=active)
    return page


async def change_role(
    session: AsyncSession,
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    body: MemberUpdate,
    principal: Principal,
    expected_version: IfMatchCondition,
) -> Member:
    async with session.begin():
        group, member = await load_member(session, group_id, member_id, principal, lock=True)
        check_version(expected_version, member.version)
        if member.left_on is not None:
            raise Conflict("the member has left the group", field="path.member_id", rule="member.left")
        if body.role != member.role:
            person = await replicas.get_person(session, member.person_id)
            domain.check_leader(body.role, ever_kb_user=bool(person and person.ever_kb_user))
            if body.role != "anggota" and await repo.active_officer(session, group.id, body.role) is not None:
                raise Conflict(
                    f"the group already has a {body.role}", field="body.role", rule="member.role_taken"
                )
            member.role = body.role
            member.version += 1
            await session.flush()
    return member


async def end_membership(
    session: AsyncSession, member: Member, group: Group, *, left_on: date, reason: str
) -> None:
    """End a current membership and publish `member.left` (inside the caller's transaction)."""
    member.left_on = max(left_on, member.joined_on)
    member.left_reason = reason
    member.version += 1
    await publish(
        session,
        outbox,
        ev.MemberLeft(
            group_id=group.id,
            member_id=member.id,
            person_id=member.person_id,
            village_code=group.village_code,
            left_on=member.left_on,
            reason=reason,
        ),
        key=group.id,
    )


async def leave(
    session: AsyncSession,
    group_id: uuid.UUID,
    member_id: uuid.UUID,
    body: MemberLeave,
    principal: Principal,
    expected_version: IfMatchCondition,
    today: date,
) -> Member:
    left_on = body.left_on or today
    async with session.begin():
        group, member = await load_member(session, group_id, member_id, principal, lock=True)
        check_version(expected_version, member.version)
        if member.left_on is not None:
            raise Conflict("the member has already left", field="path.member_id", rule="member.left")
        check_not_future(left_on, today, field="body.left_on", rule="member.left_in_future")
        if left_on < member.joined_on:
            raise ValidationFailed(
                "left_on is before joined_on", field="body.left_on", rule="member.left_before_joined"
            )
        await end_membership(session, member, group, left_on=left_on, reason=body.reason)
        await session.flush()
    return member
