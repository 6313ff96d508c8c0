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
- A topic deleted and created again starts at offset 0 with only its new events, and Kafka drops the consumer
  groups' committed offsets of a deleted topic, so offsets can't tell. The consumer's inbox can: it holds one row
  per distinct event it applied from the topic, so a topic that now holds fewer events than that has lost some.
  (It can't see a re-created topic that has since received more new events than it lost: a limit.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition

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
    applied: Mapping[str, int] | None = None,
) -> list[Gap]:
    """Why the partitions' kept events are not the whole history (empty: complete). Pure.

    `offsets`: (earliest, end) per partition; `risks`: the topics' settings that delete events (only compaction
    matters here: a time or size retention that has not deleted anything yet leaves earliest at 0);
    `applied`: per topic, the distinct events a consumer has already applied from it (its inbox), when known.
    """
    gaps: list[Gap] = []
    for risk in risks:
        if risk.setting == "cleanup.policy":
            gaps.append(
                Gap(risk.topic, None, f"cleanup.policy={risk.value}: {risk.why}; completeness can't be shown")
            )
    kept: dict[str, int] = {}
    for tp, (earliest, end) in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        kept[tp.topic] = kept.get(tp.topic, 0) + end - earliest
        if earliest > 0:
            gaps.append(
                Gap(
                    tp.topic,
                    tp.partition,
                    f"the first {earliest} events were deleted (earliest offset {earliest})",
                )
            )
    for topic, count in sorted((applied or {}).items()):
        if count > kept.get(topic, 0):
            gaps.append(
                Gap(
                    topic,
                    None,
                    f"it holds {kept.get(topic, 0)} events but {count} were applied from it before: "
                    "events were lost (deleted, or the topic was deleted and created again)",
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


async def require_complete_history(
    bootstrap_servers: str, topics: list[str], *, applied: Mapping[str, int] | None = None
) -> tuple[dict[TopicPartition, tuple[int, int]], list[HistoryRisk]]:
    """Raise IncompleteHistory unless every partition of `topics` still holds its first event ever written.

    Returns the (earliest, end) offsets it checked, for the replay's own contiguity check (`read_gaps`), and the
    settings that will delete events later (complete today, but repair them: `kencana topics repair`).
    """
    offsets = await partition_offsets(bootstrap_servers, topics)
    risks = await history_risks_on_broker(bootstrap_servers, topics)
    gaps = history_gaps(offsets, risks, applied)
    if gaps:
        raise IncompleteHistory(gaps)
    return offsets, risks
