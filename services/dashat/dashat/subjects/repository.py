"""Every query of the DASHAT data-subject export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment, StuntingCase, WaitlistEntry
from dashat.meals.models import MealBatch, MealServing
from dashat.models import subject_access_log
from dashat.outcomes.models import ChildMeasurement
from dashat.people.models import PersonReplica
from shared.auth import Principal
from shared.subject import audit_row, records


async def region_of(session: AsyncSession, person_id: uuid.UUID) -> tuple[bool, str | None]:
    """Whether DASHAT knows the person, and the village its replica places them in."""
    replica = await session.get(PersonReplica, person_id)
    if replica is not None:
        return True, replica.village_code
    enrolled = (
        await session.execute(select(Enrolment.village_code).where(Enrolment.person_id == person_id).limit(1))
    ).scalar()
    return enrolled is not None, enrolled


async def sections(session: AsyncSession, person_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """The replica, enrolments, waitlist entries, stunting cases, measurements and meals of the person."""

    async def rows(stmt: Any) -> list[dict[str, Any]]:
        return records((await session.execute(stmt)).scalars().all())

    return {
        "person_replica": await rows(select(PersonReplica).where(PersonReplica.person_id == person_id)),
        "enrolments": await rows(
            select(Enrolment).where(Enrolment.person_id == person_id).order_by(Enrolment.created_at)
        ),
        "waitlist": await rows(
            select(WaitlistEntry)
            .where(WaitlistEntry.person_id == person_id)
            .order_by(WaitlistEntry.waitlisted_at)
        ),
        "stunting_cases": await rows(
            select(StuntingCase).where(StuntingCase.person_id == person_id).order_by(StuntingCase.created_at)
        ),
        "child_measurements": await rows(
            select(ChildMeasurement)
            .where(ChildMeasurement.person_id == person_id)
            .order_by(ChildMeasurement.measured_on)
        ),
        "meals_served": await rows(
            select(MealServing).where(MealServing.person_id == person_id).order_by(MealServing.served_on)
        ),
        # The meals a batch records the person as absent from (kitchen, day and slot only: not the batch's
        # other beneficiaries).
        "meals_absent": records(
            (
                await session.execute(
                    select(MealBatch.kitchen_id, MealBatch.served_on, MealBatch.slot)
                    .where(MealBatch.absent_person_ids.contains([person_id]))
                    .order_by(MealBatch.served_on)
                )
            ).all()
        ),
    }


async def audit(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, purpose: str, names: list[str]
) -> None:
    """One entry in the service's own audit table."""
    await session.execute(audit_row(subject_access_log, principal, person_id, purpose, names))
