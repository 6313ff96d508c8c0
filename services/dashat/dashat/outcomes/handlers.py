"""Children's measurements from the registry, kept for the trajectories of enrolled children."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.outcomes.models import ChildMeasurement
from shared.events import CloudEvent
from shared.events import registry as reg


async def handle_child_measured(session: AsyncSession, env: CloudEvent, data: reg.ChildMeasured) -> None:
    values = {
        "person_id": data.person_id,
        "measured_on": data.measured_on,
        "age_days": data.age_days,
        "haz": data.haz,
        "haz_flag": data.haz_flag,
    }
    await session.execute(
        insert(ChildMeasurement)
        .values(measurement_id=data.measurement_id, **values)
        .on_conflict_do_update(index_elements=[ChildMeasurement.measurement_id], set_=values)
    )
    if data.corrects_measurement_id is not None:
        # The correction may come before the original: keep a placeholder marked superseded.
        await session.execute(
            insert(ChildMeasurement)
            .values(
                measurement_id=data.corrects_measurement_id,
                person_id=data.person_id,
                measured_on=data.measured_on,
                age_days=data.age_days,
                superseded=True,
            )
            .on_conflict_do_update(
                index_elements=[ChildMeasurement.measurement_id], set_={"superseded": True}
            )
        )


async def handle_measurement_retracted(
    session: AsyncSession, env: CloudEvent, data: reg.MeasurementRetracted
) -> None:
    await session.execute(
        insert(ChildMeasurement)
        .values(
            measurement_id=data.measurement_id,
            person_id=data.person_id,
            measured_on=data.measured_on,
            age_days=0,
            retracted=True,
        )
        .on_conflict_do_nothing()
    )
    await session.execute(
        update(ChildMeasurement)
        .where(ChildMeasurement.measurement_id == data.measurement_id)
        .values(retracted=True)
    )
