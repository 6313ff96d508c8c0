"""Operating the curated streams (scope `streams:admin`) and a consumer's own delivery log.

Actions are POSTs on the resource (`/pause`, `/resume`, `/replay`, `/secret:rotate`...): none of them is an update
of a representation the caller read, so none takes If-Match.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from reporting.config import Settings
from reporting.streams import service
from reporting.streams.schemas import (
    ConsumerCreate,
    ConsumerRead,
    DeliveryPage,
    DeliveryRead,
    ProfileUpdate,
    Replay,
    ReplayResult,
    RotateSecret,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookSecretRead,
)
from shared.auth import Principal, current_principal, require_scopes
from shared.errors import Forbidden, NotFound
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES

ADMIN = "streams:admin"
# A ministry's own token: scope `streams:read` and `sub` = its consumer name; it reads its own delivery log only.
READ = "streams:read"

router = APIRouter(prefix="/v1/stream-consumers", tags=["streams"], responses=PROBLEM_RESPONSES)
Admin = Annotated[Principal, require_scopes(ADMIN)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


@router.post("", status_code=201, response_model=ConsumerRead, summary="Register a consumer and its profile")
async def register(
    body: ConsumerCreate, session: SessionDep, settings: SettingsDep, _: Admin
) -> ConsumerRead:
    consumer = await service.register(session, settings, body)
    return ConsumerRead.from_domain(consumer, service.consumer_topic(settings, consumer))


@router.get("", response_model=list[ConsumerRead], summary="Registered consumers")
async def list_consumers(session: SessionDep, settings: SettingsDep, _: Admin) -> list[ConsumerRead]:
    return [
        ConsumerRead.from_domain(c, service.consumer_topic(settings, c))
        for c in await service.list_all(session)
    ]


@router.get("/{name}", response_model=ConsumerRead, summary="One consumer")
async def get_consumer(name: str, session: SessionDep, settings: SettingsDep, _: Admin) -> ConsumerRead:
    consumer = await service.get(session, name)
    return ConsumerRead.from_domain(consumer, service.consumer_topic(settings, consumer))


@router.post("/{name}/profile", response_model=ConsumerRead, summary="Replace the profile (applies from now)")
async def change_profile(
    name: str, body: ProfileUpdate, session: SessionDep, settings: SettingsDep, _: Admin
) -> ConsumerRead:
    consumer = await service.change_profile(session, name, body.profile)
    return ConsumerRead.from_domain(consumer, service.consumer_topic(settings, consumer))


@router.post("/{name}/pause", response_model=ConsumerRead, summary="Hold the stream and its webhooks")
async def pause(name: str, session: SessionDep, settings: SettingsDep, _: Admin) -> ConsumerRead:
    consumer = await service.pause(session, name)
    return ConsumerRead.from_domain(consumer, service.consumer_topic(settings, consumer))


@router.post("/{name}/resume", response_model=ConsumerRead, summary="Publish what was held, then go on")
async def resume(name: str, session: SessionDep, settings: SettingsDep, _: Admin) -> ConsumerRead:
    consumer = await service.resume(session, name)
    return ConsumerRead.from_domain(consumer, service.consumer_topic(settings, consumer))


@router.post("/{name}/replay", response_model=ReplayResult, summary="Publish the stream again from a time")
async def replay(name: str, body: Replay, session: SessionDep, _: Admin) -> ReplayResult:
    return ReplayResult.from_domain(await service.replay(session, name, body.since))


@router.post(
    "/{name}/webhooks", status_code=201, response_model=WebhookCreated, summary="Subscribe a webhook"
)
async def add_webhook(
    name: str, body: WebhookCreate, session: SessionDep, settings: SettingsDep, _: Admin
) -> WebhookCreated:
    return WebhookCreated.from_issued(await service.add_webhook(session, settings, name, body.url))


@router.get("/{name}/webhooks", response_model=list[WebhookRead], summary="The consumer's webhooks")
async def webhooks(name: str, session: SessionDep, _: Admin) -> list[WebhookRead]:
    return [WebhookRead.from_domain(s) for s in await service.webhooks(session, name)]


@router.post(
    "/{name}/webhooks/{subscription_id}/secret:rotate",
    response_model=WebhookSecretRead,
    summary="Rotate the signing secret (both sign during the overlap)",
)
async def rotate_secret(
    name: str,
    subscription_id: uuid.UUID,
    body: RotateSecret,
    session: SessionDep,
    settings: SettingsDep,
    _: Admin,
) -> WebhookSecretRead:
    issued = await service.rotate_secret(session, settings, name, subscription_id, body.overlap_seconds)
    return WebhookSecretRead.from_domain(issued)


async def _log_reader(name: str, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """An operator, or the consumer itself; another consumer's log answers like a missing one."""
    if principal.has(ADMIN):
        return principal
    if not principal.has(READ):
        raise Forbidden(f"missing scope: {READ}", extra={"missing_scopes": [READ]})
    if principal.sub != name:
        raise NotFound("stream consumer not found")
    return principal


LogReader = Annotated[Principal, Depends(_log_reader)]


@router.get("/{name}/deliveries", response_model=DeliveryPage, summary="Webhook delivery log")
async def deliveries(
    name: str,
    session: SessionDep,
    _: LogReader,
    status: Annotated[Literal["pending", "delivered", "parked"] | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    return DeliveryPage.from_domain(
        await service.delivery_log(session, name, status=status, after=after, limit=limit)
    )


@router.post(
    "/{name}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryRead,
    summary="Deliver an event again (a parked one above all)",
)
async def replay_delivery(name: str, delivery_id: uuid.UUID, session: SessionDep, _: Admin) -> DeliveryRead:
    return DeliveryRead.from_domain(await service.replay_delivery(session, name, delivery_id))
