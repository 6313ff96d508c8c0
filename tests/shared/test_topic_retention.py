"""Issue 19: the event topics keep every event however they are created, and a topic that doesn't is reported
and repaired. Every topic here is created on the real broker and its config read back from it (DescribeConfigs).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from shared import runtime
from shared.config import REPO_ROOT, ServiceSettings
from shared.kafka import (
    delete_topics,
    describe_topic_configs,
    ensure_topics,
    history_risks_on_broker,
    keep_history,
    partition_offsets,
)
from shared.runtime import ensure_service_topics
from shared.testing.plugin import running_app, unique
from shared.topics import EVENT_TOPICS
from shared.web.app import create_service_app
from tests.shared.conftest import idempotency

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

SEVEN_DAYS_MS = "604800000"  # 7 × 24 × 3600 × 1000: the broker's default the issue is about
THIRTY_DAYS_MS = "2592000000"  # 30 × 24 × 3600 × 1000
KEEPS_EVERYTHING = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
DEAD_LETTER_TOPICS = ("uppka.projector", "dashat.projector", "reporting.projector")


KENCANA = str(Path(sys.executable).with_name("kencana"))


async def run(*command: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a command to its end (deadline 240 s); exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 240)
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def history(config: dict[str, str] | None) -> dict[str, str]:
    assert config is not None, "the topic exists"
    return {k: config[k] for k in ("cleanup.policy", "retention.ms", "retention.bytes")}


@pytest.fixture
async def suffix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A topic suffix of this test's own; its event and dead-letter topics are deleted afterwards."""
    s = "." + unique("ret")
    yield s
    await delete_topics(
        kafka_bootstrap, [f"{t}{s}" for t in EVENT_TOPICS] + [f"{g}{s}.dlq" for g in DEAD_LETTER_TOPICS]
    )


async def described(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str] | None]:
    """Configs of just-created topics: a loaded broker may answer "unknown topic" for a moment (deadline 30 s)."""
    async with asyncio.timeout(30):
        while True:
            configs = await describe_topic_configs(bootstrap, topics)
            if all(configs.get(t) is not None for t in topics):
                return configs
            await asyncio.sleep(0.5)


async def assert_created_as_declared(bootstrap: str, suffix: str, *, dead_letters: bool) -> None:
    configs = await described(bootstrap, [f"{t}{suffix}" for t in EVENT_TOPICS])
    for topic in EVENT_TOPICS:
        assert history(configs[f"{topic}{suffix}"]) == KEEPS_EVERYTHING, topic
    offsets = await partition_offsets(bootstrap, [f"kencana.registry{suffix}"])
    assert len(offsets) == 6
    if dead_letters:
        dlq = await described(bootstrap, [f"{g}{suffix}.dlq" for g in DEAD_LETTER_TOPICS])
        for group in DEAD_LETTER_TOPICS:
            config = dlq[f"{group}{suffix}.dlq"]
            assert config is not None and config["retention.ms"] == THIRTY_DAYS_MS
            assert config["cleanup.policy"] == "delete"
        assert len(await partition_offsets(bootstrap, [f"reporting.projector{suffix}.dlq"])) == 1


async def test_service_start_up_creates_event_topics_that_keep_every_event(
    kafka_bootstrap: str, suffix: str
) -> None:
    # What a relay or consumer process does first (shared.runtime), against a broker whose default is 7 days.
    settings = ServiceSettings(
        service_name="reporting", kafka_bootstrap_servers=kafka_bootstrap, topic_suffix=suffix
    )
    await ensure_service_topics(settings, list(EVENT_TOPICS))
    await assert_created_as_declared(kafka_bootstrap, suffix, dead_letters=False)


async def test_infra_script_creates_event_and_dead_letter_topics_that_keep_history(
    kafka_bootstrap: str, suffix: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KENCANA_STATE_DIR": str(tmp_path),
        "KENCANA_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KENCANA_TOPIC_SUFFIX": suffix,
    }
    status, out, err = await run(str(REPO_ROOT / "scripts" / "infra.sh"), "topics", env=env)
    assert status == 0, out + err
    await assert_created_as_declared(kafka_bootstrap, suffix, dead_letters=True)


async def test_compose_topics_step_creates_event_and_dead_letter_topics_that_keep_history(
    kafka_bootstrap: str, suffix: str
) -> None:
    # The step's own command and environment from docker-compose.yml, run here with the broker's address and
    # credentials in place of the containers' (`kafka:9092`, the admin's password file in the kafka-secrets
    # volume); the image's `kencana` is this checkout's entry point.
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    step = compose["services"]["topics"]
    command = list(step["command"])
    assert command[0] == "kencana"
    env = {
        **os.environ,
        **{k: str(v) for k, v in step["environment"].items() if not k.startswith("KENCANA_KAFKA_")},
        "KENCANA_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KENCANA_TOPIC_SUFFIX": suffix,
    }
    status, out, err = await run(KENCANA, *command[1:], env=env)
    assert status == 0, out + err
    await assert_created_as_declared(kafka_bootstrap, suffix, dead_letters=True)


async def test_a_seven_day_topic_is_reported_by_readiness_and_repaired_keeping_its_own_settings(
    kafka_bootstrap: str, suffix: str, shared_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = f"kencana.registry{suffix}"
    # As `make infra-up` + the services left it before: broker defaults, plus one setting of the topic's own.
    await ensure_topics(
        kafka_bootstrap,
        [registry],
        partitions=2,
        config={"retention.ms": SEVEN_DAYS_MS, "max.message.bytes": "2000000"},
    )
    await described(kafka_bootstrap, [registry])
    settings = ServiceSettings(
        service_name="probe",
        database_url=shared_db_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_suffix=suffix,
    )
    # A relay or consumer starting now reports the topic at every start and leaves it as it is. (The module's
    # logger is replaced: structlog caches configured loggers, so capturing depends on what ran before.)
    logs: list[dict[str, object]] = []

    class Recorder:
        def error(self, event: str, **fields: object) -> None:
            logs.append({"event": event, **fields})

    monkeypatch.setattr(runtime, "log", Recorder())
    await ensure_service_topics(settings, list(EVENT_TOPICS))
    reported = [entry for entry in logs if entry["event"] == "topic_drops_event_history"]
    assert [(e["topic"], e["setting"], e["value"], e["fix"]) for e in reported] == [
        (registry, "retention.ms", SEVEN_DAYS_MS, "kencana topics repair")
    ]
    assert (await describe_topic_configs(kafka_bootstrap, [registry]))[registry][
        "retention.ms"
    ] == SEVEN_DAYS_MS  # type: ignore[index]
    app = create_service_app(
        settings,
        title="probe",
        description="probe",
        routers=[],
        idempotency_table=idempotency,
        history_topics=EVENT_TOPICS,
    )
    async with running_app(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/problem+json")
        body = ready.json()
        assert body["type"].endswith("event-history-at-risk")
        assert body["checks"] == {"database": "ok", "kafka": "ok", "event_history": "drops events"}
        # The other two were just created by the start-up above, with the declared settings.
        assert body["topics"] == [{"topic": registry, "setting": "retention.ms", "value": SEVEN_DAYS_MS}]
        assert "7 days" in body["detail"] and "kencana topics repair" in body["detail"]

        where = ["--suffix", suffix, "--bootstrap-servers", kafka_bootstrap]
        status, out, err = await run(KENCANA, "topics", "check", *where)
        assert status == 1 and "drops history: retention.ms=604800000" in out, out + err

        status, out, err = await run(KENCANA, "topics", "repair", *where)
        assert status == 0, out + err
        assert f"repaired {registry}: retention.ms was {SEVEN_DAYS_MS}" in out

        configs = await describe_topic_configs(kafka_bootstrap, [registry])
        assert history(configs[registry]) == KEEPS_EVERYTHING
        assert configs[registry]["max.message.bytes"] == "2000000", (
            "the topic's own setting survived the repair"
        )
        # Repair does not re-partition an existing topic.
        assert len(await partition_offsets(kafka_bootstrap, [registry])) == 2

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["event_history"] == "ok"


async def test_a_compacted_topic_and_a_size_limit_are_risks_too(kafka_bootstrap: str, suffix: str) -> None:
    uppka = f"kencana.uppka{suffix}"
    await ensure_topics(
        kafka_bootstrap,
        [uppka],
        partitions=1,
        config={"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "1073741824"},
    )
    await described(kafka_bootstrap, [uppka])
    risks = await history_risks_on_broker(kafka_bootstrap, [uppka])
    assert {(r.setting, r.value) for r in risks} == {
        ("cleanup.policy", "compact"),
        ("retention.bytes", "1073741824"),
    }
    await keep_history(kafka_bootstrap, [uppka])
    assert history((await describe_topic_configs(kafka_bootstrap, [uppka]))[uppka]) == KEEPS_EVERYTHING
    assert await history_risks_on_broker(kafka_bootstrap, [uppka]) == []
