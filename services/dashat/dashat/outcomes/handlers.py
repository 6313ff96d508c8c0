"""Children's measurements from the registry, kept for the trajectories of enrolled children."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.outcomes import repository as repo
from shared.events import CloudEvent
from shared.events import registry as reg


async def handle_child_measured(session: AsyncSession, env: CloudEvent, data: reg.ChildMeasured) -> None:
    await repo.upsert(
        session,
        data.measurement_id,
        person_id=data.person_id,
        measured_on=data.measured_on,
        age_days=data.age_days,
        haz=data.haz,
        haz_flag=data.haz_flag,
    )
    if data.corrects_measurement_id is not None:
        # The correction may come before the original: keep a placeholder marked superseded.
        await repo.mark_superseded(
            session,
            data.corrects_measurement_id,
            person_id=data.person_id,
            measured_on=data.measured_on,
            age_days=data.age_days,
        )


async def handle_measurement_retracted(
    session: AsyncSession, env: CloudEvent, data: reg.MeasurementRetracted
) -> None:
    await repo.mark_retracted(
        session, data.measurement_id, person_id=data.person_id, measured_on=data.measured_on
    )
