"""How registry events reach memberships: KB status kept in sync, deaths and moves end memberships.

Called by the replica handlers once the replica is up to date, inside the consumer's transaction.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import uppka as ev
from shared.outbox import publish
from uppka.groups import domain
from uppka.groups import repository as repo
from uppka.groups.service import end_membership
from uppka.models import outbox
from uppka.replicas.models import PersonReplica


async def sync_kb_status(session: AsyncSession, person: PersonReplica, changed_on: date) -> None:
    """Copy the replica's KB status onto every current membership that differs, and tell the groups."""
    for member, group in await repo.active_memberships_of_person(session, person.person_id):
        if (member.kb_method, member.kb_user, member.mkjp) == (person.kb_method, person.is_user, person.mkjp):
            continue
        previous_mkjp = member.mkjp
        member.kb_method = person.kb_method
        member.kb_user = person.is_user
        member.mkjp = person.mkjp
        member.kb_changed_on = changed_on
        member.version += 1
        await publish(
            session,
            outbox,
            ev.MemberKbStatusChanged(
                group_id=group.id,
                member_id=member.id,
                person_id=member.person_id,
                village_code=group.village_code,
                kb_method=person.kb_method,
                kb_user=person.is_user,
                mkjp=person.mkjp,
                previous_mkjp=previous_mkjp,
                changed_on=changed_on,
            ),
            key=group.id,
        )


async def end_for_death(session: AsyncSession, person: PersonReplica, died_on: date) -> None:
    for member, group in await repo.active_memberships_of_person(session, person.person_id):
        await end_membership(session, member, group, left_on=died_on, reason="died")


async def end_if_moved_away(session: AsyncSession, person: PersonReplica, moved_on: date) -> None:
    """Memberships whose group area the person no longer lives in end with reason "moved"."""
    for member, group in await repo.active_memberships_of_person(session, person.person_id):
        gone = person.moved_out_on is not None or not domain.lives_in_area(
            person.village_code, group.village_code
        )
        if gone:
            await end_membership(session, member, group, left_on=moved_on, reason="moved")


async def transfer_after_merge(
    session: AsyncSession, merged: PersonReplica, survivor: PersonReplica, on: date
) -> None:
    """Memberships of a merged record move to the surviving person, unless that would duplicate one."""
    for member, group in await repo.active_memberships_of_person(session, merged.person_id):
        if await repo.active_membership(session, group.id, survivor.person_id) is not None:
            await end_membership(session, member, group, left_on=on, reason="other")
        else:
            member.person_id = survivor.person_id
            member.version += 1
