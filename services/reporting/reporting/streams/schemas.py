"""API models of the stream operations (`streams:admin`) and of a consumer's delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reporting.streams.domain import Profile


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


class WebhookSecretRead(BaseModel):
    """A signing secret, shown once: keep it in the receiver's secret store."""

    subscription_id: uuid.UUID
    secret: str = Field(description="Standard Webhooks secret (`whsec_` + base64)")
    previous_valid_until: datetime | None = Field(
        default=None,
        description="After a rotation: until when the previous secret still signs (both meanwhile)",
    )


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Standard Webhooks secret (`whsec_` + base64), shown once")


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


class Attempt(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


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


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None = Field(description="`after` of the next page (null: no more)")
