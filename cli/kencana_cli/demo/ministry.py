"""The demo's last act: one ministry's curated stream and one signed webhook delivery (issue 15).

Before the story, the operator registers a ministry (Kemenkes' growth monitoring) with a profile and a webhook on
a receiver this process runs on loopback (dev allows http to loopback; production only https to public
addresses); after the summary, the demo reads what the ministry got: its Kafka topic
(`kencana.public.<name>.v1`, pseudonymous ids, no birth date, no RT/RW) and the webhook POSTs, each verified
with the Standard Webhooks signature as a ministry would. A second run finds the consumer and the subscription
(same receiver URL) and rotates the secret instead of subscribing again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from kencana_cli.demo.api import Api, problem
from shared.auth import issue_dev_token
from shared.config import kafka_bootstrap_servers
from shared.kafka import client_security, partition_offsets
from shared.kafka_acl import put_user
from shared.kafka_security import Principal, ministry_acls, ministry_principal
from shared.topics import public_topic

CONSUMER = "kemenkes-demo"
RECEIVER_PORT = 8095
PROFILE: dict[str, Any] = {
    "legal_basis": "health_surveillance",
    "events": {
        "child.measured": ["sex", "age", "haz", "haz_class"],
        "child.measurement_retracted": [],
        "stunting.detected": ["age", "severity", "haz"],
        "stunting.resolved": ["haz"],
        "stunting.retracted": ["reason"],
    },
    "age": "months",
    "region": "village",
}


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, any `v1,` signature."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(
        s.startswith("v1,") and hmac.compare_digest(s[3:], expected)
        for s in headers["webhook-signature"].split()
    )


@dataclass
class Receiver:
    """A minimal HTTP/1.1 webhook endpoint on loopback (asyncio streams: no web framework needed)."""

    secret: str = ""
    received: list[tuple[dict[str, Any], bool]] = field(default_factory=list)
    server: asyncio.Server | None = None
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                ok = bool(self.secret) and verify_signature(self.secret, headers, body)
                if ok:
                    self.received.append((orjson.loads(body), ok))
                    self.got.set()
                status = b"204 No Content" if ok else b"401 Unauthorized"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            # The deliverer's keep-alive connection is still open when the demo ends and asyncio.run cancels its
            # handler: ending quietly here is the end of the demo, not an error (it printed a traceback per connection).
            pass
        finally:
            writer.close()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Ministry:
    def __init__(
        self,
        api: Api,
        console: Console,
        *,
        bootstrap_servers: str | None = None,
        receiver_port: int = RECEIVER_PORT,
    ) -> None:
        self.api = api
        self.receiver_port = receiver_port
        self.console = console
        self.bootstrap_servers = bootstrap_servers or kafka_bootstrap_servers()
        self.token = issue_dev_token(scopes=["streams:admin"], sub="demo-operator", ttl_seconds=4 * 3600)
        self.receiver = Receiver()
        self.topic = ""
        # The Kafka user the stream was read with on a secured bus (empty: the bus has no authentication).
        self.kafka_user = ""

    async def register(self) -> bool:
        """Register the consumer and its webhook (or find them); False when the streams API is not there."""
        r = await self.api.call(
            "reporting",
            "POST",
            "/v1/stream-consumers",
            json={"name": CONSUMER, "profile": PROFILE, "description": "Kemenkes e-PPGBM (demo)"},
            token=self.token,
        )
        if r.status_code == 409:
            r = await self.api.call("reporting", "GET", f"/v1/stream-consumers/{CONSUMER}", token=self.token)
        if r.status_code not in (200, 201):
            self.console.print(f"  [yellow]ministry stream skipped[/]: {problem(r)}")
            return False
        self.topic = r.json()["topic"]
        if not _port_free(self.receiver_port):
            # Another demo (a parallel test run) holds the usual port: a port of our own, a new subscription.
            self.receiver_port = 0
        await self.receiver.start(self.receiver_port)
        if self.receiver.server is not None:
            self.receiver_port = int(self.receiver.server.sockets[0].getsockname()[1])
        url = f"http://127.0.0.1:{self.receiver_port}/kemenkes/hook"
        hooks = await self.api.call(
            "reporting", "GET", f"/v1/stream-consumers/{CONSUMER}/webhooks", token=self.token
        )
        existing = (
            next((h for h in hooks.json() if h["url"] == url), None) if hooks.status_code == 200 else None
        )
        if existing is None:
            r = await self.api.call(
                "reporting",
                "POST",
                f"/v1/stream-consumers/{CONSUMER}/webhooks",
                json={"url": url},
                token=self.token,
            )
        else:  # a previous run's subscription: a new secret, the old one valid 60 s more
            r = await self.api.call(
                "reporting",
                "POST",
                f"/v1/stream-consumers/{CONSUMER}/webhooks/{existing['id']}/secret:rotate",
                json={"overlap_seconds": 60},
                token=self.token,
            )
        if r.status_code not in (200, 201):
            self.console.print(f"  [yellow]webhook skipped[/]: {problem(r)}")
            return True
        self.receiver.secret = r.json()["secret"]
        self.console.print(
            f"  ministry [bold]{CONSUMER}[/] registered: topic {self.topic}, webhook {url}"
            + (" (secret rotated)" if existing else "")
        )
        return True

    async def ministry_credentials(self) -> dict[str, Any]:
        """On a secured bus the ministry reads with its own SCRAM user, allowed READ on its topic only.

        The demo runs as the admin, so it creates (or rotates) that user as `kencana kafka-security ministry`
        would, with a fresh password, and reads with it.
        """
        security = client_security()
        if not security.secured:
            return {}
        user = ministry_principal(CONSUMER)
        password = secrets.token_hex(32)
        suffix = self.topic.removeprefix(public_topic(CONSUMER))  # a test run's topic suffix, else empty
        acls = ministry_acls(CONSUMER, topic_suffix=suffix)
        await put_user(self.bootstrap_servers, Principal(user, acls), password)
        self.kafka_user = user
        return security.as_user(user, password).client_options()

    async def stream_messages(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The whole topic, read as the ministry would (from the beginning, no group)."""
        offsets = await partition_offsets(self.bootstrap_servers, [self.topic])
        expected = sum(end - first for first, end in offsets.values())
        out: list[dict[str, Any]] = []
        if not expected:
            return out
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **await self.ministry_credentials(),
        )
        await consumer.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(out) < expected and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out.extend(orjson.loads(r.value or b"{}") for r in records)
        finally:
            await consumer.stop()
        out.sort(key=lambda m: str(m.get("time", "")))
        return out

    async def show(self, timeout: float = 60.0) -> None:
        """What the ministry received: the last events of its topic and the verified webhook deliveries."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.receiver.got.wait(), timeout)
        messages = await self.stream_messages()
        self.console.print()
        self.console.print(
            f"[bold]What {CONSUMER} received[/] (pseudonymous ids of its own, no birth date, no RT/RW)"
        )
        if self.kafka_user:
            self.console.print(
                f"  read as Kafka user {self.kafka_user} (SASL/SCRAM-SHA-512 over TLS; ACL: READ on {self.topic} only)"
            )
        table = Table("type", "subject (pseudonym)", "data")
        for m in messages[-6:]:
            data = {k: v for k, v in m["data"].items() if k != "child_id"}
            table.add_row(
                m["type"].removeprefix("kencana.public."),
                m["subject"][:12] + "...",
                orjson.dumps(data).decode(),
            )
        self.console.print(table)
        self.console.print(f"  topic {self.topic}: {len(messages)} events")
        if self.receiver.received:
            event, _ = self.receiver.received[-1]
            self.console.print(
                f"  webhook: {len(self.receiver.received)} POSTs received, every signature verified; last "
                f"{event['type']} id {event['id']}"
            )
        else:
            self.console.print(
                f"  [yellow]no webhook delivery within {timeout:.0f} s[/] (is `python -m reporting.relay` running?)"
            )
        r = await self.api.call(
            "reporting",
            "GET",
            f"/v1/stream-consumers/{CONSUMER}/deliveries",
            params={"status": "delivered", "limit": 1},
            token=self.token,
        )
        if r.status_code == 200 and r.json()["items"]:
            d = r.json()["items"][0]
            self.console.print(
                f"  delivery log (GET /v1/stream-consumers/{CONSUMER}/deliveries): first {d['status']}"
                f" after {d['attempts']} attempt(s)"
            )

    async def close(self) -> None:
        await self.receiver.stop()
