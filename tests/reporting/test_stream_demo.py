"""The pieces of `make demo`'s ministry act (cli/kencana_cli/demo/ministry.py) against a real reporting API,
the real curator, relay and deliverer, real Kafka and the demo's own loopback receiver (make demo itself resets
the shared databases, so it is not run here)."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from datetime import date

import pytest
import uvicorn
from kencana_cli.demo.api import Api
from kencana_cli.demo.ministry import CONSUMER, Ministry
from reporting.main import create_app
from reporting.streams.webhooks import Deliverer
from rich.console import Console

from shared.db import create_engine, create_sessionmaker
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique, wait_for
from shared.topics import public_topic
from tests.reporting.streams_kit import Child, curate, measured, produce, relay, stream_settings

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

INTERNAL = ["kencana.registry", "kencana.uppka", "kencana.dashat"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def reporting_url(kafka_bootstrap: str) -> AsyncIterator[tuple[str, object]]:
    url = await recreate_database(f"test_reporting_stream_demo_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = stream_settings(url, "." + unique())
    await ensure_service_topics(settings, INTERNAL)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", log_config=None
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", settings
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await delete_topics(
            kafka_bootstrap, [*(settings.topic(t) for t in INTERNAL), settings.topic(public_topic(CONSUMER))]
        )


async def test_the_demo_shows_a_ministry_stream_and_a_verified_webhook(
    reporting_url: tuple[str, object],
) -> None:
    base, settings = reporting_url
    engine = create_engine(settings.database_url, pool_size=4)  # type: ignore[attr-defined]
    sessionmaker = create_sessionmaker(engine)
    out = io.StringIO()
    console = Console(file=out, width=200)
    api = Api({"reporting": base})
    ministry = Ministry(
        api, console, bootstrap_servers=settings.kafka_bootstrap_servers, receiver_port=free_port()
    )  # type: ignore[attr-defined]
    deliverer = Deliverer(settings, sessionmaker)  # type: ignore[arg-type]
    try:
        assert await ministry.register()
        child = Child()
        await produce(settings, [measured(child, date(2026, 11, 20), -2.5)])  # type: ignore[arg-type]
        await curate(settings, sessionmaker, 1)  # type: ignore[arg-type]
        assert await relay(settings, sessionmaker) == 1  # type: ignore[arg-type]

        async def delivered() -> bool:
            await deliverer.deliver_due()
            return bool(ministry.receiver.received)

        await wait_for(delivered, timeout=30, what="the demo receiver's first POST")
        await ministry.show(timeout=5)
        text = out.getvalue()
        assert "kemenkes-demo registered" in text
        assert "child.measured.v1" in text and "topic " in text and ": 1 events" in text
        assert "1 POSTs received, every signature verified" in text
        assert str(child.person_id) not in text and str(child.birth_date) not in text

        # A second run finds the consumer and the subscription and rotates the secret instead.
        await ministry.close()
        again = Ministry(
            api,
            console,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            receiver_port=ministry.receiver_port,
        )  # type: ignore[attr-defined]
        try:
            assert await again.register()
            assert "(secret rotated)" in out.getvalue()
            assert again.receiver.secret != ministry.receiver.secret
        finally:
            await again.close()
    finally:
        await ministry.close()
        await deliverer.close()
        await api.aclose()
        await engine.dispose()
