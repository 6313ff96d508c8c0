"""The four services as real processes (uvicorn APIs, relays, consumers) on the real PostgreSQL and Kafka.

Each run gets its own databases (built by the migrations) and its own topics (a topic suffix), so it never
meets another run's data; every process it starts is stopped at the end, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.config import REPO_ROOT, kafka_bootstrap_servers
from shared.kafka import client_security
from shared.kafka_acl import put_user, remove_user
from shared.kafka_security import Principal, service_acls
from shared.migrations import upgrade
from shared.testing.plugin import CHECKOUT_TAG, recreate_database, unique

SERVICES = ("registry", "uppka", "dashat", "reporting")
ROLES = {
    "registry": ("api", "relay"),
    "uppka": ("api", "relay", "consumer"),
    "dashat": ("api", "relay", "consumer"),
    "reporting": ("api", "relay", "consumer"),  # the relay: the ministries' streams and webhooks (issue 15)
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """Running processes of one end-to-end run."""

    log_dir: Path
    suffix: str = field(default_factory=lambda: "." + unique("e2e"))
    # Databases are named <prefix>_<service>_<checkout>: the scale rehearsal keeps apart from the e2e tests.
    database_prefix: str = "e2e"
    ports: dict[str, int] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    procs: dict[tuple[str, str], subprocess.Popen[bytes]] = field(default_factory=dict)
    # On a secured bus each service runs as a Kafka user of its own holding exactly the ACLs its real user has
    # (shared/kafka_security.py.service_acls) on this run's topics: the flows prove those ACLs are enough.
    kafka_users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def env(self, service: str) -> dict[str, str]:
        prefix = service.upper()
        env = dict(os.environ)
        env.update(
            {
                f"{prefix}_DATABASE_URL": self.urls[service],
                f"{prefix}_TOPIC_SUFFIX": self.suffix,
                f"{prefix}_TOPIC_PARTITIONS": "3",
                f"{prefix}_RELAY_POLL_INTERVAL_SECONDS": "0.05",
                f"{prefix}_ENVIRONMENT": "test",
                # The flows, the demo and the fault run drive thousands of requests a minute as one client; the
                # limits themselves are tested in tests/<service>/test_web_controls.py and tests/shared.
                f"{prefix}_RATE_LIMIT_ENABLED": "false",
                # Published outbox rows stay (marked): the fault run counts the events each service emitted
                # from its outbox, and the flagship bench times the relay's hop by `published_at`.
                f"{prefix}_RELAY_RETENTION_HOURS": "72",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if service in self.kafka_users:
            user, password = self.kafka_users[service]
            env[f"{prefix}_KAFKA_SASL_USERNAME"] = user
            env[f"{prefix}_KAFKA_SASL_PASSWORD"] = password
        return env

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def command(self, service: str, role: str) -> list[str]:
        bin_dir = Path(sys.executable).parent
        if role == "api":
            return [
                str(bin_dir / "uvicorn"),
                f"{service}.main:create_app",
                "--factory",
                "--no-server-header",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[service]),
                "--log-level",
                "warning",
            ]
        # "consumer-2": a second replica of the consumer (the fault scenarios scale consumers up and down).
        return [sys.executable, "-m", f"{service}.{role.split('-')[0]}"]

    async def prepare(self) -> None:
        for service in SERVICES:
            url = await recreate_database(f"{self.database_prefix}_{service}_{CHECKOUT_TAG}")
            await upgrade(service, url)
            self.urls[service] = url
            self.ports[service] = free_port()
        if client_security().secured:
            for service in SERVICES:
                user, password = f"e2e-{service}{self.suffix}", unique("pw-")
                acls = service_acls(service, topic_suffix=self.suffix)
                await put_user(kafka_bootstrap_servers(), Principal(user, acls), password)
                self.kafka_users[service] = (user, password)

    async def forget_kafka_users(self) -> None:
        """Delete this run's Kafka users and their ACLs."""
        for user, _ in self.kafka_users.values():
            await remove_user(kafka_bootstrap_servers(), user)
        self.kafka_users.clear()

    def start(self, service: str, role: str, env: dict[str, str] | None = None) -> None:
        """Start one process; `env` adds variables for this start only (the fault scenarios' crash points)."""
        log = (self.log_dir / f"{service}-{role}.log").open("ab")
        self.procs[(service, role)] = subprocess.Popen(
            self.command(service, role),
            cwd=REPO_ROOT,
            env={**self.env(service), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, service: str, role: str, *, kill: bool = False, timeout: float = 20) -> None:
        proc = self.procs.pop((service, role), None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    async def wait_healthy(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                proc = self.procs.get((service, "api"))
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{service} API exited: {self.tail(service, 'api')}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.base_url(service) + "/healthz", timeout=2)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{service} API not healthy after {timeout}s: {self.tail(service, 'api')}"
                    )
                await asyncio.sleep(0.2)

    def tail(self, service: str, role: str, lines: int = 30) -> str:
        path = self.log_dir / f"{service}-{role}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def start_all(self) -> None:
        for service in SERVICES:
            for role in ROLES[service]:
                self.start(service, role)
        for service in SERVICES:
            await self.wait_healthy(service)

    def stop_all(self) -> None:
        for service, role in list(self.procs):
            self.stop(service, role)

    def running(self, service: str, role: str) -> bool:
        """Whether the process was started, not stopped by us, and has not exited by itself."""
        proc = self.procs.get((service, role))
        return proc is not None and proc.poll() is None

    def exited(self) -> list[tuple[str, str]]:
        """Processes that exited by themselves (a stopped one is no longer listed)."""
        return [key for key, proc in list(self.procs.items()) if proc.poll() is not None]

    def assert_alive(self) -> None:
        dead = {k: p.returncode for k, p in self.procs.items() if p.poll() is not None}
        if dead:
            details = "\n".join(f"{s}/{r}: {self.tail(s, r)}" for s, r in dead)
            raise AssertionError(f"processes died: {dead}\n{details}")
