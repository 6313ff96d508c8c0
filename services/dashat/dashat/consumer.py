"""The dashat consumer process: Kafka -> handlers, each event applied once (`python -m dashat.consumer`)."""

from __future__ import annotations

import asyncio
import contextlib

from dashat.config import Settings
from dashat.enrolment import handlers as enrolment
from dashat.funds import handlers as funds
from dashat.models import inbox
from dashat.people import handlers as people
from dashat.sweep import sweep_periodically
from shared.consumer import Handler
from shared.db import create_engine, create_sessionmaker
from shared.events import registry as reg
from shared.events import uppka as up
from shared.kafka_security import CONSUMES
from shared.runtime import run_consumer

# Written down once beside the ACLs that let this service read them (shared/kafka_security.py).
TOPICS: list[str] = list(CONSUMES["dashat"])
HANDLERS: dict[str, Handler] = {
    reg.PersonRegistered.event_type: enrolment.handle_person_facts,
    reg.PersonUpdated.event_type: enrolment.handle_person_facts,
    reg.PersonDied.event_type: enrolment.handle_person_died,
    reg.PersonMoved.event_type: enrolment.handle_person_moved,
    reg.PersonsMerged.event_type: enrolment.handle_person_merged,
    reg.FamilyRegistered.event_type: enrolment.handle_family_facts,
    reg.FamilyUpdated.event_type: enrolment.handle_family_facts,
    reg.FamilyMoved.event_type: enrolment.handle_family_moved,
    reg.StuntingRiskChanged.event_type: enrolment.handle_stunting_risk,
    reg.BadutaStuntingDetected.event_type: enrolment.handle_stunting_detected,
    reg.StuntingResolved.event_type: enrolment.handle_stunting_resolved,
    reg.StuntingCaseRetracted.event_type: enrolment.handle_stunting_retracted,
    reg.PregnancyRegistered.event_type: enrolment.handle_pregnancy_registered,
    reg.PregnancyEnded.event_type: enrolment.handle_pregnancy_ended,
    reg.CatinRegistered.event_type: enrolment.handle_catin_registered,
    reg.ChildMeasured.event_type: enrolment.handle_child_measured,
    reg.MeasurementRetracted.event_type: enrolment.handle_measurement_retracted,
    up.GroupRegistered.event_type: people.handle_group_facts,
    up.GroupUpdated.event_type: people.handle_group_facts,
    up.GroupStatusChanged.event_type: people.handle_group_status,
    up.DashatContributionMade.event_type: funds.handle_contribution,
}
# The events one by one, with the replica rows of the whole poll locked first in one order.
BATCH_HANDLER = people.batch_handler(HANDLERS)


async def run(settings: Settings) -> None:
    """Apply events until SIGTERM, sweeping alongside (replicas take turns through the sweep's advisory lock)."""
    engine = create_engine(settings.database_url, pool_size=1)
    sweeper = asyncio.create_task(
        sweep_periodically(create_sessionmaker(engine), settings.sweep_interval_seconds), name="dashat-sweep"
    )
    try:
        await run_consumer(
            settings,
            purpose="projector",
            logical_topics=TOPICS,
            handlers=HANDLERS,
            batch_handler=BATCH_HANDLER,
            inbox=inbox,
        )
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await engine.dispose()


def main() -> None:
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
