"""API models of the stream operations (`streams:admin`) and of a consumer's delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from reporting.streams.domain import Profile

if TYPE_CHECKING:
    from reporting.streams.models import StreamConsumer, WebhookAttempt, WebhookDelivery, WebhookSubscription
    from reporting.streams.service import DeliveryLog, IssuedSecret, Replayed


class ConsumerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=3,
        max_length=40,
        description="a-z, 0-9 and '-': names the topic `kencana.public.<name>.v1` and the consumer's ACL prefix",
        examples=["kemenkes-eppgbm"],
    )
    description: str | None = Field(default=None, max_length=500)
    profile: Profile


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: Profile


class ConsumerRead(BaseModel):
    name: str
    description: str | None
    profile: Profile
    status: Literal["active", "paused"]
    topic: str = Field(description="The consumer's Kafka topic (physical name)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, consumer: StreamConsumer, topic: str) -> Self:
        return cls(
            name=consumer.name,
            description=consumer.description,
            profile=Profile.model_validate(consumer.profile),
            status=consumer.status,
            topic=topic,
            created_at=consumer.created_at,
            updated_at=consumer.updated_at,
        )


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000, description="https URL on a public address (http to loopback in dev only)"
    )


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    status: Literal["active", "disabled"]
    created_at: datetime

    @classmethod
    def from_domain(cls, sub: WebhookSubscription) -> Self:
        return cls(id=sub.id, url=sub.url, status=sub.status, created_at=sub.created_at)


class WebhookSecretRead(BaseModel):
    """A signing secret, shown once: keep it in the receiver's secret store."""

    subscription_id: uuid.UUID
    secret: str = Field(description="Standard Webhooks secret (`whsec_` + base64)")
    previous_valid_until: datetime | None = Field(
        default=None,
        description="After a rotation: until when the previous secret still signs (both meanwhile)",
    )

    @classmethod
    def from_domain(cls, issued: IssuedSecret) -> Self:
        return cls(
            subscription_id=issued.subscription.id,
            secret=issued.secret,
            previous_valid_until=issued.previous_valid_until,
        )


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Standard Webhooks secret (`whsec_` + base64), shown once")

    @classmethod
    def from_issued(cls, issued: IssuedSecret) -> Self:
        return cls(**WebhookRead.from_domain(issued.subscription).model_dump(), secret=issued.secret)


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="How long the previous secret stays valid beside the new one",
    )


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime = Field(
        description="Publish again (topic and webhooks) every event of the stream from this time"
    )


class ReplayResult(BaseModel):
    events: int
    deliveries: int

    @classmethod
    def from_domain(cls, replayed: Replayed) -> Self:
        return cls(events=replayed.events, deliveries=replayed.deliveries)


class Attempt(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def from_domain(cls, a: WebhookAttempt) -> Self:
        return cls(
            attempt=a.attempt,
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )


class DeliveryRead(BaseModel):
    id: uuid.UUID
    seq: int
    subscription_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The CloudEvents id (= `webhook-id`)")
    subject: str
    status: Literal["pending", "delivered", "parked"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    replay_of: uuid.UUID | None
    attempt_log: list[Attempt]

    @classmethod
    def from_domain(cls, d: WebhookDelivery, attempts: Sequence[WebhookAttempt] = ()) -> Self:
        return cls(
            id=d.id,
            seq=d.seq,
            subscription_id=d.subscription_id,
            event_id=d.event_id,
            subject=d.subject,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            finished_at=d.finished_at,
            replay_of=d.replay_of,
            attempt_log=[Attempt.from_domain(a) for a in attempts],
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None = Field(description="`after` of the next page (null: no more)")

    @classmethod
    def from_domain(cls, log: DeliveryLog) -> Self:
        return cls(
            items=[DeliveryRead.from_domain(d, log.attempts.get(d.id, [])) for d in log.deliveries],
            next_cursor=log.next_cursor,
        )
