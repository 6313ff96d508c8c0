"""Registry `POST /v1/families` (a family with its head) against a bare FastAPI + asyncpg insert, over HTTP.

Both apps run as real uvicorn processes started the same way (`uvicorn <module>:create_app --factory`), each on
its own scratch database, and are driven by the same httpx client with 8 requests in flight, in alternating
timed rounds so that the noise of the shared machine falls on both. No consumer or relay runs. Beside the rates:
server CPU per request (the uvicorn process's user + system time over the round) and, from one registration
traced in-process, the SQL statements and database round trips it costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from registry.config import Settings
from registry.identity.domain import make_kk, make_nik
from registry.main import create_app
from sqlalchemy import event

from bench.bare_api import SCHEMA
from bench.proc import cpu_seconds
from shared.auth import issue_dev_token
from shared.migrations import upgrade
from shared.testing.plugin import recreate_database, running_app

ROOT = Path(__file__).resolve().parents[1]
REGION = "15.71"
VILLAGE = "15.71.01.1001"
CONCURRENCY = 8


class Families:
    """Distinct, valid one-member families (a head with NIK and a KK number) for as long as asked."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> dict[str, Any]:
        i = self.count
        self.count += 1
        serial, day = i % 9999 + 1, i // 9999
        born = date(1980, 1, 1) + timedelta(days=day)
        return {
            "kk_number": make_kk("15.71.01", date(2015, 1, 1) + timedelta(days=day), serial),
            "village_code": VILLAGE,
            "latrine_type": "jamban_sendiri_septik",
            "members": [
                {
                    "nik": make_nik("15.71.01", born, "L", serial),
                    "name": "Kepala",
                    "sex": "L",
                    "birth_date": born.isoformat(),
                    "relation": "kepala_keluarga",
                    "marital_status": "kawin",
                }
            ],
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_server(target: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """An API process served the way `scripts/services.sh` serves one; yields its base URL and pid."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", target, "--factory", "--no-server-header"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{target} exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _load(
    client: httpx.AsyncClient, make: Callable[[], dict[str, Any]], *, seconds: float | None, requests: int = 0
) -> tuple[int, float, list[float]]:
    """Keep 8 POSTs in flight for `seconds` (or `requests` in all); returns count, elapsed, latencies."""
    latencies: list[float] = []
    started = time.perf_counter()
    stop_at = started + seconds if seconds is not None else None

    async def worker() -> None:
        while (stop_at is None and len(latencies) < requests) or (stop_at and time.perf_counter() < stop_at):
            sent = time.perf_counter()
            response = await client.post("/v1/families", json=make())
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(latencies), time.perf_counter() - started, latencies


async def _trace_statements(url: str, token: str) -> dict[str, float]:
    """SQL statements and round trips of one registration, traced on the app's engine in-process."""
    app = create_app(Settings(database_url=url, import_worker_enabled=False))
    counts = {"statements": 0, "begin": 0, "commit": 0, "ping": 0}
    families = Families()
    families.count = 500_000  # clear of the rows the timed rounds wrote

    def bump(name: str) -> Callable[..., None]:
        def listener(*_: Any, **__: Any) -> None:
            counts[name] += 1

        return listener

    async with running_app(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):  # warm the connection's prepared statements
            await client.post("/v1/families", json=families.next(), headers=headers)
        engine = app.state.engine.sync_engine
        listeners = [
            (engine, "before_cursor_execute", bump("statements")),
            (engine, "begin", bump("begin")),
            (engine, "commit", bump("commit")),
        ]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        ping = engine.dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            counts["ping"] += 1
            return bool(ping(dbapi_connection))

        engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
        traced = 20
        for _ in range(traced):
            response = await client.post("/v1/families", json=families.next(), headers=headers)
            assert response.status_code == 201, response.text
        for target, name, fn in listeners:
            event.remove(target, name, fn)
        del engine.dialect.do_ping
    # asyncpg's ping outside a transaction is three round trips: BEGIN, `;`, ROLLBACK.
    trips = counts["statements"] + counts["begin"] + counts["commit"] + 3 * counts["ping"]
    return {
        "sql_statements_per_registration": counts["statements"] / traced,
        "round_trips_per_registration": trips / traced,
    }


@contextlib.asynccontextmanager
async def _client(base: str, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        yield client


async def run(rounds: int = 3, seconds: float = 6.0) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    registry_url = await recreate_database("scratch_api_rates_registry")
    await upgrade("registry", registry_url)
    bare_url = await recreate_database("scratch_api_rates_bare")
    bare_dsn = bare_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(bare_dsn)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()
    token = issue_dev_token(scopes=["registry:read", "registry:write"], region=REGION)
    families = Families()
    totals: dict[str, dict[str, Any]] = {
        side: {"count": 0, "elapsed": 0.0, "cpu": 0.0, "latencies": []} for side in ("registry", "bare")
    }
    registry_env = {
        "REGISTRY_DATABASE_URL": registry_url,
        "REGISTRY_DATABASE_POOL_SIZE": str(CONCURRENCY),
        "REGISTRY_IMPORT_WORKER_ENABLED": "false",
        # The budget scripts/services.sh gives the local stack: the rounds are one client at full speed.
        "REGISTRY_RATE_LIMIT_DEFAULT": "20000/minute",
    }
    with (
        uvicorn_server("registry.main:create_app", registry_env) as (registry_base, registry_pid),
        uvicorn_server("bench.bare_api:create_app", {"BARE_API_DSN": bare_dsn}) as (bare_base, bare_pid),
    ):
        async with _client(registry_base, token) as registry, _client(bare_base, None) as bare:
            sides = {"registry": (registry, registry_pid), "bare": (bare, bare_pid)}
            for client, _ in sides.values():
                await _load(client, families.next, seconds=None, requests=200)  # warm up
            for _ in range(rounds):
                for side, (client, pid) in sides.items():
                    cpu = cpu_seconds(pid) or 0.0
                    count, elapsed, latencies = await _load(client, families.next, seconds=seconds)
                    total = totals[side]
                    total["cpu"] += (cpu_seconds(pid) or cpu) - cpu
                    total["count"] += count
                    total["elapsed"] += elapsed
                    total["latencies"] += latencies
    figures: dict[str, Any] = {}
    for side, total in totals.items():
        figures[f"{side}_req_s"] = round(total["count"] / total["elapsed"], 1)
        figures[f"{side}_p50_ms"] = round(statistics.median(total["latencies"]) * 1000, 1)
        figures[f"{side}_cpu_ms_per_request"] = round(total["cpu"] * 1000 / total["count"], 2)
    figures["vs_bare_ratio"] = round(figures["registry_req_s"] / figures["bare_req_s"], 3)
    figures.update(await _trace_statements(registry_url, token))
    return figures
