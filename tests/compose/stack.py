"""The compose stack started by `make test-compose` (scripts/compose-test.sh), seen from the tests.

It offers what the end-to-end flows use of tests.e2e.stack.Stack (base_url, stop, start, assert_alive), so the
same flows run against the containers; stop and start are `docker compose kill` and `docker compose start`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.stack import ROLES, SERVICES

# Set by scripts/compose-test.sh for the pytest run; without them (plain `make test`) the compose tests skip.
PROJECT_ENV = "KENCANA_COMPOSE_PROJECT"
FILES_ENV = "KENCANA_COMPOSE_FILES"
MODE_ENV = "KENCANA_COMPOSE_MODE"
ONE_SHOT = ("keys", "migrate", "topics")
COMMAND_TIMEOUT = 120


def long_running() -> list[str]:
    return [f"{svc}-{role}" for svc in SERVICES for role in ROLES[svc]]


@dataclass
class ComposeStack:
    project: str
    files: list[str]
    mode: str
    urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> ComposeStack | None:
        project = os.environ.get(PROJECT_ENV)
        if not project:
            return None
        urls = {svc: os.environ[f"KENCANA_COMPOSE_{svc.upper()}_URL"] for svc in SERVICES}
        return cls(project, os.environ[FILES_ENV].split(":"), os.environ.get(MODE_ENV, "?"), urls)

    def compose(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        files = [arg for path in self.files for arg in ("-f", path)]
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, *files, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"docker compose {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout

    def base_url(self, service: str) -> str:
        return self.urls[service]

    def stop(self, service: str, role: str, *, kill: bool = False, timeout: float = 20) -> None:
        name = f"{service}-{role}"
        if kill:
            self.compose("kill", name)
        else:
            self.compose("stop", "--timeout", str(int(timeout)), name)

    def start(self, service: str, role: str) -> None:
        self.compose("start", f"{service}-{role}")

    def containers(self) -> dict[str, dict[str, Any]]:
        """Compose service name -> `docker inspect` of its container (one replica each), exited ones included."""
        ids = self.compose("ps", "--all", "--quiet").split()
        if not ids:
            return {}
        inspected = subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=True
        )
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in json.loads(inspected.stdout)}

    def assert_alive(self) -> None:
        containers = self.containers()
        dead = {
            name: containers[name]["State"]["Status"] if name in containers else "missing"
            for name in long_running()
            if name not in containers or not containers[name]["State"]["Running"]
        }
        assert not dead, f"containers not running: {dead}"

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--no-log-prefix", timeout=300)
