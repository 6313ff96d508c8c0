"""The pure rules of issue 19: which topic settings drop history, and when a kept history is not the whole one."""

from __future__ import annotations

from aiokafka import TopicPartition

from shared.history import history_gaps, read_gaps
from shared.topics import HistoryRisk, history_risks, min_insync_replicas, topic_config

T = "kencana.registry"


def test_event_topics_are_declared_to_keep_every_event() -> None:
    assert topic_config("events", replication_factor=3) == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "min.insync.replicas": "2",
    }
    # 30 days × 86,400,000 ms
    assert topic_config("dead-letters", replication_factor=1) == {
        "cleanup.policy": "delete",
        "retention.ms": "2592000000",
        "min.insync.replicas": "1",
    }
    assert [min_insync_replicas(rf) for rf in (1, 2, 3, 5)] == [1, 1, 2, 2]


def test_settings_that_keep_everything_are_no_risk() -> None:
    assert history_risks(T, {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}) == []


def test_kafka_defaults_drop_events_after_seven_days() -> None:
    # No topic setting at all: Kafka's own default, log.retention.hours=168.
    assert history_risks(T, {}) == [
        HistoryRisk(T, "retention.ms", "604800000", "events older than 7 days are deleted")
    ]
    (risk,) = history_risks(T, {"retention.ms": "3600000", "retention.bytes": "-1"})
    assert risk.why == "events older than 1 hour are deleted"
    assert risk.describe() == f"{T}: retention.ms=3600000 (events older than 1 hour are deleted)"


def test_a_size_limit_and_compaction_drop_events_too() -> None:
    risks = history_risks(
        T, {"retention.ms": "-1", "retention.bytes": "0", "cleanup.policy": "compact, delete"}
    )
    assert [(r.setting, r.value) for r in risks] == [
        ("retention.bytes", "0"),
        ("cleanup.policy", "compact, delete"),
    ]


def tp(p: int) -> TopicPartition:
    return TopicPartition(T, p)


def test_a_history_from_offset_zero_is_complete() -> None:
    assert history_gaps({tp(0): (0, 10), tp(1): (0, 0)}, [], {T: 10}) == []


def test_a_partition_whose_first_events_were_deleted_is_a_gap() -> None:
    gaps = history_gaps({tp(0): (0, 10), tp(1): (4, 9)})
    assert [g.describe() for g in gaps] == [f"{T}[1]: the first 4 events were deleted (earliest offset 4)"]


def test_time_retention_that_deleted_nothing_yet_is_no_gap_but_compaction_is() -> None:
    seven_days = HistoryRisk(T, "retention.ms", "604800000", "...")
    assert history_gaps({tp(0): (0, 3)}, [seven_days]) == []
    compact = HistoryRisk(T, "cleanup.policy", "compact", "keeps the last event per key")
    (gap,) = history_gaps({tp(0): (0, 3)}, [compact])
    assert gap.partition is None and "can't be shown" in gap.reason


def test_fewer_events_kept_than_the_consumer_applied_is_a_gap() -> None:
    # 10 + 5 = 15 kept across two partitions; 16 distinct events were applied from the topic before.
    (gap,) = history_gaps({tp(0): (0, 10), tp(1): (0, 5)}, [], {T: 16})
    assert gap.reason.startswith("it holds 15 events but 16 were applied from it before")
    assert history_gaps({tp(0): (0, 10), tp(1): (0, 5)}, [], {T: 15}) == []


def test_a_replay_that_read_fewer_records_than_offsets_found_removed_records() -> None:
    # Partition 0: offsets 0..9 went by, 10 records read: contiguous. Partition 1: offsets 2..7, 4 of 6 read.
    start = {tp(0): (0, 10), tp(1): (2, 8)}
    gaps = read_gaps(start, {tp(0): 10, tp(1): 4}, {tp(0): 10, tp(1): 8})
    assert [g.describe() for g in gaps] == [
        f"{T}[1]: offsets 2..7 hold 4 events, not 6: 2 were removed (compaction)"
    ]
