"""deploy/docker/healthcheck.py, the containers' probe, against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.config import REPO_ROOT

PROBE = REPO_ROOT / "deploy" / "docker" / "healthcheck.py"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/readyz": 200, "/metrics": 200, "/not-ready": 503}.get(self.path, 404)
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def probe(url: str | None, env: dict[str, str] | None = None) -> int:
    args = [sys.executable, str(PROBE)] + ([url] if url else [])
    return subprocess.run(args, capture_output=True, timeout=30, env=env, check=False).returncode


def test_2xx_is_healthy_anything_else_is_not(port: int) -> None:
    assert probe(f"http://127.0.0.1:{port}/readyz") == 0
    assert probe(f"http://127.0.0.1:{port}/metrics") == 0
    assert probe(f"http://127.0.0.1:{port}/not-ready") == 1
    assert probe(f"http://127.0.0.1:{port}/missing") == 1


def test_nothing_listening_is_unhealthy() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert probe(f"http://127.0.0.1:{free}/readyz") == 1


def test_only_this_container_is_ever_probed(port: int) -> None:
    assert probe(f"http://localhost:{port}/readyz") == 2
    assert probe("http://10.0.0.1:8001/readyz") == 2
    assert probe("http://127.0.0.1:notaport/readyz") == 2


def test_url_from_the_environment_when_no_argument(port: int) -> None:
    env = {"KENCANA_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/readyz"}
    assert probe(None, env) == 0
    assert probe(None, {}) == 2
