"""What the stream tests share: a database, settings on unique topics, internal events, a webhook receiver."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson
import uvicorn
from aiokafka import AIOKafkaProducer
from reporting.config import Settings
from reporting.models import outbox
from reporting.streams.process import build_curator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.events import CloudEvent
from shared.events.envelope import build_envelope
from shared.events.registry import (
    BadutaStuntingDetected,
    ChildMeasured,
    PregnancyRegistered,
    StuntingRiskChanged,
)
from shared.kafka import security_options
from shared.outbox import Relay


def stream_settings(url: str, suffix: str, **overrides: object) -> Settings:
    return Settings(
        database_url=url,
        topic_suffix=suffix,
        topic_partitions=3,
        streams_pseudonym_key="test-master-key-not-secret",
        webhook_timeout_seconds=0.5,
        webhook_backoff_base_seconds=0.05,
        webhook_backoff_max_seconds=0.2,
        webhook_max_attempts=6,
        **overrides,  # type: ignore[arg-type]
    )


@dataclass
class Child:
    person_id: uuid.UUID = field(default_factory=uuid.uuid4)
    family_id: uuid.UUID = field(default_factory=uuid.uuid4)
    birth_date: date = date(2025, 2, 28)
    village_code: str = "15.71.01.1001"


def measured(child: Child, on: date, haz: float) -> CloudEvent:
    data = ChildMeasured(
        measurement_id=uuid.uuid4(),
        person_id=child.person_id,
        family_id=child.family_id,
        village_code=child.village_code,
        rw="002",
        sex="P",
        measured_on=on,
        age_days=(on - child.birth_date).days,
        weight_kg=9.1,
        lenhei_cm=76.0,
        position="l",
        haz=haz,
        haz_class="stunted" if haz < -2 else "normal",
        rule_version="who2006-v1",
    )
    return build_envelope(data, key=str(child.family_id), time=datetime(2026, 11, 30, 8, tzinfo=UTC))


def detected(child: Child, on: date, haz: float) -> CloudEvent:
    data = BadutaStuntingDetected(
        case_id=uuid.uuid4(),
        person_id=child.person_id,
        family_id=child.family_id,
        village_code=child.village_code,
        rw="002",
        measurement_id=uuid.uuid4(),
        measured_on=on,
        haz=haz,
        age_days=(on - child.birth_date).days,
        rule_version="who2006-v1",
        severity="stunted",
        sex="P",
        birth_date=child.birth_date,
        welfare_decile=2,
        krs=True,
    )
    return build_envelope(data, key=str(child.family_id))


def risk_changed(child: Child) -> CloudEvent:
    data = StuntingRiskChanged(
        family_id=child.family_id,
        village_code=child.village_code,
        rw="002",
        at_risk=True,
        reasons=["jamban"],
        target=True,
        welfare_decile=2,
        rule_version="krs-v1",
    )
    return build_envelope(data, key=str(child.family_id))


def pregnancy(child: Child) -> CloudEvent:
    data = PregnancyRegistered(
        pregnancy_id=uuid.uuid4(),
        person_id=uuid.uuid4(),
        family_id=child.family_id,
        village_code=child.village_code,
        rw="002",
        lmp=date(2026, 6, 1),
        expected_delivery=date(2027, 3, 8),
        lila_cm=22.9,
        hb_g_dl=10.2,
        kek=True,
        anaemia="mild",
        mother_age_years=19,
        krs=True,
        rule_version="krs-v1",
    )
    return build_envelope(data, key=str(child.family_id))


def internal_ids(envelopes: list[CloudEvent]) -> set[str]:
    """Every id an internal event carries (its own, its key, every uuid in its payload)."""
    ids: set[str] = set()
    for env in envelopes:
        ids |= {env.id, env.partitionkey}
        for value in env.data.values():
            if isinstance(value, str):
                with suppress(ValueError):
                    ids.add(str(uuid.UUID(value)))
    return ids


async def produce(settings: Settings, envelopes: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, **security_options()
    )
    await producer.start()
    try:
        for env in envelopes:
            topic = settings.topic(f"kencana.{env.type.split('.', 1)[0]}")
            await producer.send_and_wait(
                topic, orjson.dumps(env.model_dump(mode="json")), key=env.partitionkey.encode()
            )
    finally:
        await producer.stop()


async def curate(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], expected: int) -> None:
    """Run the curator (the real consumer group runner) until `expected` internal events were applied."""
    runner = build_curator(settings, sessionmaker)
    await runner.start()
    try:
        async with asyncio.timeout(60):
            while runner.outcome.applied + runner.outcome.duplicates < expected:
                await runner.poll_once(timeout_ms=300)
    finally:
        await runner.close()
    assert runner.outcome.dead_lettered == 0


async def relay(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Publish the outbox (the real relay) to the consumers' topics."""
    r = Relay(
        service="reporting",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_for=settings.topic,
        wake_on_commit=False,
    )
    try:
        return await r.publish_pending()
    finally:
        await r._reset_producer()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Verification by the Standard Webhooks reference library (not by the code under test)."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


@dataclass
class Receiver:
    """A real HTTP server on loopback standing for a ministry's webhook endpoint."""

    secrets: list[str] = field(default_factory=list)
    # Per webhook-id: answers to give before accepting ("500" or "timeout"), consumed in order.
    script: list[str] = field(default_factory=list)
    always_fail: bool = False
    timeout_sleep: float = 1.5
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    accepted: list[dict[str, object]] = field(default_factory=list)
    bad_signatures: int = 0
    _seen: dict[str, int] = field(default_factory=dict)
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((headers.get("webhook-id", ""), headers, body))
        if not self.secrets or not any(verify(s, headers, body) for s in self.secrets):
            self.bad_signatures += 1
            return Response(status_code=401)
        msg_id = headers["webhook-id"]
        n = self._seen.get(msg_id, 0)
        self._seen[msg_id] = n + 1
        if self.always_fail:
            return Response(status_code=500)
        if n < len(self.script):
            if self.script[n] == "timeout":
                await asyncio.sleep(self.timeout_sleep)
                return Response(status_code=204)
            return Response(status_code=500)
        event = orjson.loads(body)
        assert headers["content-type"] == "application/cloudevents+json"
        self.accepted.append(event)
        return Response(status_code=204)


@asynccontextmanager
async def running_receiver(receiver: Receiver, host: str = "127.0.0.1") -> AsyncIterator[Receiver]:
    sock = socket.socket()
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    # log_config=None: uvicorn's default config would take its loggers off the root (the log tests read them).
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    receiver.url = f"http://{host}:{port}/hook"
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
                await asyncio.sleep(0.05)
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def older_than(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
