"""The no-improvement flag of an enrolled child, raised by the daily sweep or as soon as a measurement arrives."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment
from dashat.models import outbox
from dashat.outcomes import domain as outcome_domain
from dashat.outcomes import repository as measurements
from shared.events import dashat as ev
from shared.outbox import publish


def baseline(enrolment: Enrolment) -> float | None:
    haz = enrolment.facts.get("haz")
    return float(haz) if isinstance(haz, int | float) else None


async def trajectory(session: AsyncSession, enrolment: Enrolment) -> outcome_domain.Trajectory:
    points = await measurements.haz_points(session, enrolment.person_id, enrolment.start_date)
    return outcome_domain.trajectory(baseline(enrolment), points)


async def flag_if_no_improvement(session: AsyncSession, enrolment: Enrolment, day: date) -> bool:
    """Flag the child once when the planned duration has passed without HAZ improvement; True if flagged now.

    The enrolment must be locked by the caller (the sweep's skip-locked rows, the consumer's person lock).
    """
    t = await trajectory(session, enrolment)
    if not outcome_domain.should_flag(
        t, enrolment.planned_end_date, day, enrolment.outcome_flagged_on is not None
    ):
        return False
    enrolment.outcome_flagged_on = day
    await publish(
        session,
        outbox,
        ev.ChildOutcomeFlagged(
            enrolment_id=enrolment.id,
            kitchen_id=enrolment.kitchen_id,
            person_id=enrolment.person_id,
            village_code=enrolment.village_code,
            haz_at_enrolment=t.baseline or 0.0,
            haz_latest=t.latest or 0.0,
            flagged_on=day,
        ),
        key=enrolment.kitchen_id,
    )
    return True
