"""Every query of the uppka data-subject export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.subject import audit_row, records
from uppka.activities.models import ActivityAttendance
from uppka.groups.models import Member
from uppka.models import subject_access_log
from uppka.replicas.models import PersonReplica


async def region_of(session: AsyncSession, person_id: uuid.UUID) -> tuple[bool, str | None]:
    """Whether uppka knows the person, and the village it places them in (replica, else last membership)."""
    replica = await session.get(PersonReplica, person_id)
    if replica is not None and replica.village_code is not None:
        return True, replica.village_code
    village = (
        await session.execute(
            select(Member.village_code).where(Member.person_id == person_id).order_by(Member.joined_on.desc())
        )
    ).scalar()
    return replica is not None or village is not None, village


async def sections(session: AsyncSession, person_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """The person's replica, group memberships and the activities attended as a member."""
    replica = (
        await session.execute(select(PersonReplica).where(PersonReplica.person_id == person_id))
    ).scalars()
    members = (
        (
            await session.execute(
                select(Member).where(Member.person_id == person_id).order_by(Member.joined_on)
            )
        )
        .scalars()
        .all()
    )
    attended = (
        await session.execute(
            select(ActivityAttendance).where(ActivityAttendance.member_id.in_([m.id for m in members]))
        )
    ).scalars()
    return {
        "person_replica": records(list(replica)),
        "memberships": records(members),
        "activity_attendance": records(list(attended)),
    }


async def audit(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, purpose: str, names: list[str]
) -> None:
    """One entry in the service's own audit table."""
    await session.execute(audit_row(subject_access_log, principal, person_id, purpose, names))
