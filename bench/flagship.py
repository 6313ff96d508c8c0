"""The flagship latency: a stunted baduta measured in the registry -> the enrolment visible through DASHAT's API.

The four services run as real processes (the end-to-end stack: own databases, own topics), with their relays and
consumers. While a background client keeps the registry busy with ordinary (not stunted) measurements at a fixed
rate, a kader's client records one stunted measurement at a time and polls DASHAT's enrolments of that child until
the enrolment is there. Everything is bounded: the samples, the background writes, and the time.

The APIs run with the production rate limits (1,200 requests a minute per token subject, shared/config.py), as a
deployment does; what a deployment has is many field officers, each with a token of their own, so the bench's
clients are many subjects too: the background writes come from `KADERS` kaders (200/s is 4/s each), the probe's
measurement from a kader of its own, and its polls from `WATCHERS` dashboard sessions in turn (a poll every few ms
from one token would be throttled after the first 1,200 in a minute, and would measure the limiter, not the
pipeline). A 429 anywhere is counted and reported; the probe fails on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from registry.identity.domain import make_kk, make_nik

from bench.proc import CpuLedger, per_unit_ms
from shared.regions import load_regions
from shared.testing.plugin import bearer
from tests.e2e.stack import Stack

SCOPES = "registry:read registry:write dashat:read dashat:write"
DISTRICT = "15.71.01"
RW = "001"
# Ordinary measurements go to the last weeks of a child of about 13 months: distinct dates, plausible sizes.
BACKGROUND_DATES = 60
# The probe looks again this long after a GET that did not show the enrolment yet: small beside every hop, so that
# the figure is the system's and not the probe's sleep (a GET itself takes a few ms).
POLL_SECONDS = 0.002
KADERS = 50
WATCHERS = 20


def _village() -> str:
    villages = [v.code for v in load_regions().children(DISTRICT)]
    return villages[0]


def _family(village: str, serial: int, child_born: date) -> dict[str, Any]:
    head_born, wife_born = date(1990, 1, 1) + timedelta(days=serial % 3000), date(1994, 5, 5)
    return {
        "kk_number": make_kk(DISTRICT, date(2016, 4, 1), serial % 9999 + 1),
        "village_code": village,
        "rw": RW,
        "rt": "002",
        "members": [
            {
                "nik": make_nik(DISTRICT, head_born, "L", serial % 9999 + 1),
                "name": "Kepala",
                "sex": "L",
                "birth_date": head_born.isoformat(),
                "relation": "kepala_keluarga",
                "marital_status": "kawin",
            },
            {
                "nik": make_nik(DISTRICT, wife_born, "P", serial % 9999 + 1),
                "name": "Istri",
                "sex": "P",
                "birth_date": wife_born.isoformat(),
                "relation": "istri",
                "marital_status": "kawin",
            },
            {
                "name": "Anak",
                "sex": "P",
                "birth_date": child_born.isoformat(),
                "relation": "anak",
                "marital_status": "belum_kawin",
            },
        ],
    }


async def _children(
    client: httpx.AsyncClient, stack: Stack, village: str, first: int, count: int
) -> list[str]:
    """Register `count` families with one baduta each (8 in flight); returns the children's ids."""
    born = date.today() - timedelta(days=400)
    ids: list[str] = []
    serials = iter(range(first, first + count))

    async def worker(n: int) -> None:
        headers = _admin(f"bench-registrar-{n}")
        for serial in serials:
            r = await client.post(
                stack.base_url("registry") + "/v1/families",
                json=_family(village, serial, born),
                headers=headers,
            )
            r.raise_for_status()
            ids.append(next(m["id"] for m in r.json()["members"] if m["relation"] == "anak"))

    await asyncio.gather(*(worker(n) for n in range(8)))
    return ids


def _admin(sub: str = "bench-flagship") -> dict[str, str]:
    return bearer(SCOPES, sub=sub)


def _measurement(person_id: str, measured_on: date, length: float) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "measured_on": measured_on.isoformat(),
        "lenhei_cm": length,
        "weight_kg": 9.0,
        "position": "l",
    }


class _Stack(Stack):
    """The end-to-end stack with each service's production relay settings and rate limits (the tests poll faster
    than production and turn the limits off)."""

    def env(self, service: str) -> dict[str, str]:
        env = super().env(service)
        env.pop(f"{service.upper()}_RELAY_POLL_INTERVAL_SECONDS", None)
        # The production rate limits, not the tests' switch that turns them off (see the module's docstring).
        env.pop(f"{service.upper()}_RATE_LIMIT_ENABLED", None)
        return env


class Background:
    """Ordinary measurements at a fixed rate (open loop: a slow response does not slow the schedule)."""

    def __init__(
        self, stack: Stack, children: list[str], rate: float, limit: int, first_slot: int = 0
    ) -> None:
        self.stack, self.children, self.rate, self.limit, self.first_slot = (
            stack,
            children,
            rate,
            limit,
            first_slot,
        )
        self.sent = self.failed = self.late = self.throttled = 0
        self.failures: dict[str, int] = {}  # what each failure was: a status code or the client's error
        self.started = self.finished = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        slots = [
            (child, date.today() - timedelta(days=d))
            for d in range(BACKGROUND_DATES)
            for child in self.children
        ]
        in_flight: set[asyncio.Task[None]] = set()
        gate = asyncio.Semaphore(64)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            kaders = [_admin(f"bench-kader-{n}") for n in range(KADERS)]
            self.started = time.perf_counter()
            for i, (child, day) in enumerate(slots[self.first_slot : self.first_slot + self.limit]):
                if stop.is_set():
                    break
                delay = self.started + i / self.rate - time.perf_counter()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                if gate.locked():
                    self.late += 1  # the registry is not keeping up: the write waits for a free slot
                await gate.acquire()
                task = asyncio.create_task(self._write(client, kaders[i % KADERS], child, day, gate))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.gather(*in_flight)
            self.finished = time.perf_counter()

    async def _write(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        child: str,
        day: date,
        gate: asyncio.Semaphore,
    ) -> None:
        try:
            r = await client.post(
                self.stack.base_url("registry") + "/v1/measurements",
                json=_measurement(child, day, 76.0),
                headers=headers,
            )
            if r.status_code == 201:
                self.sent += 1
            elif r.status_code == 429:
                self.throttled += 1
            else:
                self._failed(str(r.status_code))
        except httpx.HTTPError as exc:
            self._failed(type(exc).__name__)
        finally:
            gate.release()

    def _failed(self, what: str) -> None:
        self.failed += 1
        self.failures[what] = self.failures.get(what, 0) + 1

    def achieved_rate(self) -> float:
        return self.sent / (self.finished - self.started) if self.finished > self.started else 0.0


@dataclass
class Sample:
    """One probe: the client's clock (epoch seconds, the databases' clock on this one machine) at each step."""

    child: str
    post_sent: float
    post_answered: float
    visible: float
    last_get_ms: float
    gets: int


async def _enrolled_after(
    client: httpx.AsyncClient, stack: Stack, child: str, watchers: list[dict[str, str]], timeout: float = 30
) -> Sample:
    """Record a stunted measurement and poll DASHAT's API until it shows the enrolment."""
    post_sent = time.time()
    r = await client.post(
        stack.base_url("registry") + "/v1/measurements",
        json=_measurement(child, date.today(), 66.0),
        headers=_admin("bench-probe-kader"),
    )
    r.raise_for_status()
    post_answered = time.time()
    gets = 0
    while True:
        asked = time.time()
        r = await client.get(
            stack.base_url("dashat") + "/v1/enrolments",
            params={"person_id": child},
            headers=watchers[gets % len(watchers)],
        )
        r.raise_for_status()  # a 429 here would measure the limiter: fail instead
        gets += 1
        answered = time.time()
        if any(e["status"] == "active" for e in r.json()["items"]):
            return Sample(child, post_sent, post_answered, answered, (answered - asked) * 1000, gets)
        if answered - post_sent > timeout:
            raise TimeoutError(f"no enrolment after {timeout}s")
        await asyncio.sleep(POLL_SECONDS)


async def _caught_up(stack: Stack) -> None:
    """Wait until the setup's events are published and DASHAT has applied all of them (not part of a sample)."""
    registry = await asyncpg.connect(stack.urls["registry"].replace("+asyncpg", ""))
    dashat = await asyncpg.connect(stack.urls["dashat"].replace("+asyncpg", ""))
    try:
        deadline, seen, steady = time.monotonic() + 120, -1, 0
        while time.monotonic() < deadline and steady < 3:
            pending = await registry.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            applied = await dashat.fetchval("SELECT count(*) FROM inbox")
            steady = steady + 1 if pending == 0 and applied == seen else 0
            seen = applied
            await asyncio.sleep(0.5)
    finally:
        await registry.close()
        await dashat.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[int(q * (len(ordered) - 1))], 1) if ordered else -1


async def _hops(stack: Stack, samples: list[Sample]) -> dict[str, float]:
    """p50/p99 of each hop of the probes, from the client's clock and the databases' timestamps.

    `now()` in PostgreSQL is the start of the transaction: the outbox row's created_at is when the registry's
    transaction began, the inbox row's processed_at when DASHAT's transaction that applied the event began;
    published_at is when the relay had the broker's acknowledgement.
    """
    registry = await asyncpg.connect(stack.urls["registry"].replace("+asyncpg", ""))
    dashat = await asyncpg.connect(stack.urls["dashat"].replace("+asyncpg", ""))
    try:
        sent = {
            r["person_id"]: r
            for r in await registry.fetch(
                "SELECT envelope->'data'->>'person_id' AS person_id, event_id, created_at, published_at"
                " FROM outbox WHERE event_type = 'registry.baduta.stunting_detected.v1'"
            )
        }
        applied = dict(
            await dashat.fetch(
                "SELECT event_id, processed_at FROM inbox WHERE event_id = ANY($1::uuid[])",
                [r["event_id"] for r in sent.values()],
            )
        )
    finally:
        await registry.close()
        await dashat.close()
    hops: dict[str, list[float]] = {
        "request_to_registry_txn": [],
        "registry_txn_to_answer": [],
        "answer_to_broker_ack": [],
        "broker_ack_to_dashat_txn": [],
        "dashat_txn_to_visible": [],
    }
    for s in samples:
        row = sent.get(s.child)
        if row is None or row["published_at"] is None or row["event_id"] not in applied:
            continue
        txn, acked, dashat_txn = (
            row["created_at"].timestamp(),
            row["published_at"].timestamp(),
            applied[row["event_id"]].timestamp(),
        )
        hops["request_to_registry_txn"].append((txn - s.post_sent) * 1000)
        hops["registry_txn_to_answer"].append((s.post_answered - txn) * 1000)
        hops["answer_to_broker_ack"].append((acked - s.post_answered) * 1000)
        hops["broker_ack_to_dashat_txn"].append((dashat_txn - acked) * 1000)
        hops["dashat_txn_to_visible"].append((s.visible - dashat_txn) * 1000)
    out: dict[str, float] = {}
    for name, values in hops.items():
        out[f"hop_{name}_p50_ms"] = _pct(values, 0.5)
        out[f"hop_{name}_p99_ms"] = _pct(values, 0.99)
    out["probe_last_get_p50_ms"] = _pct([s.last_get_ms for s in samples], 0.5)
    out["probe_gets_per_sample_p50"] = _pct([float(s.gets) for s in samples], 0.5)
    return out


def _cpu_label(stack: Stack) -> Callable[[int, str], str | None]:
    """Who a process is, for the CPU ledger: a stack process, PostgreSQL, the broker, or this client."""
    own = {proc.pid: f"{service}-{role}" for (service, role), proc in stack.procs.items()}
    client = os.getpid()

    def label(pid: int, command: str) -> str | None:
        if pid in own:
            return own[pid]
        if pid == client:
            return "bench client (load and probe)"
        if command.startswith("postgres"):
            return "postgresql"
        if "java" in command and "kafka" in command:
            return "kafka"
        return None

    return label


async def _phase(
    stack: Stack,
    client: httpx.AsyncClient,
    stunted: list[str],
    ordinary: list[str],
    rate: float,
    max_seconds: float,
    first_slot: int,
) -> dict[str, Any]:
    """Probes one after another while the background writes at `rate`; figures of the probes and the CPU spent."""
    stop = asyncio.Event()
    background = Background(stack, ordinary, rate, int(rate * max_seconds), first_slot)
    ledger = CpuLedger(_cpu_label(stack))
    load = asyncio.create_task(background.run(stop))
    await asyncio.sleep(2)  # the load reaches its steady state before the first sample
    ledger.start()
    watchers = [_admin(f"bench-dashboard-{n}") for n in range(WATCHERS)]
    probes: list[Sample] = []
    deadline = time.perf_counter() + max_seconds
    try:
        for child in stunted:
            if time.perf_counter() > deadline:
                break
            probes.append(await _enrolled_after(client, stack, child, watchers))
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        spent, busy = ledger.spent()
        await load
    hops = await _hops(stack, probes)
    ms = sorted((p.visible - p.post_sent) * 1000 for p in probes)
    # What the probes and the background cost together, per background write (the probes are ≈2% of the writes):
    # the machine's CPU divided by the work it was given says whether the rate asked for can fit on it at all.
    writes = background.sent + len(probes)
    return {
        "samples": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 1),
        "max_ms": round(ms[-1], 1),
        "hop_post_answered_p50_ms": _pct([(p.post_answered - p.post_sent) * 1000 for p in probes], 0.5),
        "background_target_per_s": rate,
        "background_writes_per_s": round(background.achieved_rate(), 1),
        "background_failed": background.failed,
        "background_failures": background.failures,
        "background_throttled": background.throttled,
        "background_late": background.late,
        "machine_cores_busy": round(busy / (background.finished - background.started), 2),
        "cpu_ms_per_write": round(busy / writes * 1000, 1) if writes else -1,
        "cpu_ms_per_write_by_process": per_unit_ms(spent, writes),
        **hops,
    }


async def run(
    samples: int = 100, rate: float = 200.0, max_seconds: float = 120.0, sustainable_rate: float = 20.0
) -> dict[str, Any]:
    """p50/p99 of measurement -> enrolment visible, under `rate` background registry writes per second; before it
    the same at `sustainable_rate`, a load this machine carries (`at_sustainable_rate`), on the same stack."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    village = _village()
    # The carried load first: after the other phase the consumers would still be working off its backlog.
    phases = [(sustainable_rate, samples // 2, max_seconds / 2), (rate, samples, max_seconds)]
    slots = [int(r * seconds) for r, _, seconds in phases]
    background_children = max(1, sum(slots) // BACKGROUND_DATES + 1)
    with tempfile.TemporaryDirectory(prefix="kencana-flagship-") as logs:
        stack = _Stack(log_dir=Path(logs))
        await stack.prepare()
        try:
            await stack.start_all()
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.post(
                    stack.base_url("dashat") + "/v1/kitchens",
                    json={
                        "name": "Dapur Sehat Flagship",
                        "village_code": village,
                        "rws": [RW],
                        "management_model": "combined",
                        "capacity_per_day": 10_000,
                        "opened_on": (date.today() - timedelta(days=10)).isoformat(),
                    },
                    headers=_admin(),
                )
                r.raise_for_status()
                stunted = await _children(client, stack, village, 1, sum(n for _, n, _ in phases))
                ordinary = await _children(client, stack, village, len(stunted) + 1, background_children)
                figures = []
                for i, (phase_rate, phase_samples, seconds) in enumerate(phases):
                    await _caught_up(stack)
                    first = sum(n for _, n, _ in phases[:i])
                    figures.append(
                        await _phase(
                            stack,
                            client,
                            stunted[first : first + phase_samples],
                            ordinary,
                            phase_rate,
                            seconds,
                            sum(slots[:i]),
                        )
                    )
            stack.assert_alive()
        finally:
            stack.stop_all()
    return {**figures[1], "at_sustainable_rate": figures[0]}


if __name__ == "__main__":
    print(asyncio.run(run()))
