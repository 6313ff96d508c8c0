"""The curator: every internal event a public type is made from, curated once per registered consumer.

Runs in its own consumer group (`reporting.streams`), so the projections and the streams advance, fail and are
replayed independently. In the poll's transaction, with the inbox rows: the curated log rows, their outbox rows
(one per consumer topic) and their webhook deliveries, so an event reaches every consumer or none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.streams import domain
from reporting.streams import repository as repo
from reporting.streams.contract import BY_SOURCE
from shared.consumer import BatchHandler, Delivery, Handler
from shared.events.envelope import CloudEvent


def batch_handler(master_key: str) -> BatchHandler:
    """Curate a poll for every consumer: one query for the consumers, one insert per consumer and table."""

    async def apply(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        await curate_all(session, [d.envelope for d in deliveries], master_key)

    return apply


def handlers(master_key: str) -> Mapping[str, Handler]:
    """The same, one event at a time (the runner's fallback); the keys say which internal types are curated."""

    async def one(session: AsyncSession, envelope: CloudEvent, _data: Any) -> None:
        await curate_all(session, [envelope], master_key)

    return {source: one for source in BY_SOURCE}


async def curate_all(session: AsyncSession, envelopes: Sequence[CloudEvent], master_key: str) -> None:
    consumers = await repo.all_consumers(session)
    if not consumers:
        return
    subscriptions = await repo.active_subscriptions(session)
    for consumer in consumers:
        profile = domain.Profile.model_validate(consumer.profile)
        key = domain.consumer_key(master_key, consumer.name)
        curated = []
        for envelope in envelopes:
            public = domain.public_type_of(envelope.type)
            if public is None or public.name not in profile.events:
                continue
            curated.append(
                domain.curate(
                    public, envelope.data, event_id=envelope.id, time=envelope.time, profile=profile, key=key
                )
            )
        await repo.record_curated(
            session,
            consumer,
            curated,
            released=consumer.status == "active",
            subscriptions=subscriptions.get(consumer.id, []),
        )
