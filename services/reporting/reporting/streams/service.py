"""Use cases of the stream operations: each one transaction, committed here."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.config import Settings
from reporting.streams import domain
from reporting.streams import repository as repo
from reporting.streams.models import StreamConsumer, WebhookAttempt, WebhookDelivery, WebhookSubscription
from reporting.streams.schemas import ConsumerCreate
from shared.db import utcnow
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.kafka import ensure_topics
from shared.logging import get_logger
from shared.topics import public_topic, topic_config

log = get_logger(__name__)


# What the use cases return; the endpoints make the API models of them (reporting/streams/schemas.py).


@dataclass(frozen=True)
class IssuedSecret:
    """A new signing secret, in plain text this once, and the subscription it signs for."""

    subscription: WebhookSubscription
    secret: str
    previous_valid_until: datetime | None = None


@dataclass(frozen=True)
class Replayed:
    events: int
    deliveries: int


@dataclass(frozen=True)
class DeliveryLog:
    deliveries: list[WebhookDelivery]
    attempts: dict[uuid.UUID, list[WebhookAttempt]]
    next_cursor: str | None


def consumer_topic(settings: Settings, consumer: StreamConsumer) -> str:
    """The consumer's Kafka topic, its physical name."""
    return settings.topic(public_topic(consumer.name))


async def _consumer(session: AsyncSession, name: str, *, lock: bool = False) -> StreamConsumer:
    consumer = await repo.consumer_by_name(session, name, lock=lock)
    if consumer is None:
        raise NotFound("stream consumer not found")
    return consumer


async def create_topic(settings: Settings, name: str) -> None:
    """Create the consumer's topic now (best effort: the streams relay also creates missing ones at each round)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                [settings.topic(public_topic(name))],
                partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                config=topic_config("public", replication_factor=settings.topic_replication_factor),
            )


async def register(session: AsyncSession, settings: Settings, body: ConsumerCreate) -> StreamConsumer:
    domain.check_consumer_name(body.name)
    domain.check_profile(body.profile)
    if await repo.consumer_by_name(session, body.name) is not None:
        raise Conflict(f"a consumer named {body.name} exists", field="name")
    consumer = await repo.add_consumer(
        session, body.name, body.description, body.profile.model_dump(mode="json")
    )
    try:
        await session.commit()
    except IntegrityError as exc:  # registered at the same moment by another request
        raise Conflict(f"a consumer named {body.name} exists", field="name") from exc
    log.info("stream_consumer_registered", consumer=consumer.name)
    await create_topic(settings, consumer.name)
    return consumer


async def get(session: AsyncSession, name: str) -> StreamConsumer:
    return await _consumer(session, name)


async def list_all(session: AsyncSession) -> list[StreamConsumer]:
    return list(await repo.all_consumers(session))


async def change_profile(session: AsyncSession, name: str, profile: domain.Profile) -> StreamConsumer:
    """A new profile applies to events curated from now on (what was published stays as it was)."""
    domain.check_profile(profile)
    consumer = await _consumer(session, name, lock=True)
    await repo.set_consumer(session, consumer, profile=profile.model_dump(mode="json"))
    await session.commit()
    return consumer


async def pause(session: AsyncSession, name: str) -> StreamConsumer:
    consumer = await _consumer(session, name, lock=True)
    await repo.set_consumer(session, consumer, status="paused")
    await session.commit()
    return consumer


async def resume(session: AsyncSession, name: str) -> StreamConsumer:
    """Active again: what was curated while paused is published now, in order, before anything newer."""
    consumer = await _consumer(session, name, lock=True)
    if consumer.status != "active":
        held = await repo.take_unreleased(session, consumer)
        subs = (await repo.active_subscriptions(session)).get(consumer.id, [])
        await repo.release(session, consumer, held, subs)
        await repo.set_consumer(session, consumer, status="active")
        await session.commit()
    return consumer


async def replay(session: AsyncSession, name: str, since: datetime) -> Replayed:
    """Publish again every released event from `since` (same CloudEvents ids: consumers skip what they have)."""
    consumer = await _consumer(session, name, lock=True)
    events = await repo.released_since(session, consumer, since)
    subs = (await repo.active_subscriptions(session)).get(consumer.id, [])
    await repo.release(session, consumer, events, subs)
    await session.commit()
    log.info("stream_replayed", consumer=consumer.name, events=len(events))
    return Replayed(events=len(events), deliveries=len(events) * len(subs))


async def resolve(host: str) -> list[str]:
    """Every address the host resolves to (all are checked: one private answer is enough to refuse)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check_target(settings: Settings, url: str) -> None:
    host = urlsplit(url).hostname or ""
    reason = domain.target_refusal(
        url, await resolve(host) if host else [], allow_loopback=bool(settings.webhook_allow_loopback)
    )
    if reason is not None:
        raise ValidationFailed(f"webhook URL refused: {reason}", field="url", rule="webhook-target")


async def add_webhook(session: AsyncSession, settings: Settings, name: str, url: str) -> IssuedSecret:
    await check_target(settings, url)
    consumer = await _consumer(session, name, lock=True)
    secret = domain.new_webhook_secret()
    sub_id = uuid.uuid4()
    sealed = domain.seal_secret(domain.secret_sealing_key(settings.webhook_secret_key), sub_id, secret)
    sub = await repo.add_subscription(session, consumer, sub_id, url, sealed)
    await session.commit()
    log.info("webhook_subscribed", consumer=consumer.name, subscription=str(sub.id))
    return IssuedSecret(sub, secret)


async def webhooks(session: AsyncSession, name: str) -> list[WebhookSubscription]:
    return await repo.subscriptions_of(session, await _consumer(session, name))


async def rotate_secret(
    session: AsyncSession, settings: Settings, name: str, sub_id: uuid.UUID, overlap_seconds: int
) -> IssuedSecret:
    """A new secret; the current one keeps signing beside it for `overlap_seconds` (receivers switch meanwhile)."""
    consumer = await _consumer(session, name)
    sub = await repo.subscription(session, consumer, sub_id)
    if sub is None:
        raise NotFound("webhook subscription not found")
    secret = domain.new_webhook_secret()
    until = utcnow() + timedelta(seconds=overlap_seconds)
    sealed = domain.seal_secret(domain.secret_sealing_key(settings.webhook_secret_key), sub.id, secret)
    await repo.rotate_secret(session, sub, sealed, until)
    await session.commit()
    log.info(
        "webhook_secret_rotated",
        consumer=consumer.name,
        subscription=str(sub.id),
        overlap_seconds=overlap_seconds,
    )
    return IssuedSecret(sub, secret, previous_valid_until=until)


async def delivery_log(
    session: AsyncSession, name: str, *, status: str | None, after: int | None, limit: int
) -> DeliveryLog:
    consumer = await _consumer(session, name)
    rows = await repo.deliveries(session, consumer, status=status, after_seq=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    attempts = await repo.attempts_of(session, [r.id for r in rows])
    return DeliveryLog(rows, attempts, str(rows[-1].seq) if more and rows else None)


async def replay_delivery(session: AsyncSession, name: str, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Deliver an event again (a parked one above all): a new delivery, behind the subject's pending ones."""
    consumer = await _consumer(session, name)
    original = await repo.delivery_of(session, consumer, delivery_id)
    if original is None:
        raise NotFound("delivery not found")
    row = await repo.redeliver(session, original)
    await session.commit()
    await session.refresh(row)
    return row
