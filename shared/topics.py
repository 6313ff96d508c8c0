"""The Kafka topics' retention and cleanup, declared once.

The event topics are the system's history: `kencana reporting rebuild` replays them from offset 0 and a new
consumer backfills from them, so they keep every event (`retention.ms` and `retention.bytes` -1, deletion only,
never compaction: compaction keeps only the last event per key, and a family's history is all of its events).
Dead-letter topics keep 30 days: the original event also stays in its event topic.

Everything that creates topics reads this module: the services (`shared.kafka.ensure_topics`), `kencana topics
repair` (run by `scripts/infra.sh` and the compose `topics` job), and a test holds the Kubernetes KafkaTopic
manifests (deploy/k8s/base/kafka-topics.yaml) to the same values. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# Logical names; a deployment's physical name adds `ServiceSettings.topic_suffix` (tests use one per test).
EVENT_TOPICS: tuple[str, ...] = ("kencana.registry", "kencana.uppka", "kencana.dashat")
# `<consumer group>.dlq` of every consumer group (shared.consumer.ConsumerRunner names them so).
CONSUMER_GROUPS: tuple[str, ...] = ("uppka.projector", "dashat.projector", "reporting.projector")
DEAD_LETTER_PARTITIONS = 1  # failures stay in arrival order for replay

DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000  # 2,592,000,000

# Curated streams for other ministries (issue 15): one topic per registered consumer, named so that an ACL can be
# written per consumer (prefixed `kencana.public.<consumer>.`) and so that a new major version of the public
# contract is a new topic beside the old one. They are not the history: the reporting service keeps every curated
# event in its own log and re-publishes it on a replay, so a public topic keeps 30 days, as the dead letters do.
PUBLIC_TOPIC_PREFIX = "kencana.public."
PUBLIC_STREAM_MAJOR = 1
PUBLIC_RETENTION_MS = DEAD_LETTER_RETENTION_MS

TopicKind = Literal["events", "dead-letters", "public"]

REPAIR_COMMAND = "kencana topics repair"


def dead_letter_topic(group: str) -> str:
    """The dead-letter topic of a consumer group."""
    return f"{group}.dlq"


def public_topic(consumer: str, major: int = PUBLIC_STREAM_MAJOR) -> str:
    """The logical topic of a consumer's curated stream, e.g. `kencana.public.kemenkes-eppgbm.v1`."""
    return f"{PUBLIC_TOPIC_PREFIX}{consumer}.v{major}"


def min_insync_replicas(replication_factor: int) -> int:
    """Two acknowledged copies when there are three (EVENTS.md: rf 3, min.insync.replicas 2); one otherwise.

    With two replicas, requiring both would stop every write while one broker restarts.
    """
    return 2 if replication_factor >= 3 else 1


def topic_config(kind: TopicKind, *, replication_factor: int) -> dict[str, str]:
    """The topic-level configuration a topic of this kind is created with (Kafka's string values)."""
    retention = {
        "events": "-1",
        "dead-letters": str(DEAD_LETTER_RETENTION_MS),
        "public": str(PUBLIC_RETENTION_MS),
    }[kind]
    config = {"cleanup.policy": "delete", "retention.ms": retention}
    if kind == "events":
        # A broker default `log.retention.bytes` would otherwise drop the oldest events once a partition is big.
        config["retention.bytes"] = "-1"
    config["min.insync.replicas"] = str(min_insync_replicas(replication_factor))
    return config


# What `repair` sets on an existing event topic: only what decides whether history is kept.
HISTORY_SETTINGS: dict[str, str] = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class HistoryRisk:
    """One setting of an event topic that deletes events (a rebuild or a new consumer would miss them)."""

    topic: str
    setting: str
    value: str
    why: str

    def describe(self) -> str:
        return f"{self.topic}: {self.setting}={self.value} ({self.why})"


def _duration(ms: int) -> str:
    value, unit = (ms / 86_400_000, "day") if ms >= 86_400_000 else (ms / 3_600_000, "hour")
    return f"{value:g} {unit}" + ("" if value == 1 else "s")


def history_risks(topic: str, config: Mapping[str, str]) -> list[HistoryRisk]:
    """The settings of an event topic's effective config that would drop history; empty when it keeps all.

    `config` holds the effective values the broker reports (topic setting, else the broker's default); a
    missing key counts as Kafka's own default (`retention.ms` 7 days, `retention.bytes` -1, `delete`).
    """
    risks: list[HistoryRisk] = []
    retention_ms = int(config.get("retention.ms", "604800000"))
    if retention_ms >= 0:
        risks.append(
            HistoryRisk(
                topic,
                "retention.ms",
                str(retention_ms),
                f"events older than {_duration(retention_ms)} are deleted",
            )
        )
    retention_bytes = int(config.get("retention.bytes", "-1"))
    if retention_bytes >= 0:
        risks.append(
            HistoryRisk(
                topic,
                "retention.bytes",
                str(retention_bytes),
                "the oldest events are deleted once a partition holds more bytes than this",
            )
        )
    policy = config.get("cleanup.policy", "delete")
    if "compact" in {p.strip() for p in policy.split(",")}:
        risks.append(
            HistoryRisk(
                topic,
                "cleanup.policy",
                policy,
                "compaction keeps only the last event of each family or person",
            )
        )
    return risks
