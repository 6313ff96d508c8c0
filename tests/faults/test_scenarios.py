"""The fault scenarios of issue 14 (`make test-faults`), each a small addition to the one harness
(tests/faults/harness.py): its fault schedule, its load and its own checks. Every one streams at least 50
operations/s through the public APIs of all four services, injects its fault, drains with a deadline, and asserts
missing effects = 0, duplicate effects = 0, nothing dead-lettered, every outbox row on its topic.

Scenarios that kill or stop the broker or PostgreSQL run only against the scenarios' own servers
(scripts/faults.sh starts them on 5442/9192 in their own state folder); they are skipped on anyone else's.
The reduced form (`faults_quick`, in `make test`) runs the cheapest two, the crash points, briefly.

    KENCANA_FAULT_SCALE   multiplies every stream's length (0.3: a short development run; default 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from shared.kafka import describe_topic_configs, security_options
from tests.e2e.stack import Stack
from tests.faults.faults import Fault, Injector, spread
from tests.faults.harness import OWN_INFRA, Scenario, run_scenario
from tests.faults.replay import replay_and_rebuild

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

SCALE = float(os.environ.get("KENCANA_FAULT_SCALE", "1"))
# Scenario 2's outage is the issue's two minutes whatever the scale (the scale shortens the streams only).
OUTAGE = 120.0
RELAYS = ["registry/relay", "uppka/relay", "dashat/relay"]
CONSUMERS = ["uppka/consumer", "dashat/consumer", "reporting/consumer"]


def _no_5xx_no_hang(figures: dict[str, Any]) -> None:
    assert figures["server_errors"] == {}, f"5xx answers: {figures['server_errors']}"
    assert figures["timeouts"] == 0, f"{figures['timeouts']} requests got no answer in time"


def _crash_points_hit(expected: int, *, duplicates_on_topic: bool) -> Any:
    def check(figures: dict[str, Any]) -> None:
        assert figures["crash_points_hit"] == expected, figures["crash_points_hit"]
        if duplicates_on_topic:
            # Sent and acknowledged, never marked: the next relay sends them again, a new producer id, so the
            # broker cannot drop them. Proof that the window was hit; the effects above are still once.
            assert sum(t["duplicates_on_topic"] for t in figures["topics"].values()) > 0
        _no_5xx_no_hang(figures)

    return check


def _crash_point_faults(
    targets: list[str], point: str, count: int, seconds: float, *, hit: int = 2
) -> list[Fault]:
    # By default the second acknowledged batch / committed poll after the restart: well under way. The wait for
    # it is long: a restart on the loaded shared machine alone can take half a minute.
    return spread("crash point", targets, count, seconds * 0.7, 120, point=f"{point}:{hit}")


async def _sigterm_consumers_while_broker_away(
    stack: Stack, injector: Injector, started: float
) -> dict[str, Any]:
    """Half-way through the outage, SIGTERM each consumer: it must exit by itself within its shutdown deadline
    (10 s grace + 8 s to close), not hang on the broker until SIGKILLed (the bug this guards against)."""
    await asyncio.sleep(max(0.0, started + 10 + OUTAGE / 2 - time.monotonic()))
    assert injector.broker_down, "the outage should be under way"
    exits: dict[str, dict[str, Any]] = {}
    for target in CONSUMERS:
        service, role = target.split("/")
        injector._busy.add((service, role))
        proc = stack.procs.pop((service, role))
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        code: int | None = None
        with contextlib.suppress(Exception):
            code = await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
        exits[target] = {"seconds": round(time.monotonic() - t0, 1), "exit_code": code}
        asyncio.get_running_loop().create_task(injector._start_when_broker_back(service, role))
    return {"sigterm_while_broker_away": exits}


def _503_never_500(figures: dict[str, Any]) -> None:
    """While PostgreSQL is away clients get 503 problem+json with Retry-After, never 500, and no hang."""
    assert set(figures["server_errors"]) <= {503, "503"}, figures["server_errors"]
    assert figures["bad_503"] == 0, "503 without Retry-After or problem+json"
    assert figures["timeouts"] == 0, f"{figures['timeouts']} requests got no answer in time"


def _replay_changes_nothing(figures: dict[str, Any]) -> None:
    replay, rebuild = figures["replay"], figures["rebuild"]
    assert sum(replay["records_replayed"].values()) > 0
    assert replay["tables_changed"] == {}, replay["tables_changed"]
    assert rebuild["exit_code"] == 0
    assert rebuild["tables_different"] == {}, "rebuild differs from the incremental projection"


def _slow_handler_checks(figures: dict[str, Any]) -> None:
    """Each slow consumer joined its group once (no rebalance loop) and did get polls slower than the interval
    (the fault bit); progress and the drain are the common checks."""
    _no_5xx_no_hang(figures)
    windows = figures["slow_windows"]
    assert set(windows) == set(SLOW), windows
    for target, w in windows.items():
        assert w["slow_polls"] >= 1, (target, w)
        assert w["assignments"] == 1, (target, w)


# Scenario 6: the consumers whose handlers turn slow, one after the other: poll interval 8 s, 16 s more per poll.
SLOW = ["dashat/consumer", "uppka/consumer"]
SLOW_INTERVAL = 8


# Scenario 7: one event type per topic that a "buggy" consumer build fails on (KENCANA_FAIL_EVENT_TYPES).
POISON = {
    "dashat": ["uppka.dashat_contribution.made.v1"],  # kencana.uppka: the ledger incomes are counted too
    "reporting": ["registry.family.registered.v1", "dashat.beneficiary.enrolled.v1"],
}


async def _poisoned_applied_once(stack: Stack, dbs: Any, bootstrap: str, log_dir: Path) -> dict[str, Any]:
    """Per poisoned type: every event of it published is in the consumer's inbox (applied; once: the key)."""
    out = {}
    for service, types in POISON.items():
        group = f"{service}.projector{stack.suffix}"
        for event_type in types:
            publisher = event_type.split(".")[0]
            published = {
                str(r[0])
                for r in await dbs.conns[publisher].fetch(
                    "select event_id from outbox where event_type = $1", event_type
                )
            }
            applied = {
                str(r[0])
                for r in await dbs.conns[service].fetch(
                    "select event_id from inbox where consumer = $1 and event_type = $2", group, event_type
                )
            }
            out[f"{service}/{event_type}"] = {
                "published": len(published),
                "missing": len(published - applied),
            }
    return {"poisoned": out}


def _poison_checks(figures: dict[str, Any]) -> None:
    _no_5xx_no_hang(figures)
    for service in POISON:
        group = f"{service}.projector"
        dead = figures["dead_lettered"][group]
        assert dead > 0, f"{group}: nothing dead-lettered"
        replay = figures["dlq_replays"][group]
        assert replay["exit_code"] == 0, replay
        resent = re.search(r"\.dlq: (\d+) resent", replay["output"])
        assert resent and int(resent.group(1)) == dead, (dead, replay)
    for key, p in figures["poisoned"].items():
        assert p["published"] > 0 and p["missing"] == 0, (key, p)


async def _cluster_settings(stack: Stack, dbs: Any, bootstrap: str, log_dir: Path) -> dict[str, Any]:
    """What the topics really got: replicas per partition and min.insync.replicas (as the brokers report it)."""
    from aiokafka.admin import AIOKafkaAdminClient

    topics = [f"kencana.{s}{stack.suffix}" for s in ("registry", "uppka", "dashat")]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000, **security_options())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    replicas = {d["topic"]: sorted({len(p["replicas"]) for p in d["partitions"]}) for d in described}
    configs = await describe_topic_configs(bootstrap, topics)
    min_isr = {
        t: int(c["min.insync.replicas"]) for t, c in configs.items() if c and "min.insync.replicas" in c
    }
    return {"cluster": {"brokers": 3, "replicas_per_partition": replicas, "min_insync_replicas": min_isr}}


def _cluster_checks(figures: dict[str, Any]) -> None:
    _no_5xx_no_hang(figures)
    assert len(figures["leaders_killed"]) == 5, figures["leaders_killed"]
    cluster = figures["cluster"]
    assert all(r == [3] for r in cluster["replicas_per_partition"].values()), cluster
    assert all(n == 2 for n in cluster["min_insync_replicas"].values()) and cluster["min_insync_replicas"], (
        cluster
    )


def _outage_checks(figures: dict[str, Any]) -> None:
    _no_5xx_no_hang(figures)
    rows = figures["max_outbox_unpublished_rows"]
    assert all(n > 0 for n in rows.values()), f"the outboxes should have grown: {rows}"
    for target, e in figures["sigterm_while_broker_away"].items():
        assert e["exit_code"] is not None and e["exit_code"] != -signal.SIGKILL, (target, e)
        # The deadline is 10 s grace + 8 s to the hard exit; the slack is for the measuring side on a loaded
        # machine (the run of 2026-12-01 measured 18.6-21.6 s at load 16 on 2 cores).
        assert e["seconds"] <= 30, (target, e)


def scenarios() -> list[Scenario]:
    s = SCALE
    return [
        Scenario(
            key="s01-broker-sigkill",
            title="1. Kafka broker SIGKILLed and restarted 4 times (single node)",
            faults=spread("broker SIGKILL", ["kafka"], 4, 60 * s, 3),
            seconds=60 * s,
            stream_until_faults_done=True,
            check=_no_5xx_no_hang,
        ),
        Scenario(
            key="s02-broker-away-2min",
            title="2. Kafka unavailable for 2 minutes",
            faults=[Fault(10, "broker outage", "kafka", OUTAGE)],
            seconds=OUTAGE + 20,
            check=_outage_checks,
            during=_sigterm_consumers_while_broker_away,
        ),
        Scenario(
            key="s03-relay-killed-after-send",
            title="3. relay killed after sending, before marking rows sent (x10)",
            faults=_crash_point_faults(RELAYS, "relay.after_send", 10, 60 * s),
            seconds=60 * s,
            stream_until_faults_done=True,
            check=_crash_points_hit(10, duplicates_on_topic=True),
        ),
        Scenario(
            key="s04-consumer-killed-after-db-commit",
            title="4. consumer killed between its database commit and its offset commit (x10)",
            faults=_crash_point_faults(CONSUMERS, "consumer.after_db_commit", 10, 60 * s),
            seconds=60 * s,
            stream_until_faults_done=True,
            check=_crash_points_hit(10, duplicates_on_topic=False),
        ),
        Scenario(
            key="s05-rebalance-storm",
            title="5. rebalance storm: each consumer group scaled 1 -> 3 -> 1 during load",
            faults=spread("scale out", CONSUMERS, 3, 60 * s, 12 * s),
            seconds=60 * s,
            stream_until_faults_done=True,
            check=_no_5xx_no_hang,
        ),
        Scenario(
            key="s06-slow-handler",
            title="6. a handler slower than the poll interval (2x, every poll): no rebalance loop",
            faults=[
                Fault(
                    round(5 + i * 30 * s, 1),
                    "slow handler",
                    t,
                    max(30 * s, 6 * SLOW_INTERVAL),
                    str(SLOW_INTERVAL),
                )
                for i, t in enumerate(SLOW)
            ],
            seconds=60 * s,
            stream_until_faults_done=True,
            check=_slow_handler_checks,
        ),
        Scenario(
            key="s07-poison-and-dlq-replay",
            title="7. poison events on each topic dead-lettered, then replayed after the fix",
            faults=[
                Fault(5, "poison window", "dashat/consumer", 25 * s, ",".join(POISON["dashat"])),
                Fault(6, "poison window", "reporting/consumer", 25 * s, ",".join(POISON["reporting"])),
                Fault(7, "dlq replay", "dashat.projector", 0),
                Fault(8, "dlq replay", "reporting.projector", 0),
            ],
            seconds=45 * s,
            stream_until_faults_done=True,
            dead_letters_expected=True,
            check=_poison_checks,
            after=_poisoned_applied_once,
        ),
        Scenario(
            key="s08-full-replay",
            title="8. every topic replayed from offset 0 into every consumer; reporting rebuilt",
            faults=[],
            seconds=30 * s,
            check=_replay_changes_nothing,
            after=replay_and_rebuild,
        ),
        Scenario(
            key="s09-postgres-restart",
            title="9. PostgreSQL restarted under load (fast, then immediate shutdown)",
            faults=[
                Fault(round(15 * s, 1), "postgres fast", "postgres", 3),
                Fault(round(50 * s, 1), "postgres immediate", "postgres", 3),
            ],
            seconds=60 * s,
            attempts=30,
            stream_until_faults_done=True,
            check=_503_never_500,
        ),
        Scenario(
            key="s10-three-brokers-leader-killed",
            title="10. three-broker KRaft cluster (RF 3, min.insync.replicas 2, acks=all): partition leader SIGKILLed x5",
            faults=spread(
                "leader SIGKILL", ["kencana.registry", "kencana.uppka", "kencana.dashat"], 5, 60 * s, 4
            ),
            seconds=60 * s,
            stream_until_faults_done=True,
            check=_cluster_checks,
            after=_cluster_settings,
        ),
        Scenario(
            key="s11-relay-db-read-only",
            title="11. the registry's database (its relay's) read-only for a while under load",
            faults=[Fault(round(10 * s, 1), "database read-only", "registry", 20 * s)],
            seconds=40 * s,
            stream_until_faults_done=True,
            attempts=30,
            check=_503_never_500,
        ),
    ]


BY_KEY = {sc.key: sc for sc in scenarios()}
CLUSTER = "s10-three-brokers-leader-killed"
CLUSTER_BROKERS = int(os.environ.get("KAFKA_BROKERS", "1"))
OWN_INFRA_ONLY = {"s01-broker-sigkill", "s02-broker-away-2min", "s09-postgres-restart", CLUSTER}


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("key", list(BY_KEY))
async def test_scenario(key: str, tmp_path: Path, kafka_bootstrap: str) -> None:
    if key in OWN_INFRA_ONLY and not OWN_INFRA:
        pytest.skip("kills servers: only the fault scenarios' own (make test-faults)")
    # scripts/faults.sh runs the single-node scenarios, then the cluster one on a three-broker cluster.
    if (key == CLUSTER) != (CLUSTER_BROKERS == 3):
        pytest.skip("runs on the three-broker cluster only" if key == CLUSTER else "runs on the single node")
    await run_scenario(BY_KEY[key], tmp_path, kafka_bootstrap)


# In `make test` (not slow): on the shared infrastructure it kills only its own relay and consumer processes.
# About 3 minutes at load 13 on the 2-core machine; the deadline leaves room for a machine at load 30-50.
@pytest.mark.faults_quick
@pytest.mark.timeout(600)
async def test_crash_points_quick(tmp_path: Path, kafka_bootstrap: str) -> None:
    """The reduced form: two relay and two consumer crash points in a short stream."""
    seconds = 30
    faults = sorted(
        _crash_point_faults(RELAYS[:2], "relay.after_send", 2, seconds, hit=1)
        + [
            Fault(f.at + 3, f.kind, f.target, f.down_for, f.point)
            for f in _crash_point_faults(CONSUMERS[1:], "consumer.after_db_commit", 2, seconds, hit=1)
        ],
        key=lambda f: f.at,
    )
    scenario = Scenario(
        key="quick-crash-points",
        title="reduced: relay and consumer crash points (x2 each)",
        faults=faults,
        seconds=seconds,
        rate=20,
        workers=10,
        stream_until_faults_done=True,
        check=_crash_points_hit(4, duplicates_on_topic=True),
    )
    await run_scenario(scenario, tmp_path, kafka_bootstrap)
