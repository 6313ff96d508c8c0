"""Every query of the curated streams."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, exists, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from reporting.models import outbox
from reporting.streams.domain import Curated
from reporting.streams.models import (
    StreamConsumer,
    StreamEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSecret,
    WebhookSubscription,
)
from shared.db import utcnow
from shared.topics import public_topic

# --- consumers --------------------------------------------------------------------------------------------------


async def all_consumers(session: AsyncSession) -> list[StreamConsumer]:
    return list((await session.execute(select(StreamConsumer).order_by(StreamConsumer.name))).scalars())


async def consumer_by_name(session: AsyncSession, name: str, *, lock: bool = False) -> StreamConsumer | None:
    stmt = select(StreamConsumer).where(StreamConsumer.name == name)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_consumer(
    session: AsyncSession, name: str, description: str | None, profile: dict[str, Any]
) -> StreamConsumer:
    row = StreamConsumer(
        id=uuid.uuid4(), name=name, description=description, profile=profile, status="active"
    )
    session.add(row)
    await session.flush()
    return row


async def set_consumer(session: AsyncSession, consumer: StreamConsumer, **values: Any) -> None:
    for key, value in values.items():
        setattr(consumer, key, value)
    consumer.updated_at = utcnow()
    await session.flush()


async def active_subscriptions(session: AsyncSession) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Consumer id -> its active webhook subscriptions."""
    rows = await session.execute(
        select(WebhookSubscription.consumer_id, WebhookSubscription.id).where(
            WebhookSubscription.status == "active"
        )
    )
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for consumer_id, sub_id in rows:
        out.setdefault(consumer_id, []).append(sub_id)
    return out


# --- the curated log, the outbox and deliveries ------------------------------------------------------------------


async def record_curated(
    session: AsyncSession,
    consumer: StreamConsumer,
    curated: Sequence[Curated],
    *,
    released: bool,
    subscriptions: Sequence[uuid.UUID],
) -> int:
    """Keep curated events in the consumer's log; when released, publish them (outbox) and queue their webhooks.

    An event curated twice for a consumer (the inbox makes that rare: a replay of an internal topic) is kept once.
    Returns how many were new.
    """
    if not curated:
        return 0
    now = utcnow()
    stmt = (
        pg_insert(StreamEvent)
        .values(
            [
                {
                    "consumer_id": consumer.id,
                    "event_id": c.event_id,
                    "subject": c.subject,
                    "type": c.type,
                    "event_time": c.time,
                    "envelope": c.envelope,
                    "released_at": now if released else None,
                }
                for c in curated
            ]
        )
        .on_conflict_do_nothing(index_elements=["consumer_id", "event_id"])
        .returning(StreamEvent.seq, StreamEvent.event_id)
    )
    new = {event_id: seq for seq, event_id in (await session.execute(stmt)).all()}
    if released:
        await release(
            session, consumer, [(new[c.event_id], c) for c in curated if c.event_id in new], subscriptions
        )
    return len(new)


async def release(
    session: AsyncSession,
    consumer: StreamConsumer,
    events: Sequence[tuple[int, Curated]],
    subscriptions: Sequence[uuid.UUID],
    *,
    replay_of: uuid.UUID | None = None,
) -> None:
    """Publish logged events to the consumer's topic (through the outbox, in log order) and queue one webhook
    delivery per active subscription. The outbox row has its own id: a replay publishes the same public event
    (same CloudEvents id) again."""
    if not events:
        return
    topic = public_topic(consumer.name)
    await session.execute(
        insert(outbox),
        [
            {
                "event_id": uuid.uuid4(),
                "topic": topic,
                "partition_key": c.subject,
                "event_type": c.type,
                "envelope": c.envelope,
            }
            for _, c in events
        ],
    )
    if subscriptions:
        await session.execute(
            insert(WebhookDelivery),
            [
                {
                    "id": uuid.uuid4(),
                    "subscription_id": sub,
                    "stream_seq": seq,
                    "event_id": c.event_id,
                    "subject": c.subject,
                    "replay_of": replay_of,
                }
                for seq, c in events
                for sub in subscriptions
            ],
        )


def _curated(row: StreamEvent) -> Curated:
    return Curated(row.event_id, row.subject, row.type, row.event_time, row.envelope)


async def take_unreleased(session: AsyncSession, consumer: StreamConsumer) -> list[tuple[int, Curated]]:
    """The events kept while the consumer was paused, in log order, now marked released."""
    rows = (
        await session.execute(
            update(StreamEvent)
            .where(StreamEvent.consumer_id == consumer.id, StreamEvent.released_at.is_(None))
            .values(released_at=utcnow())
            .returning(StreamEvent)
        )
    ).scalars()
    return sorted(((r.seq, _curated(r)) for r in rows), key=lambda e: e[0])


async def released_since(
    session: AsyncSession, consumer: StreamConsumer, since: datetime
) -> list[tuple[int, Curated]]:
    """Released events whose event time is at or after `since`, in log order (what a replay publishes again)."""
    rows = (
        await session.execute(
            select(StreamEvent)
            .where(
                StreamEvent.consumer_id == consumer.id,
                StreamEvent.event_time >= since,
                StreamEvent.released_at.is_not(None),
            )
            .order_by(StreamEvent.seq)
        )
    ).scalars()
    return [(r.seq, _curated(r)) for r in rows]


# --- webhook subscriptions and secrets -------------------------------------------------------------------------


async def add_subscription(
    session: AsyncSession, consumer: StreamConsumer, sub_id: uuid.UUID, url: str, sealed_secret: str
) -> WebhookSubscription:
    sub = WebhookSubscription(id=sub_id, consumer_id=consumer.id, url=url, status="active")
    session.add(sub)
    await session.flush()
    session.add(WebhookSecret(id=uuid.uuid4(), subscription_id=sub.id, sealed_secret=sealed_secret))
    await session.flush()
    return sub


async def subscriptions_of(session: AsyncSession, consumer: StreamConsumer) -> list[WebhookSubscription]:
    return list(
        (
            await session.execute(
                select(WebhookSubscription)
                .where(WebhookSubscription.consumer_id == consumer.id)
                .order_by(WebhookSubscription.created_at)
            )
        ).scalars()
    )


async def subscription(
    session: AsyncSession, consumer: StreamConsumer, sub_id: uuid.UUID
) -> WebhookSubscription | None:
    sub = await session.get(WebhookSubscription, sub_id, with_for_update=True)
    return sub if sub is not None and sub.consumer_id == consumer.id else None


async def rotate_secret(
    session: AsyncSession, sub: WebhookSubscription, sealed_secret: str, old_until: datetime
) -> None:
    """A new secret; the ones still valid stay valid until `old_until` (both sign meanwhile)."""
    now = utcnow()
    await session.execute(
        update(WebhookSecret)
        .where(
            WebhookSecret.subscription_id == sub.id,
            (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > old_until),
        )
        .values(expires_at=old_until if old_until > now else now)
    )
    session.add(WebhookSecret(id=uuid.uuid4(), subscription_id=sub.id, sealed_secret=sealed_secret))
    await session.flush()


async def valid_secrets(session: AsyncSession, sub_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Per subscription its secrets valid now (sealed), newest first."""
    rows = await session.execute(
        select(WebhookSecret.subscription_id, WebhookSecret.sealed_secret)
        .where(
            WebhookSecret.subscription_id.in_(sub_ids),
            (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > func.now()),
        )
        .order_by(WebhookSecret.created_at.desc())
    )
    out: dict[uuid.UUID, list[str]] = {}
    for sub_id, secret in rows:
        out.setdefault(sub_id, []).append(secret)
    return out


# --- the deliverer ---------------------------------------------------------------------------------------------


async def claim_due(session: AsyncSession, limit: int, lease: timedelta) -> list[dict[str, Any]]:
    """Due deliveries whose subject has no earlier pending delivery on the same subscription, leased for
    `lease` (a deliverer that dies mid-attempt leaves them due again when the lease ends).

    Paused consumers and disabled subscriptions are skipped (their deliveries wait).
    """
    earlier = aliased(WebhookDelivery)
    due = (
        select(WebhookDelivery.id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(StreamConsumer, StreamConsumer.id == WebhookSubscription.consumer_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= func.now(),
            WebhookSubscription.status == "active",
            StreamConsumer.status == "active",
            ~exists().where(
                and_(
                    earlier.subscription_id == WebhookDelivery.subscription_id,
                    earlier.subject == WebhookDelivery.subject,
                    earlier.status == "pending",
                    earlier.seq < WebhookDelivery.seq,
                )
            ),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.seq)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
        .scalar_subquery()
    )
    claimed = (
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due))
            .values(next_attempt_at=func.now() + lease, attempts=WebhookDelivery.attempts + 1)
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.subscription_id,
                WebhookDelivery.stream_seq,
                WebhookDelivery.event_id,
                WebhookDelivery.attempts,
            )
        )
    ).all()
    if not claimed:
        return []
    seqs = {c.stream_seq for c in claimed}
    envelopes = dict(
        (
            await session.execute(
                select(StreamEvent.seq, text("stream_event.envelope::text")).where(StreamEvent.seq.in_(seqs))
            )
        ).all()
    )
    subs = {c.subscription_id for c in claimed}
    urls = dict(
        (
            await session.execute(
                select(WebhookSubscription.id, WebhookSubscription.url).where(
                    WebhookSubscription.id.in_(subs)
                )
            )
        ).all()
    )
    consumers = dict(
        (
            await session.execute(
                select(WebhookSubscription.id, StreamConsumer.name)
                .join(StreamConsumer, StreamConsumer.id == WebhookSubscription.consumer_id)
                .where(WebhookSubscription.id.in_(subs))
            )
        ).all()
    )
    keys = await valid_secrets(session, list(subs))
    return [
        {
            "id": c.id,
            "subscription_id": c.subscription_id,
            "event_id": c.event_id,
            "attempt": c.attempts,
            "url": urls[c.subscription_id],
            "consumer": consumers[c.subscription_id],
            "body": orjson.dumps(orjson.loads(envelopes[c.stream_seq])),
            "sealed_secrets": keys.get(c.subscription_id, []),
        }
        for c in claimed
    ]


async def record_attempt(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    attempt: int,
    *,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    outcome: str,
    retry_in: float | None,
) -> None:
    """An attempt's result: delivered, parked, or pending again after `retry_in` seconds."""
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempt=attempt,
            attempted_at=at,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )
    values: dict[str, Any] = {"status": outcome, "last_status_code": status_code, "last_error": error}
    if outcome == "pending":
        values["next_attempt_at"] = utcnow() + timedelta(seconds=retry_in or 0)
    else:
        values["finished_at"] = utcnow()
    await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))


async def deliveries(
    session: AsyncSession, consumer: StreamConsumer, *, status: str | None, after_seq: int | None, limit: int
) -> list[WebhookDelivery]:
    """The consumer's delivery log, oldest first, from a cursor."""
    stmt = (
        select(WebhookDelivery)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookSubscription.consumer_id == consumer.id)
        .order_by(WebhookDelivery.seq)
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if after_seq is not None:
        stmt = stmt.where(WebhookDelivery.seq > after_seq)
    return list((await session.execute(stmt)).scalars())


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    rows = (
        await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        )
    ).scalars()
    out: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for row in rows:
        out.setdefault(row.delivery_id, []).append(row)
    return out


async def delivery_of(
    session: AsyncSession, consumer: StreamConsumer, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    row = (
        await session.execute(
            select(WebhookDelivery)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id == delivery_id, WebhookSubscription.consumer_id == consumer.id)
        )
    ).scalar_one_or_none()
    return row


async def redeliver(session: AsyncSession, original: WebhookDelivery) -> WebhookDelivery:
    """A new pending delivery of the same event to the same subscription (a replay of a parked or any delivery)."""
    row = WebhookDelivery(
        id=uuid.uuid4(),
        subscription_id=original.subscription_id,
        stream_seq=original.stream_seq,
        event_id=original.event_id,
        subject=original.subject,
        status="pending",
        replay_of=original.id,
    )
    session.add(row)
    await session.flush()
    return row


async def consumer_figures(session: AsyncSession) -> list[dict[str, Any]]:
    """Per consumer: events logged, unreleased (paused), outbox rows not yet on its topic, deliveries by status,
    and the age of the oldest pending delivery (the metrics' lag)."""
    rows = await session.execute(
        text(
            """
            SELECT c.name,
              (SELECT count(*) FROM stream_event e WHERE e.consumer_id = c.id) AS logged,
              (SELECT count(*) FROM stream_event e WHERE e.consumer_id = c.id AND e.released_at IS NULL) AS held,
              (SELECT count(*) FROM outbox o WHERE o.published_at IS NULL AND o.topic = :prefix || c.name || '.v1')
                AS unpublished,
              (SELECT count(*) FILTER (WHERE d.status = 'pending') FROM webhook_delivery d
                 JOIN webhook_subscription s ON s.id = d.subscription_id WHERE s.consumer_id = c.id) AS pending,
              (SELECT count(*) FILTER (WHERE d.status = 'delivered') FROM webhook_delivery d
                 JOIN webhook_subscription s ON s.id = d.subscription_id WHERE s.consumer_id = c.id) AS delivered,
              (SELECT count(*) FILTER (WHERE d.status = 'parked') FROM webhook_delivery d
                 JOIN webhook_subscription s ON s.id = d.subscription_id WHERE s.consumer_id = c.id) AS parked,
              (SELECT count(*) FROM webhook_attempt a JOIN webhook_delivery d ON d.id = a.delivery_id
                 JOIN webhook_subscription s ON s.id = d.subscription_id
                 WHERE s.consumer_id = c.id AND (a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299))
                AS failed_attempts,
              (SELECT extract(epoch FROM now() - min(d.created_at)) FROM webhook_delivery d
                 JOIN webhook_subscription s ON s.id = d.subscription_id
                 WHERE s.consumer_id = c.id AND d.status = 'pending') AS oldest_pending_seconds
            FROM stream_consumer c ORDER BY c.name
            """
        ),
        {"prefix": "kencana.public."},
    )
    return [dict(r._mapping) for r in rows]
