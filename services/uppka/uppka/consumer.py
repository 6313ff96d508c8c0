"""The uppka consumer process: Kafka -> handlers, each event applied once (`python -m uppka.consumer`)."""

from __future__ import annotations

import asyncio
import contextlib

from shared.consumer import Handler
from shared.db import create_engine, create_sessionmaker
from shared.events import dashat as dashat_events
from shared.events import registry as registry_events
from shared.kafka_security import CONSUMES
from shared.runtime import run_consumer
from uppka.categories.scheduler import sweep_daily
from uppka.config import Settings
from uppka.models import inbox
from uppka.replicas import handlers as replicas

# Written down once beside the ACLs that let this service read them (shared/kafka_security.py).
TOPICS: list[str] = list(CONSUMES["uppka"])
HANDLERS: dict[str, Handler] = {
    registry_events.PersonRegistered.event_type: replicas.handle_person_registered,
    registry_events.PersonUpdated.event_type: replicas.handle_person_updated,
    registry_events.PersonDied.event_type: replicas.handle_person_died,
    registry_events.PersonMoved.event_type: replicas.handle_person_moved,
    registry_events.PersonsMerged.event_type: replicas.handle_person_merged,
    registry_events.KbStatusChanged.event_type: replicas.handle_kb_status_changed,
    registry_events.FamilyMoved.event_type: replicas.handle_family_moved,
    dashat_events.KitchenOpened.event_type: replicas.handle_kitchen_opened,
    dashat_events.KitchenUpdated.event_type: replicas.handle_kitchen_updated,
    dashat_events.KitchenClosed.event_type: replicas.handle_kitchen_closed,
}
# Person registrations, most of the registry's stream, upserted set-based; `HANDLERS` when a poll fails.
BATCH_HANDLER = replicas.batch_handler(HANDLERS)


async def run(settings: Settings) -> None:
    """Apply events until SIGTERM, with the daily category sweep alongside (replicas take turns by its lock)."""
    engine = create_engine(settings.database_url, pool_size=1)
    sweeper = (
        asyncio.create_task(
            sweep_daily(create_sessionmaker(engine), settings.category_sweep_hour),
            name="uppka-category-sweep",
        )
        if settings.category_sweep_enabled
        else None
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
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await engine.dispose()


def main() -> None:
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
