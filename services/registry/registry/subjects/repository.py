"""Every query of the registry data-subject export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.families.models import AccessLog, Family, FamilyKkHistory, FamilyMembership, Person
from registry.growth.models import Measurement, StuntingCase
from registry.health.models import Catin, KbStatus, Pregnancy
from shared.auth import Principal
from shared.errors import NotFound
from shared.regions.scope import in_scope


async def person_in_scope(session: AsyncSession, person_id: uuid.UUID, principal: Principal) -> Person:
    """The person (alive, dead, moved out or merged: all of it is theirs) inside the caller's region, else 404."""
    stmt = (
        select(Person)
        .join(Family, Family.id == Person.family_id)
        .where(Person.id == person_id, in_scope(Family.village_code, principal))
    )
    person = await session.scalar(stmt)
    if person is None:
        raise NotFound("person not found")
    return person


async def histories(session: AsyncSession, person: Person) -> dict[str, list[Any]]:
    """Every row of the person's histories, each kind oldest first."""
    pid = person.id

    async def rows(stmt: Any) -> list[Any]:
        return list((await session.execute(stmt)).scalars().all())

    memberships = await rows(
        select(FamilyMembership)
        .where(FamilyMembership.person_id == pid)
        .order_by(FamilyMembership.started_on)
    )
    family_ids = sorted(
        {m.family_id for m in memberships} | ({person.family_id} if person.family_id else set())
    )
    return {
        "family_memberships": memberships,
        "families": await rows(select(Family).where(Family.id.in_(family_ids)).order_by(Family.created_at)),
        "kk_history": await rows(
            select(FamilyKkHistory)
            .where(FamilyKkHistory.family_id.in_(family_ids))
            .order_by(FamilyKkHistory.valid_from)
        ),
        "kb_status": await rows(select(KbStatus).where(KbStatus.person_id == pid).order_by(KbStatus.since)),
        "catin": await rows(select(Catin).where(Catin.person_id == pid).order_by(Catin.created_at)),
        # Her pregnancies, and the one the person was born of (the registry links the birth to the child).
        "pregnancies": await rows(
            select(Pregnancy)
            .where(or_(Pregnancy.person_id == pid, Pregnancy.child_person_id == pid))
            .order_by(Pregnancy.created_at)
        ),
        "measurements": await rows(
            select(Measurement).where(Measurement.person_id == pid).order_by(Measurement.measured_on)
        ),
        "stunting_cases": await rows(
            select(StuntingCase).where(StuntingCase.person_id == pid).order_by(StuntingCase.created_at)
        ),
    }


async def access_log(session: AsyncSession, person_id: uuid.UUID) -> list[AccessLog]:
    """Every access-log entry about the person (unmasked reads, searches that found them, exports)."""
    stmt = (
        select(AccessLog)
        .where(AccessLog.person_id == person_id)
        .order_by(AccessLog.accessed_at, AccessLog.id)
    )
    return list((await session.execute(stmt)).scalars().all())
