"""The one harness of the fault runs: a stack of real service processes, a bounded write stream through the
public APIs, a fault schedule injected meanwhile, a deadline-bound drain, and the end-to-end count of what the
accepted writes must have caused (EVENTS.md, "Figures a fault test reports").

A scenario is a `Scenario` (its fault schedule, load and extra checks); `run_scenario` does the rest and returns
the figures, which are printed and saved to bench/faults/<scenario>.json (docs/reliability.md is generated from
those files by `python -m tests.faults.report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.config import REPO_ROOT
from shared.kafka import delete_topics, kafka_reachable
from shared.regions import load_regions
from tests.e2e.stack import Stack
from tests.faults.faults import Fault, Injector, broker
from tests.faults.observe import GROUPS, PUBLISHERS, Databases, LagSampler, group_lag, read_topic
from tests.faults.workload import Expected, Workload

RESULTS_DIR = REPO_ROOT / "bench" / "faults"
KB_CHANGED = "uppka.member.kb_status_changed.v1"
# The fault scenarios' own servers (scripts/faults.sh): only then may a scenario kill the broker or PostgreSQL.
OWN_INFRA = bool(os.environ.get("KENCANA_FAULT_STATE_DIR"))


def run_topics(stack: Stack) -> list[str]:
    return [f"kencana.{s}{stack.suffix}" for s in PUBLISHERS] + [f"{g}{stack.suffix}.dlq" for g in GROUPS]


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"deadline: {what} not reached after {timeout}s")
        await asyncio.sleep(0.2)


async def drain(
    stack: Stack,
    dbs: Databases,
    sampler: LagSampler,
    expected: Expected,
    bootstrap: str,
    timeout: float,
    *,
    dead_letters_expected: bool = False,
) -> float:
    """Wait until the outboxes are empty, every consumer group is caught up and the expected effects are
    there, three checks in a row (so an event written by a consumer in between is not missed).

    A dead-lettered event never has its effect: unless the scenario dead-letters on purpose, the drain fails at
    once instead of at its deadline (scenario 9's first run waited out the whole 900 s for 17 of them)."""
    deadline = time.monotonic() + timeout
    calm = 0
    drained = time.monotonic()
    last: dict[str, Any] = {}
    rounds = 0
    while calm < 3:
        rounds += 1
        if not dead_letters_expected and rounds % 20 == 1:
            dead = {g: len(await read_topic(bootstrap, f"{g}{stack.suffix}.dlq")) for g in GROUPS}
            if any(dead.values()):
                pytest.fail(f"dead-lettered while draining: {dead}")
        unpublished = await sampler.sample()
        lag = await group_lag(bootstrap, stack)
        missing = await missing_in_db(dbs, expected)
        last = {"unpublished": unpublished, "group_lag": lag, "missing": missing}
        quiet = all(n == 0 for n, _ in unpublished.values()) and not any(lag.values())
        calm = calm + 1 if quiet and not any(missing.values()) else 0
        if calm == 1:
            drained = time.monotonic()
        if time.monotonic() > deadline:
            pytest.fail(f"deadline: pipeline not drained after {timeout}s: {last}")
        await asyncio.sleep(0.5)
    return drained


async def missing_in_db(dbs: Databases, expected: Expected) -> dict[str, int]:
    """Expected effects not (yet) in the services' databases; the quick check used while draining."""
    enrolments = {
        str(r["person_id"]): r["status"]
        for r in await dbs.conns["dashat"].fetch(
            "select person_id, status from enrolment where category = 'baduta_stunting'"
        )
    }
    ledger = {
        str(r[0])
        for r in await dbs.conns["dashat"].fetch(
            "select contribution_id from ledger_entry where contribution_id is not null"
        )
    }
    members = {
        str(r["id"]): r["kb_method"]
        for r in await dbs.conns["uppka"].fetch("select id, kb_method from member where left_on is null")
    }
    return {
        "enrolments": sum(p not in enrolments for p in expected.children),
        "withdrawals": sum(
            c.corrected and enrolments.get(p) != "retracted" for p, c in expected.children.items()
        ),
        "ledger incomes": sum(c not in ledger for c in expected.contributions),
        "member KB syncs": sum(
            members.get(m.member_id) != (m.changes[-1] if m.changes else m.kb_method)
            for m in expected.members.values()
        ),
    }


async def figures_of(
    stack: Stack, dbs: Databases, work: Workload, kb_before: list[Any], bootstrap: str
) -> dict[str, Any]:
    expected = work.expected
    kitchens = sorted({p.kitchen_id for p in work.places})

    # --- through the public APIs
    enrol_api: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ledger_api: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kitchen in kitchens:
        for e in await work.pages("dashat", "/v1/enrolments", kitchen_id=kitchen):
            enrol_api[e["person_id"]].append(e)
        for entry in await work.pages("dashat", f"/v1/kitchens/{kitchen}/ledger"):
            if entry["source"] == "uppka_contribution":
                ledger_api[entry["contribution_id"]].append(entry)
    member_api = {
        m.member_id: (await work.get("uppka", f"/v1/groups/{m.group_id}/members/{m.member_id}"))["kb_method"]
        for m in expected.members.values()
    }

    # --- straight from the services' databases (duplicates the APIs might hide)
    enrol_db = await dbs.count_by(
        "dashat", "select person_id::text || '/' || category, count(*) from enrolment group by 1"
    )
    enrolled_events = await dbs.count_by(
        "dashat",
        "select envelope->'data'->>'person_id', count(*) from outbox where event_type = $1 group by 1",
        "dashat.beneficiary.enrolled.v1",
    )
    exited_events = await dbs.count_by(
        "dashat",
        "select envelope->'data'->>'person_id', count(*) from outbox where event_type = $1 group by 1",
        "dashat.beneficiary.exited.v1",
    )
    ledger_db = await dbs.count_by(
        "dashat",
        "select contribution_id::text, count(*) from ledger_entry where contribution_id is not null group by 1",
    )
    kb_events = await dbs.count_by(
        "uppka",
        "select envelope->'data'->>'member_id', count(*) from outbox"
        " where event_type = $1 and not (event_id = any($2::uuid[])) group by 1",
        KB_CHANGED,
        kb_before,
    )

    children = expected.children
    effects: dict[str, dict[str, int]] = {}

    rows = {p: [e for e in enrol_api.get(p, []) if e["category"] == "baduta_stunting"] for p in children}
    effects["enrolments"] = {
        "expected": len(children),
        "applied": sum(bool(r) for r in rows.values()),
        "missing": sum(not r for r in rows.values()),
        "duplicate": sum(
            max(len(rows[p]) - 1, enrol_db[f"{p}/baduta_stunting"] - 1, enrolled_events[p] - 1, 0)
            for p in children
        ),
        # Enrolments in these kitchens of anyone the stream did not measure stunted.
        "unexpected": sum(len(v) for p, v in enrol_api.items() if p not in children),
    }
    corrected = [p for p, c in children.items() if c.corrected]
    effects["withdrawals"] = {
        "expected": len(corrected),
        "applied": sum(any(e["status"] == "retracted" for e in rows[p]) for p in corrected),
        "missing": sum(not any(e["status"] == "retracted" for e in rows[p]) for p in corrected),
        "duplicate": sum(max(exited_events[p] - 1, 0) for p in corrected),
        # A child whose measurement stood must still be enrolled.
        "unexpected": sum(
            (bool(rows[p]) and rows[p][0]["status"] != "active") or exited_events[p] > 0
            for p, c in children.items()
            if not c.corrected
        ),
    }
    kb_missing = kb_dup = kb_wrong = 0
    for m in expected.members.values():
        applied = kb_events[m.member_id]
        kb_missing += max(len(m.changes) - applied, 0)
        kb_dup += max(applied - len(m.changes), 0)
        kb_wrong += member_api[m.member_id] != (m.changes[-1] if m.changes else m.kb_method)
    effects["member KB syncs"] = {
        "expected": expected.kb_changes,
        "applied": sum(min(kb_events[m.member_id], len(m.changes)) for m in expected.members.values()),
        "missing": kb_missing,
        "duplicate": kb_dup,
        "unexpected": kb_wrong,  # the member does not show the last accepted method
    }
    effects["ledger incomes"] = {
        "expected": len(expected.contributions),
        "applied": sum(c in ledger_api for c in expected.contributions),
        "missing": sum(c not in ledger_api for c in expected.contributions),
        "duplicate": sum(
            max(len(ledger_api.get(c, [])) - 1, ledger_db[c] - 1, 0) for c in expected.contributions
        ),
        "unexpected": sum(c not in expected.contributions for c in ledger_api)
        + sum(
            any(e["amount"] != amount or e["kitchen_id"] != kitchen for e in ledger_api.get(c, []))
            for c, (kitchen, amount) in expected.contributions.items()
        ),
    }

    topics: dict[str, dict[str, int]] = {}
    for service in PUBLISHERS:
        topic = f"kencana.{service}{stack.suffix}"
        on_topic = await read_topic(bootstrap, topic)
        outbox = await dbs.outbox_ids(service)
        distinct = set(on_topic)
        unpublished = await dbs.conns[service].fetchval(
            "select count(*) from outbox where published_at is null"
        )
        topics[topic] = {
            "outbox_rows": len(outbox),
            "unpublished": int(unpublished),
            "records_on_topic": len(on_topic),
            "distinct_ids_on_topic": len(distinct),
            "duplicates_on_topic": len(on_topic) - len(distinct),
            "missing_on_topic": len(outbox - distinct),
            "foreign_on_topic": len(distinct - outbox),
        }
    dead = {g: len(await read_topic(bootstrap, f"{g}{stack.suffix}.dlq")) for g in GROUPS}
    return {
        "accepted": dict(expected.accepted),
        "rejected": dict(expected.rejected),
        "retried_requests": expected.retried,
        "effects": effects,
        "topics": topics,
        "dead_lettered": dead,
    }


async def own_relays_publish(stack: Stack, bootstrap: str) -> None:
    """Fail at once, not after the stream, when the setup's events are not on this run's topics: some other
    process (a leftover stack on the same databases) holds the relays' lock and publishes elsewhere."""
    for service in PUBLISHERS:
        topic = f"kencana.{service}{stack.suffix}"
        deadline = time.monotonic() + 30
        while not await read_topic(bootstrap, topic):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{topic}: none of the setup's events after 30 s; another relay publishes this outbox"
                )
            await asyncio.sleep(1)


def fault_rows(injector: Injector) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    for i in injector.injected:
        rows[(i.fault.kind, i.fault.target)].append(i.recovered - i.started)
    return [
        {
            "kind": k,
            "target": t,
            "count": len(d),
            "total_seconds": round(sum(d), 1),
            "max_seconds": round(max(d), 1),
        }
        for (k, t), d in sorted(rows.items())
    ]


def table(f: dict[str, Any]) -> str:
    out = [
        f"{f.get('title', 'fault run')}: seed {f['seed']}, stream {f['stream_seconds']} s at {f['rate_per_second']} ops/s"
    ]
    out.append(f"{'fault':<15}{'target':<20}{'count':>6}{'down s (total/max)':>22}")
    by_kind: Counter[str] = Counter()
    for r in f["faults"]:
        by_kind[r["kind"]] += r["count"]
        down = f"{r['total_seconds']}/{r['max_seconds']}"
        out.append(f"{r['kind']:<15}{r['target']:<20}{r['count']:>6}{down:>22}")
    out.append("faults injected: " + ", ".join(f"{k} x{n}" for k, n in sorted(by_kind.items())))
    out.append(f"crashes restarted by the supervisor: {len(f['crashes'])}")
    out.append("events accepted: " + ", ".join(f"{k} {v}" for k, v in f["accepted"].items()))
    if f["rejected"]:
        out.append("rejected writes: " + ", ".join(f"{k} {v}" for k, v in f["rejected"].items()))
    out.append(f"{'topic':<45}{'outbox':>8}{'distinct':>10}{'dup on topic':>14}{'unpublished':>13}")
    for topic, t in f["topics"].items():
        out.append(
            f"{topic:<45}{t['outbox_rows']:>8}{t['distinct_ids_on_topic']:>10}"
            f"{t['duplicates_on_topic']:>14}{t['unpublished']:>13}"
        )
    out.append(f"{'effect':<18}{'expected':>9}{'applied':>9}{'missing':>9}{'duplicate':>11}{'wrong':>7}")
    for name, e in f["effects"].items():
        out.append(
            f"{name:<18}{e['expected']:>9}{e['applied']:>9}{e['missing']:>9}{e['duplicate']:>11}{e['unexpected']:>7}"
        )
    out.append("dead-lettered: " + ", ".join(f"{g} {n}" for g, n in f["dead_lettered"].items()))
    out.append("max outbox lag (s): " + ", ".join(f"{s} {v}" for s, v in f["max_outbox_lag_seconds"].items()))
    if "max_consumer_lag_records" in f:
        out.append(
            "max consumer lag (records): "
            + ", ".join(f"{g} {n}" for g, n in f["max_consumer_lag_records"].items())
        )
        out.append(
            f"load: {f['achieved_ops_per_second']} ops/s achieved of {f['rate_per_second']}, "
            f"{f['requests']} requests, 5xx {f['server_errors'] or 0}, timeouts {f['timeouts']}, "
            f"slowest {f['slowest_request_seconds']} s"
        )
    out.append(f"drain after the last fault: {f['drain_seconds_after_last_fault']} s")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ scenarios
@dataclass
class Scenario:
    """One fault scenario: what is injected, under which load, and what it must show besides the common checks."""

    key: str  # file name of its figures: bench/faults/<key>.json
    title: str
    faults: list[Fault]
    seconds: float = 60.0  # length of the write stream
    rate: float = 50.0  # API operations per second, all services mixed
    # Enough that slow answers do not hold the rate down (Little's law: 50 ops/s with answers of up to 3 s, a
    # stunted child being two of them in a row); each worker is paced, so more workers is not more load.
    workers: int = 160
    seed: int = 20261201
    # Extra assertions on the figures (e.g. "no 5xx while the broker is away").
    check: Callable[[dict[str, Any]], None] | None = None
    # Things to do while the stream runs besides the schedule (e.g. SIGTERM a consumer during an outage).
    during: Callable[[Stack, Injector, float], Awaitable[dict[str, Any]]] | None = None
    # After the drain and the common count, with the stack still running (scenario 8's replay and rebuild).
    after: Callable[[Stack, Databases, str, Path], Awaitable[dict[str, Any]]] | None = None
    # Keep the stream going until the last fault was injected (crash points need traffic to be reached).
    stream_until_faults_done: bool = False
    # Seconds the drain may take: on the shared 2-core machine the consumers, not the brokers, set the pace.
    drain_timeout: float = 900
    # Poison scenarios dead-letter on purpose (and replay); the others must dead-letter nothing.
    dead_letters_expected: bool = False
    # Tries per write: a scenario that takes PostgreSQL away for seconds lets clients retry for longer.
    attempts: int = 5


@dataclass
class GroupLagSampler:
    """Samples the consumer groups' uncommitted records now and then; keeps the maximum (the broker may be away)."""

    stack: Stack
    bootstrap: str
    max_lag: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    # The machine's 1-minute load average, sampled alongside: the figures mean little without it.
    loads: list[float] = field(default_factory=list)

    async def run(self, until: Callable[[], bool]) -> None:
        while not until():
            with contextlib.suppress(OSError):
                self.loads.append(os.getloadavg()[0])
            with contextlib.suppress(Exception):
                async with asyncio.timeout(8):
                    for group, lag in (await group_lag(self.bootstrap, self.stack)).items():
                        self.max_lag[group] = max(self.max_lag[group], lag)
            await asyncio.sleep(2)


_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds a process used (with its reaped children's when asked); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return used / _TICKS


def _pid_file(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


def cpu_by_part(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of what the load runs on: the client (this process), each service's processes and, on
    the scenarios' own servers, PostgreSQL (the postmaster with its backends, live and reaped) and Kafka.
    Per pid, so a process restarted between two samples loses what it used before (scenario 8 has no faults)."""
    out: dict[str, float] = {"client": sum(os.times()[:2])}
    for (service, _role), proc in list(stack.procs.items()):
        out[f"{service}:{proc.pid}"] = _proc_cpu(proc.pid)
    state = os.environ.get("KENCANA_FAULT_STATE_DIR")
    if OWN_INFRA and state:
        postmaster = _pid_file(Path(state) / "pg" / "data" / "postmaster.pid")
        if postmaster:
            total = _proc_cpu(postmaster, children=True)
            with contextlib.suppress(OSError):
                kids = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
                total += sum(_proc_cpu(int(k)) for k in kids)
            out[f"postgres:{postmaster}"] = total
        # The single node's pid file, or the three-broker cluster's (scripts/infra.sh, KAFKA_BROKERS=3).
        for pid_file in sorted((Path(state) / "run").glob("kafka*.pid")):
            kafka = _pid_file(pid_file)
            if kafka:
                out[f"kafka:{kafka}"] = _proc_cpu(kafka)
    return out


def cpu_per_op(before: dict[str, float], after: dict[str, float], ops: int, seconds: float) -> dict[str, Any]:
    """Milliseconds of CPU per API operation over the stream, by part, and the cores the load used."""
    parts: dict[str, float] = defaultdict(float)
    for key, used in after.items():
        parts[key.split(":")[0]] += max(used - before.get(key, 0.0), 0.0)
    total = sum(parts.values())
    return {
        "ms_per_op": {k: round(1000 * v / ops, 2) for k, v in sorted(parts.items())} if ops else {},
        "total_ms_per_op": round(1000 * total / ops, 2) if ops else None,
        "cores_used": round(total / seconds, 2) if seconds else None,
    }


def machine() -> str:
    cpus = os.cpu_count() or 0
    try:
        one, five, fifteen = os.getloadavg()
        load = f"load {one:.1f}/{five:.1f}/{fifteen:.1f}"
    except OSError:
        load = ""
    return f"{platform.node()} {platform.machine()} {cpus} cores, {load}".strip()


async def run_scenario(scenario: Scenario, tmp_path: Path, bootstrap: str) -> dict[str, Any]:
    """Set up, stream writes while injecting the faults, drain, count; the common checks are asserted here."""
    # Databases of their own: the e2e tests' session-wide stack (tests/e2e/conftest.py) keeps running until the
    # end of `make test` on e2e_<service>_<checkout>. Sharing those names, the recreated databases were re-joined
    # by its relays and consumers: its relay held the outbox's advisory lock and published every row to its own
    # topics, its consumers applied the effects, and this run's topics stayed empty while no crash point was
    # ever reached (the fresh-clone CI run of 2026-12-01: 600 s deadline, "registry topic empty").
    stack = Stack(log_dir=tmp_path, database_prefix="faults")
    await stack.prepare()
    stopping = False
    background: list[asyncio.Task[None]] = []
    dbs: Databases | None = None
    broker_faults = any(f.kind.startswith("broker") for f in scenario.faults)
    pg_faults = any(f.kind.startswith("postgres") for f in scenario.faults)
    try:
        await stack.start_all()
        dbs = await Databases.open(stack)
        rng = random.Random(scenario.seed)
        # One connection per worker and kept: httpx's default pool (100, 20 kept alive) made workers wait for a
        # connection (counted as a hang at the 20 s timeout) and opened a new one for most requests.
        limits = httpx.Limits(
            max_connections=4 * scenario.workers, max_keepalive_connections=4 * scenario.workers
        )
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:
            work = Workload(stack, client, rng)
            work.attempts = scenario.attempts
            villages = sorted(
                v.code for d in load_regions().children("15.71") for v in load_regions().children(d.code)
            )
            await work.open_places(rng.sample(villages, 4))
            await work.enlist_members(per_group=3, timeout=90)
            await work.await_kitchens_known_to_uppka(timeout=90)
            await work.await_members_synced(timeout=90)
            await own_relays_publish(stack, bootstrap)
            kb_before = [
                r["event_id"]
                for r in await dbs.conns["uppka"].fetch(
                    "select event_id from outbox where event_type = $1", KB_CHANGED
                )
            ]
            work.expected.reset_counts()

            injector = Injector(stack, scenario.faults, bootstrap)
            sampler = LagSampler(dbs)
            lags = GroupLagSampler(stack, bootstrap)
            background = [
                asyncio.create_task(sampler.run(lambda: stopping)),
                asyncio.create_task(lags.run(lambda: stopping)),
                asyncio.create_task(injector.supervise(lambda: stopping)),
            ]
            cpu_before = cpu_by_part(stack)
            started = time.monotonic()
            started_at = datetime.now(UTC).isoformat(timespec="seconds")
            extra: dict[str, Any] = {}

            async def during() -> None:
                if scenario.during is not None:
                    extra.update(await scenario.during(stack, injector, started))

            await asyncio.gather(
                work.stream(
                    scenario.seconds,
                    scenario.rate,
                    workers=scenario.workers,
                    keep_going=lambda: scenario.stream_until_faults_done and not injector.done,
                ),
                injector.run(started),
                during(),
            )
            stream_seconds = time.monotonic() - started

            await wait_for(injector.all_running, 120, "every process running again")
            recovered = max(
                [i.recovered for i in injector.injected] + [c[0] for c in injector.crashes], default=started
            )
            drained = await drain(
                stack,
                dbs,
                sampler,
                work.expected,
                bootstrap,
                timeout=scenario.drain_timeout,
                dead_letters_expected=scenario.dead_letters_expected,
            )
            # What the stream cost until all of it was applied (the consumers catch up after the stream).
            stream_ops = sum(work.expected.accepted.values()) + sum(work.expected.rejected.values())
            cpu = cpu_per_op(cpu_before, cpu_by_part(stack), stream_ops, time.monotonic() - started)
            figures = await figures_of(stack, dbs, work, kb_before, bootstrap)
            if scenario.after is not None:
                extra.update(await scenario.after(stack, dbs, bootstrap, tmp_path))
        stopping = True
        ops = sum(work.expected.accepted.values()) + sum(work.expected.rejected.values())
        figures.update(
            scenario=scenario.key,
            title=scenario.title,
            started=started_at,
            date=datetime.now(UTC).isoformat(timespec="seconds"),
            machine=machine(),
            load_average={
                "mean": round(sum(lags.loads) / len(lags.loads), 1) if lags.loads else None,
                "max": round(max(lags.loads), 1) if lags.loads else None,
            },
            seed=scenario.seed,
            scale=float(os.environ.get("KENCANA_FAULT_SCALE", "1")),
            stream_seconds=round(stream_seconds, 1),
            rate_per_second=scenario.rate,
            achieved_ops_per_second=round(ops / stream_seconds, 1) if stream_seconds else 0,
            requests=work.expected.requests,
            server_errors=dict(work.expected.server_errors),
            timeouts=work.expected.timeouts,
            bad_503=work.expected.bad_503,
            slowest_request_seconds=round(work.expected.slowest, 2),
            faults=fault_rows(injector),
            crash_points_hit=injector.crash_points_hit,
            dlq_replays=injector.replays,
            leaders_killed=injector.leaders_killed,
            leader_kills=injector.leader_kills,
            slow_windows=injector.slow_windows,
            cpu_stream_to_drained=cpu,
            crashes=[{"process": p, "log_tail": t} for _, p, t in injector.crashes],
            max_outbox_lag_seconds={s: round(v, 2) for s, v in sampler.max_lag.items()},
            max_outbox_unpublished_rows=sampler.max_rows,
            max_consumer_lag_records=lags.max_lag,
            drain_seconds_after_last_fault=round(drained - recovered, 1),
            log_dir=str(tmp_path),
            **extra,
        )
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        saved = RESULTS_DIR / f"{scenario.key}.json"
        figures["passed"] = False  # until every check below held
        saved.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print("\n" + table(figures))

        effects = figures["effects"]
        assert {k: v["missing"] for k, v in effects.items()} == dict.fromkeys(effects, 0), "missing effects"
        assert {k: v["duplicate"] for k, v in effects.items()} == dict.fromkeys(effects, 0), (
            "duplicate effects"
        )
        assert {k: v["unexpected"] for k, v in effects.items()} == dict.fromkeys(effects, 0), "wrong effects"
        if not scenario.dead_letters_expected:
            assert sum(figures["dead_lettered"].values()) == 0, figures["dead_lettered"]
        for topic, t in figures["topics"].items():
            assert t["unpublished"] == 0 and t["missing_on_topic"] == 0, (topic, t)
        if scenario.check is not None:
            scenario.check(figures)
        figures["passed"] = True
        saved.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        return figures
    finally:
        stopping = True
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.to_thread(stack.stop_all)
        # Whatever happened, the scenario's servers are left running for the next one.
        if broker_faults and not await kafka_reachable(bootstrap, timeout=5):
            await asyncio.to_thread(broker, "start-kafka")
        if pg_faults:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(broker, "start-pg")
        if dbs is not None:
            await dbs.close()
        with contextlib.suppress(Exception):
            await delete_topics(bootstrap, run_topics(stack))
