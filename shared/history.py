"""Is an event topic's history complete? The check every replay from the beginning makes before trusting it.

How we know, without a record of every event ever written:
- Kafka numbers a partition's records 0, 1, 2, ... and never reuses an offset. Deletion (retention by time or
  size, `DeleteRecords`) only ever removes the oldest records and moves the partition's *earliest offset* (log
  start) past them. So earliest offset 0 means the first event ever written to the partition is still there.
- Compaction is the one way records disappear without moving the earliest offset. An event topic whose
  `cleanup.policy` includes `compact` cannot be proven complete and is refused; and while replaying, the records
  read must be contiguous (count = next offset - earliest): the relays' producers are idempotent but not
  transactional, so there are no transaction markers and an offset gap can only be a removed record (compaction
  that ran before the policy was changed back, for instance).
- A topic deleted and created again starts at offset 0 with only its new events. The live consumer group has
  committed offsets from the old topic: an offset beyond the topic's end gives the re-creation away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka import history_risks_on_broker, partition_offsets
from shared.topics import HistoryRisk


@dataclass(frozen=True)
class Gap:
    """One reason a partition's kept events are not its whole history."""

    topic: str
    partition: int | None
    reason: str

    def describe(self) -> str:
        where = self.topic if self.partition is None else f"{self.topic}[{self.partition}]"
        return f"{where}: {self.reason}"


class IncompleteHistory(Exception):
    """A replay from the beginning would read only part of the history; the gaps say where and why."""

    def __init__(self, gaps: list[Gap]) -> None:
        self.gaps = gaps
        super().__init__("; ".join(g.describe() for g in gaps))


def history_gaps(
    offsets: Mapping[TopicPartition, tuple[int, int]],
    risks: Iterable[HistoryRisk] = (),
    committed: Mapping[TopicPartition, int] | None = None,
) -> list[Gap]:
    """Why the partitions' kept events are not the whole history (empty: complete). Pure.

    `offsets`: (earliest, end) per partition; `risks`: the topics' settings that delete events (only compaction
    matters here: a time or size retention that has not deleted anything yet leaves earliest at 0);
    `committed`: the live consumer group's committed offsets, when it has any.
    """
    gaps: list[Gap] = []
    for risk in risks:
        if risk.setting == "cleanup.policy":
            gaps.append(
                Gap(risk.topic, None, f"cleanup.policy={risk.value}: {risk.why}; completeness can't be shown")
            )
    for tp, (earliest, end) in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        if earliest > 0:
            gaps.append(
                Gap(
                    tp.topic,
                    tp.partition,
                    f"the first {earliest} events were deleted (earliest offset {earliest})",
                )
            )
        done = (committed or {}).get(tp)
        if done is not None and done > end:
            gaps.append(
                Gap(
                    tp.topic,
                    tp.partition,
                    f"the live consumer group had read up to offset {done} but the topic ends at {end}: "
                    "it was deleted and created again",
                )
            )
    return gaps


def read_gaps(
    start: Mapping[TopicPartition, tuple[int, int]],
    read: Mapping[TopicPartition, int],
    positions: Mapping[TopicPartition, int],
) -> list[Gap]:
    """Partitions where the replay read fewer records than the offsets it went through (removed records). Pure."""
    gaps: list[Gap] = []
    for tp, position in sorted(positions.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        earliest = start.get(tp, (0, 0))[0]
        expected = position - earliest
        got = read.get(tp, 0)
        if got < expected:
            gaps.append(
                Gap(
                    tp.topic,
                    tp.partition,
                    f"offsets {earliest}..{position - 1} hold {got} events, not {expected}: "
                    f"{expected - got} were removed (compaction)",
                )
            )
    return gaps


async def committed_offsets(bootstrap_servers: str, group: str) -> dict[TopicPartition, int]:
    """The committed offsets of a consumer group (empty when it never committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: int(meta.offset) for tp, meta in found.items() if meta.offset >= 0}


async def require_complete_history(
    bootstrap_servers: str, topics: list[str], *, live_group: str | None = None
) -> tuple[dict[TopicPartition, tuple[int, int]], list[HistoryRisk]]:
    """Raise IncompleteHistory unless every partition of `topics` still holds its first event ever written.

    Returns the (earliest, end) offsets it checked, for the replay's own contiguity check (`read_gaps`), and the
    settings that will delete events later (complete today, but repair them: `kencana topics repair`).
    """
    offsets = await partition_offsets(bootstrap_servers, topics)
    risks = await history_risks_on_broker(bootstrap_servers, topics)
    committed = await committed_offsets(bootstrap_servers, live_group) if live_group else {}
    gaps = history_gaps(offsets, risks, {tp: o for tp, o in committed.items() if tp.topic in topics})
    if gaps:
        raise IncompleteHistory(gaps)
    return offsets, risks
