"""Fault schedule and injection for the long fault run: process kills/terminations and broker outages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import REPO_ROOT
from shared.kafka import kafka_reachable, security_options
from tests.e2e.stack import ROLES, SERVICES, Stack

# The checkout that owns the running broker (at CI time, the one that ran `make infra-up`); a developer whose
# broker was started from another checkout points KENCANA_INFRA_SCRIPT at that checkout's scripts/infra.sh.
INFRA = Path(os.environ.get("KENCANA_INFRA_SCRIPT") or REPO_ROOT / "scripts" / "infra.sh")
WORKERS = [(s, r) for s in SERVICES for r in ROLES[s] if r != "api"]
# Seconds a restarted cluster node may take to have every partition's replicas in sync again.
IN_SYNC_DEADLINE = 180


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the stream started
    # "SIGKILL" | "SIGTERM" (a process) | "broker outage" (stopped) | "broker SIGKILL" (crashed) |
    # "crash point" (the process is restarted armed to kill itself at `point`, see shared/crashpoints.py) |
    # "postgres fast" | "postgres immediate" (pg_ctl stop -m <mode>, then started again)
    kind: str
    target: str  # "<service>/<role>", "kafka" or "postgres"
    down_for: float  # planned seconds between the stop and the restart
    point: str = ""  # crash point name and hit, e.g. "relay.after_send:2"


@dataclass
class Injected:
    fault: Fault
    started: float  # monotonic
    recovered: float  # monotonic, when the process was started again / the broker answered again


def schedule(seed: int, seconds: float, *, broker: bool) -> list[Fault]:
    """Deterministic for a seed: every relay and consumer is hit at least once, kills outnumber terms."""
    rng = random.Random(seed)
    count = max(len(WORKERS), int(seconds // 8))
    targets = [WORKERS[i % len(WORKERS)] for i in range(count)]
    rng.shuffle(targets)
    times = sorted(rng.uniform(3, max(4.0, seconds - 8)) for _ in range(count))
    faults = [
        Fault(
            at=round(at, 1),
            kind="SIGKILL" if rng.random() < 0.65 else "SIGTERM",
            target=f"{service}/{role}",
            down_for=round(rng.uniform(0.3, 3.0), 1),
        )
        for at, (service, role) in zip(times, targets, strict=True)
    ]
    if broker:
        outages = 2 if seconds >= 60 else 1
        for n in range(outages):
            at = seconds * (n + 1) / (outages + 1) + rng.uniform(-5, 5)
            faults.append(Fault(round(at, 1), "broker outage", "kafka", round(rng.uniform(3, 6), 1)))
    return sorted(faults, key=lambda f: f.at)


def broker(action: str, *args: str) -> None:
    """An infra.sh action on the servers the run may break: the fault scenarios' own (scripts/faults.sh) when
    KENCANA_FAULT_STATE_DIR is set, else the checkout's."""
    if os.environ.get("KENCANA_FAULT_STATE_DIR"):
        command = [str(REPO_ROOT / "scripts" / "faults.sh"), "infra", action, *args]
    else:
        command = ["bash", str(INFRA), action, *args]
    done = subprocess.run(command, timeout=420, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[-2:])} failed ({done.returncode}): {(done.stdout + done.stderr)[-1500:]}"
        )


def spread(
    kind: str, targets: list[str], count: int, seconds: float, down_for: float, *, point: str = ""
) -> list[Fault]:
    """`count` faults of one kind evenly over the stream (first after 5 s, the last well before the end)."""
    step = max(seconds - 10, 1) / count
    return [
        Fault(round(5 + i * step, 1), kind, targets[i % len(targets)], down_for, point) for i in range(count)
    ]


@dataclass
class Injector:
    """Runs the schedule one fault at a time; a supervisor restarts processes that died by themselves."""

    stack: Stack
    faults: list[Fault]
    bootstrap: str
    injected: list[Injected] = field(default_factory=list)
    crashes: list[tuple[float, str, str]] = field(default_factory=list)  # (when, process, log tail)
    broker_down: bool = False
    crash_points_hit: int = 0
    done: bool = False  # every fault injected and recovered from
    # Dead-letter replays: group -> outcome; node ids of the leaders killed (three-broker scenario).
    replays: dict[str, dict[str, object]] = field(default_factory=dict)
    leaders_killed: list[int] = field(default_factory=list)
    # Per leader kill: its topic and node, seconds until the node answered again and until all were in sync.
    leader_kills: list[dict[str, object]] = field(default_factory=list)
    # Slow-handler windows: consumer -> rebalances it took part in during the window, slow polls it kept.
    slow_windows: dict[str, dict[str, object]] = field(default_factory=dict)
    _busy: set[tuple[str, str]] = field(default_factory=set)

    async def run(self, started: float, stop: Callable[[], bool] = lambda: False) -> None:
        try:
            await self._run(started, stop)
        finally:
            self.done = True

    async def _run(self, started: float, stop: Callable[[], bool]) -> None:
        for fault in self.faults:
            await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
            if stop():
                return
            t0 = time.monotonic()
            if fault.kind in ("broker outage", "broker SIGKILL"):
                self.broker_down = True
                try:
                    await asyncio.to_thread(
                        broker, "stop-kafka" if fault.kind == "broker outage" else "kill-kafka"
                    )
                    await asyncio.sleep(fault.down_for)
                finally:
                    await asyncio.to_thread(broker, "start-kafka")
                    self.broker_down = False
            elif fault.kind.startswith("postgres "):
                try:
                    await asyncio.to_thread(broker, "stop-pg", fault.kind.split()[1])
                    await asyncio.sleep(fault.down_for)
                finally:
                    await asyncio.to_thread(broker, "start-pg")
            elif fault.kind == "database read-only":
                await self._read_only(fault)
            elif fault.kind == "leader SIGKILL":
                await self._kill_leader(fault)
            elif fault.kind == "poison window":
                await self._poison_window(fault)
            elif fault.kind == "dlq replay":
                await self._dlq_replay(fault)
            elif fault.kind == "slow handler":
                await self._slow_window(fault)
            elif fault.kind == "scale out":
                await self._scale_out(fault)
            elif fault.kind == "crash point":
                await self._crash_at(fault)
            else:
                service, role = fault.target.split("/")
                self._busy.add((service, role))
                try:
                    kill = fault.kind == "SIGKILL"
                    await asyncio.to_thread(self.stack.stop, service, role, kill=kill)
                    await asyncio.sleep(fault.down_for)
                    self.stack.start(service, role)
                finally:
                    self._busy.discard((service, role))
            self.injected.append(Injected(fault, t0, time.monotonic()))

    async def _read_only(self, fault: Fault) -> None:
        """The service's database turns read-only for `down_for` seconds (as PostgreSQL does on a standby, or
        when the operator sets it to rescue a full disk): every session reconnects and finds it so."""
        url = self.stack.urls[fault.target].replace("postgresql+asyncpg://", "postgresql://")
        server, name = url.rsplit("/", 1)
        conn = await asyncpg.connect(server + "/postgres")
        kick = "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()"
        try:
            await conn.execute(f'alter database "{name}" set default_transaction_read_only = on')
            await conn.execute(kick, name)
            await asyncio.sleep(fault.down_for)
        finally:
            await conn.execute(f'alter database "{name}" reset default_transaction_read_only')
            await conn.execute(kick, name)
            await conn.close()

    async def _kill_leader(self, fault: Fault) -> None:
        """Three-broker cluster: SIGKILL the node leading partition 0 of the topic `target`, restart it after
        `down_for` seconds, and return only once every partition of the run's topics and of the group offsets
        has its 3 replicas in sync again. Without that wait the next kill could hit a partition whose other
        follower had not caught up yet: one replica in sync, under min.insync.replicas=2, a write outage the
        scenario does not claim to survive (RF 3 / min ISR 2 survives one node lost at a time)."""
        topic = fault.target + self.stack.suffix
        partitions = await self._partitions([topic])
        leader = next(p["leader"] for p in partitions[topic] if p["partition"] == 0)
        t0 = time.monotonic()
        kill: dict[str, object] = {"topic": fault.target, "node": int(leader)}
        self.leaders_killed.append(int(leader))
        self.leader_kills.append(kill)
        try:
            await asyncio.to_thread(broker, "kill-kafka-node", str(leader))
            await asyncio.sleep(fault.down_for)
        finally:
            await asyncio.to_thread(broker, "start-kafka")
            kill["node_answering_seconds"] = round(time.monotonic() - t0, 1)
        await self._await_in_sync(t0, kill)

    async def _partitions(self, topics: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Partitions (leader, replicas, isr) per topic; retried, as an admin request sent to the node just
        killed fails (aiokafka's admin client asks one node, not the others)."""
        deadline = time.monotonic() + 60
        while True:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=10000, **security_options()
            )
            try:
                await admin.start()
                described = await admin.describe_topics(topics)
                if all(d["error_code"] == 0 for d in described):
                    return {d["topic"]: d["partitions"] for d in described}
            except Exception:
                if time.monotonic() > deadline:
                    raise
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"describe {topics}: no answer without errors in 60 s")
            await asyncio.sleep(1)

    async def _await_in_sync(self, t0: float, kill: dict[str, object]) -> None:
        topics = [f"kencana.{s}{self.stack.suffix}" for s in ("registry", "uppka", "dashat")]
        topics.append("__consumer_offsets")
        deadline = time.monotonic() + IN_SYNC_DEADLINE
        while True:
            described = await self._partitions(topics)
            behind = sum(len(p["isr"]) < len(p["replicas"]) for ps in described.values() for p in ps)
            if behind == 0:
                kill["all_in_sync_seconds"] = round(time.monotonic() - t0, 1)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{behind} partitions not back to 3 in-sync replicas {IN_SYNC_DEADLINE} s after"
                )
            await asyncio.sleep(1)

    async def _poison_window(self, fault: Fault) -> None:
        """The consumer runs a "buggy" build failing on the event types in `point` for `down_for` seconds (they
        are dead-lettered), then the "fixed" one (started without KENCANA_FAIL_EVENT_TYPES)."""
        service, role = fault.target.split("/")
        self._busy.add((service, role))
        try:
            await asyncio.to_thread(self.stack.stop, service, role)
            self.stack.start(service, role, env={"KENCANA_FAIL_EVENT_TYPES": fault.point})
            # Until the buggy build has dead-lettered something (its start alone can take longer than the
            # planned window on the loaded machine: the run of 2026-12-01 dead-lettered nothing), then the rest.
            deadline = time.monotonic() + 180
            while "event_dead_lettered" not in self.stack.tail(service, role, lines=200):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(fault.down_for)
            await asyncio.to_thread(self.stack.stop, service, role)
            self.stack.start(service, role)
        finally:
            self._busy.discard((service, role))

    async def _dlq_replay(self, fault: Fault) -> None:
        """`kencana dlq replay <group>` for the consumer group of `target` ("<service>.<purpose>")."""
        service = fault.target.split(".")[0]
        group = fault.target + self.stack.suffix
        done = await asyncio.to_thread(
            subprocess.run,
            [str(Path(sys.executable).parent / "kencana"), "dlq", "replay", group, "--timeout", "120"],
            env=self.stack.env(service),
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.replays[fault.target] = {"exit_code": done.returncode, "output": done.stdout.strip()[-500:]}

    async def _slow_window(self, fault: Fault) -> None:
        """The consumer runs for `down_for` seconds with a poll interval of P seconds and every poll holding new
        events taking 2P longer (`point` = "P"), then as usual. What it logged meanwhile says how often it was
        assigned partitions (a rebalance each) and how many of its polls outlasted the interval."""
        service, role = fault.target.split("/")
        interval = float(fault.point)
        log = self.stack.log_dir / f"{service}-{role}.log"
        self._busy.add((service, role))
        try:
            await asyncio.to_thread(self.stack.stop, service, role)
            start = log.stat().st_size if log.exists() else 0
            self.stack.start(
                service,
                role,
                env={
                    f"{service.upper()}_CONSUMER_MAX_POLL_INTERVAL_SECONDS": str(interval),
                    "KENCANA_SLOW_HANDLING_SECONDS": str(2 * interval),
                },
            )
            await asyncio.sleep(fault.down_for)
            # Stopped first: SIGTERM lets it finish the poll in hand, which logs whether it was kept.
            await asyncio.to_thread(self.stack.stop, service, role)
            window = log.read_bytes()[start:].decode(errors="replace")
            self.stack.start(service, role)
        finally:
            self._busy.discard((service, role))
        self.slow_windows[fault.target] = {
            "poll_interval_seconds": interval,
            "extra_seconds_per_poll": 2 * interval,
            "window_seconds": fault.down_for,
            "assignments": window.count('"partitions_assigned"'),
            "slow_polls": window.count('"slow_poll_kept_in_group"'),
        }

    async def _scale_out(self, fault: Fault) -> None:
        """1 -> 3 replicas of a consumer for `down_for` seconds, then back to 1 (each change a rebalance)."""
        service, role = fault.target.split("/")
        extra = [(service, f"{role}-{n}") for n in (2, 3)]
        self._busy.update(extra)
        try:
            for s, r in extra:
                self.stack.start(s, r)
            await asyncio.sleep(fault.down_for)
        finally:
            for s, r in extra:
                await asyncio.to_thread(self.stack.stop, s, r)
            self._busy.difference_update(extra)

    async def _crash_at(self, fault: Fault) -> None:
        """Restart the process armed with the crash point, wait until it killed itself there, restart it plain."""
        service, role = fault.target.split("/")
        self._busy.add((service, role))
        try:
            await asyncio.to_thread(self.stack.stop, service, role)
            self.stack.start(service, role, env={"KENCANA_CRASH_AT": fault.point})
            deadline = time.monotonic() + max(fault.down_for, 60)
            while self.stack.running(service, role):
                if time.monotonic() > deadline:
                    break  # never reached (no traffic for it): counted as not hit
                await asyncio.sleep(0.05)
            proc = self.stack.procs.get((service, role))
            if proc is not None and proc.returncode == -signal.SIGKILL:
                self.crash_points_hit += 1
            await asyncio.to_thread(self.stack.stop, service, role)
            self.stack.start(service, role)
        finally:
            self._busy.discard((service, role))

    async def supervise(self, until: Callable[[], bool]) -> None:
        """Like an orchestrator's restart policy: a process that exited by itself is started again."""
        while not until():
            for service, role in self.stack.exited():
                if (service, role) in self._busy:
                    continue
                tail = self.stack.tail(service, role, lines=8)
                self.crashes.append((time.monotonic(), f"{service}/{role}", tail))
                self.stack.procs.pop((service, role), None)
                if not self.broker_down:
                    self.stack.start(service, role)
                else:
                    self._busy.add((service, role))
                    asyncio.get_running_loop().create_task(self._start_when_broker_back(service, role))
            await asyncio.sleep(0.5)

    async def _start_when_broker_back(self, service: str, role: str) -> None:
        try:
            deadline = time.monotonic() + 120
            while self.broker_down or not await kafka_reachable(self.bootstrap, timeout=2):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            self.stack.start(service, role)
        finally:
            self._busy.discard((service, role))

    def all_running(self) -> bool:
        return not self._busy and all(self.stack.running(s, r) for s in SERVICES for r in ROLES[s])
