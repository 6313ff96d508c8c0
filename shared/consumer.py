"""Idempotent consumer runner: inbox in the effect's transaction, commit after it, retries, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, Table, Text, bindparam, cast, column, func, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import crashpoints, metrics
from shared.db import database_unavailable
from shared.events.envelope import CloudEvent, EventData, parse_data
from shared.kafka import ensure_topics, make_consumer, make_producer, when_kafka_answers
from shared.logging import describe_error, get_logger
from shared.topics import DEAD_LETTER_PARTITIONS, topic_config
from shared.web.context import (
    reset_causation_id,
    reset_correlation_id,
    set_causation_id,
    set_correlation_id,
)

log = get_logger(__name__)

Handler = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]


def inbox_table(metadata: MetaData) -> Table:
    """Processed event ids per consumer; written in the same transaction as the effect."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class PoisonEvent(Exception):
    """A handler's verdict that retrying cannot help: straight to the dead-letter topic."""


@dataclass(frozen=True)
class Delivery:
    """One new event of a poll, as a batch handler gets it."""

    envelope: CloudEvent
    data: Any  # the parsed payload model, as `Handler`s get it
    topic: str
    partition: int
    offset: int


BatchHandler = Callable[[AsyncSession, Sequence[Delivery]], Awaitable[None]]


async def handle_one_by_one(
    session: AsyncSession, handlers: Mapping[str, Handler], deliveries: Sequence[Delivery]
) -> None:
    """Apply deliveries in order through their per-event handlers in the caller's transaction.

    What the runner does without a batch handler; a batch handler calls it for what it does not apply
    set-based.
    """
    for delivery in deliveries:
        envelope = delivery.envelope
        token = set_correlation_id(envelope.correlationid or envelope.id)
        cause = set_causation_id(envelope.id)
        try:
            await handlers[envelope.type](session, envelope, delivery.data)
        finally:
            reset_causation_id(cause)
            reset_correlation_id(token)
        # As if each event had its own session: sessions do not autoflush, so the next handler's queries
        # would miss this one's changes, and rows it loaded would hide later bulk updates from the next one.
        # (Checked first: a flush of an untouched session still costs a greenlet switch per event.)
        if session.new or session.identity_map:
            await session.flush()
            session.expunge_all()


@dataclass
class Outcome:
    applied: int = 0
    duplicates: int = 0
    skipped_unknown: int = 0
    dead_lettered: int = 0
    last_event_time: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Prepared:
    """A record whose envelope and payload parsed and whose type has a handler."""

    record: ConsumerRecord[bytes, bytes]
    event_id: uuid.UUID
    delivery: Delivery


def _fail_if_poisoned(deliveries: Sequence[Delivery]) -> None:
    """Test-only (shared/crashpoints.py): a handler bug for the types named in KENCANA_FAIL_EVENT_TYPES."""
    for delivery in deliveries:
        if crashpoints.poisoned(delivery.envelope.type):
            raise PoisonEvent(f"test-only failure of {delivery.envelope.type} ({crashpoints.FAIL_ENV})")


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Commit what was processed so the next owner starts right after it, then forget those partitions:
        # an offset of a partition this runner no longer owns cannot be committed (IllegalStateError).
        await self.runner.commit_processed(list(revoked))
        self.runner.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.runner.assignments += 1
        log.info("partitions_assigned", consumer=self.runner.name, partitions=[str(tp) for tp in assigned])


class ConsumerRunner:
    """Consumes topics for one consumer group and applies each event exactly once to the database.

    Handlers are typed async functions `(session, envelope, data)` keyed by event type; they must not commit.

    Each poll is applied in one transaction: the inbox rows of the whole poll in one statement (the database
    filters the duplicates), then the new events in poll order, through `batch_handler` once when given, else
    through `handlers` one by one. When that transaction fails, it is rolled back and the poll's events are
    applied again one by one through `handlers`, each in its own transaction with retries, backoff and the
    dead-letter topic; so `handlers` one at a time must have the same effect as `batch_handler` over the batch.
    Offsets are committed only after the transaction that holds their records committed.

    A batch handler hands what it does not apply set-based to `handle_one_by_one` (which binds each event's
    correlation id and flushes between events, as separate transactions would have).
    """

    def __init__(
        self,
        *,
        name: str,
        topics: list[str],
        handlers: Mapping[str, Handler],
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        bootstrap_servers: str,
        batch_handler: BatchHandler | None = None,
        dead_letter_topic: str | None = None,
        max_attempts: int = 4,
        backoff_seconds: float = 0.2,
        max_records: int = 200,
        max_poll_interval_seconds: float = 300.0,
        dead_letter_replication_factor: int = 1,
        on_applied: Callable[[CloudEvent], Awaitable[None]] | None = None,
        before_offset_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.topics = topics
        self.handlers = dict(handlers)
        self.batch_handler = batch_handler
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.bootstrap_servers = bootstrap_servers
        self.dead_letter_topic = dead_letter_topic or f"{name}.dlq"
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_records = max_records
        self.max_poll_interval_seconds = max_poll_interval_seconds
        # Polls whose application outlasted a third of the poll interval: the group was kept meanwhile.
        self.slow_polls = 0
        # Assignments this runner received: one per rebalance it took part in (the first join included).
        self.assignments = 0
        self.dead_letter_replication_factor = dead_letter_replication_factor
        self.on_applied = on_applied
        self.before_offset_commit = before_offset_commit
        self.outcome = Outcome()
        # Records read per partition: a replay compares it with the offsets it went through (shared.history).
        self.records_read: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._processed: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        # One statement for the inbox rows of a whole poll: arrays bind as two parameters whatever the
        # poll's size, so it is compiled and prepared once.
        rows = func.unnest(
            bindparam("event_ids", type_=ARRAY(UUID(as_uuid=True))),
            bindparam("event_types", type_=ARRAY(Text)),
        )
        new_rows = rows.table_valued(
            column("event_id", UUID(as_uuid=True)), column("event_type", Text)
        ).render_derived(name="e")
        self._claim_statement = (
            insert(inbox)
            .from_select(
                ["consumer", "event_id", "event_type"],
                select(cast(bindparam("consumer"), Text), new_rows.c.event_id, new_rows.c.event_type),
            )
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )

    def stop(self) -> None:
        """Finish the poll in hand, commit, and leave the group."""
        self._stopping.set()

    async def start(self) -> None:
        """Create the dead-letter topic and join the group; waits out a broker outage at start-up."""
        await when_kafka_answers(self._start_clients, what=f"start consumer {self.name}")

    async def _start_clients(self) -> None:
        try:
            await ensure_topics(
                self.bootstrap_servers,
                [self.dead_letter_topic],
                partitions=DEAD_LETTER_PARTITIONS,
                replication_factor=self.dead_letter_replication_factor,
                config=topic_config("dead-letters", replication_factor=self.dead_letter_replication_factor),
            )
            self._consumer = make_consumer(
                self.bootstrap_servers,
                group_id=self.name,
                client_id=f"{self.name}-consumer",
                max_poll_interval_seconds=self.max_poll_interval_seconds,
            )
            self._consumer.subscribe(self.topics, listener=_Rebalance(self))
            await self._consumer.start()
            self._producer = make_producer(self.bootstrap_servers, client_id=f"{self.name}-dlq")
            await self._producer.start()
        except BaseException:
            await self.close()  # a half-started client must not linger before the next attempt
            raise

    async def abort(self) -> None:
        """Drop the clients without committing anything, as a killed process would."""
        self._processed.clear()
        await self.close()

    async def close(self) -> None:
        # Bounded: with the broker gone the commit waits for a group coordinator that may never come back, and a
        # SIGTERMed consumer sat there until it was SIGKILLed. An offset not committed only means a redelivery,
        # which the inbox turns into a no-op.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.commit_processed()
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(10):
                        await client.stop()
        self._consumer = self._producer = None

    async def run(self) -> None:
        """Poll, apply, commit; until stopped."""
        await self.start()
        try:
            while not self._stopping.is_set():
                await self.poll_once()
        finally:
            await self.close()

    async def poll_once(self, timeout_ms: int = 500) -> int:
        """One poll: apply its records in one transaction, then commit the offsets. Returns records seen."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
        if not batches:
            return 0
        prepared: list[_Prepared] = []
        for records in batches.values():
            for record in records:
                parsed = self._parse(record)
                if isinstance(parsed, _Prepared):
                    prepared.append(parsed)
                elif parsed is None:
                    self.outcome.skipped_unknown += 1
                    metrics.CONSUMER_UNKNOWN.labels(self.name).inc()
                else:
                    await self._dead_letter(record, parsed, attempts=0)
        if prepared:
            await self._keeping_membership(self._apply_poll(prepared))
        count = 0
        for tp, records in batches.items():
            if records:
                self._processed[tp] = records[-1].offset + 1
                self.records_read[tp] = self.records_read.get(tp, 0) + len(records)
                count += len(records)
        if prepared:
            crashpoints.reached("consumer.after_db_commit")  # test-only: effects committed, offsets not yet
        if self.before_offset_commit is not None:
            await self.before_offset_commit()
        await self.commit_processed()
        self._record_lag()
        return count

    async def _keeping_membership(self, applying: Awaitable[None]) -> None:
        """Apply a poll while telling the group this member is alive.

        A poll whose handling outlasts max.poll.interval (a slow dependency, a very large batch) would otherwise
        get this member thrown out of the group: its offsets could not be committed, the poll would be delivered
        again after the rebalance, and a handler that is slow every time turns that into a rebalance loop. So
        every third of the interval the owned partitions are paused and the consumer polled (it returns nothing:
        a paused partition's prefetched records are dropped and fetched again from the position after resume),
        which is what resets the client's poll timer; Kafka's own advice for long processing (KIP-62). Up to
        ten intervals: a poll still unfinished then is taken for hung, the client stops answering for it and the
        group hands its partitions to another member (the inbox keeps a late commit of this one harmless).
        """
        task = asyncio.ensure_future(applying)
        kept = False
        try:
            for _ in range(30):
                done, _ = await asyncio.wait({task}, timeout=self.max_poll_interval_seconds / 3)
                if done:
                    break
                kept = True
                await self._poll_paused()
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if kept:
                self.slow_polls += 1
                self._resume_paused()
                log.warning("slow_poll_kept_in_group", consumer=self.name)

    async def _poll_paused(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        owned = consumer.assignment()
        if owned:
            consumer.pause(*owned)
        # A coordinator error surfaces here too; the poll that follows the application reports it for real.
        with contextlib.suppress(KafkaError):
            await consumer.getmany(timeout_ms=0)

    def _resume_paused(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        # Only partitions still owned: a rebalance meanwhile may have taken some (and assigned fresh ones unpaused).
        paused = consumer.paused() & consumer.assignment()
        if paused:
            consumer.resume(*paused)

    async def commit_processed(self, partitions: list[TopicPartition] | None = None) -> None:
        if self._consumer is None or not self._processed:
            return
        # A poll that was under way during a rebalance may hold records of partitions taken away meanwhile:
        # their effects are committed in the database, and the inbox turns the new owner's replay into no-ops.
        owned = self._consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(off, "")
            for tp, off in self._processed.items()
            if tp in owned and (partitions is None or tp in partitions)
        }
        if offsets:
            await self._consumer.commit(offsets)

    def forget(self, partitions: list[TopicPartition]) -> None:
        """Drop the processed offsets of partitions this runner gave up."""
        for tp in partitions:
            self._processed.pop(tp, None)

    def assignment(self) -> set[TopicPartition]:
        """Partitions this runner owns right now."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    def lag(self) -> dict[TopicPartition, int]:
        """Records behind the log end per owned partition, as of the last fetch."""
        if self._consumer is None:
            return {}
        out: dict[TopicPartition, int] = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            position = self._processed.get(tp)
            if highwater is not None and position is not None:
                out[tp] = max(highwater - position, 0)
        return out

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Current log-end offsets (a replay's goal)."""
        assert self._consumer is not None, "start() first"
        return dict(await self._consumer.end_offsets(partitions))

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record this runner will fetch from `tp`."""
        assert self._consumer is not None, "start() first"
        return int(await self._consumer.position(tp))

    def _record_lag(self) -> None:
        for tp, behind in self.lag().items():
            metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(behind)

    def _parse(self, record: ConsumerRecord[bytes, bytes]) -> _Prepared | Exception | None:
        """A record's event; the error when it cannot be parsed; None when no handler wants its type."""
        try:
            envelope = CloudEvent.model_validate_json(record.value or b"")
            event_id = uuid.UUID(envelope.id)
        except (ValidationError, ValueError) as exc:
            return exc
        if envelope.type not in self.handlers:
            return None
        try:
            parsed = parse_data(envelope)
        except ValidationError as exc:
            return exc
        data: Any = parsed if parsed is not None else envelope.data
        return _Prepared(
            record, event_id, Delivery(envelope, data, record.topic, record.partition, record.offset)
        )

    async def _apply_poll(self, prepared: list[_Prepared]) -> None:
        """The poll in one transaction; one by one, each in its own transaction, when that fails."""
        try:
            async with self.sessionmaker() as session, session.begin():
                fresh = await self._claim(session, prepared)
                new = [p for p, is_new in zip(prepared, fresh, strict=True) if is_new]
                if new:
                    await self._handle(session, new)
        except Exception as exc:
            log.warning(
                "batch_rolled_back", consumer=self.name, events=len(prepared), error=describe_error(exc)
            )
            for p in prepared:
                await self._deliver(p)
            return
        await self._settled(prepared, fresh)

    async def _claim(self, session: AsyncSession, prepared: Sequence[_Prepared]) -> list[bool]:
        """Insert the inbox rows in one statement; per event, whether it is new (False: applied before, or an
        earlier copy in the same poll)."""
        inserted = (
            await session.execute(
                self._claim_statement,
                {
                    "consumer": self.name,
                    "event_ids": [p.event_id for p in prepared],
                    "event_types": [p.delivery.envelope.type for p in prepared],
                },
            )
        ).scalars()
        unclaimed = set(inserted)
        fresh: list[bool] = []
        for p in prepared:
            if p.event_id in unclaimed:
                unclaimed.discard(p.event_id)
                fresh.append(True)
            else:
                fresh.append(False)
        return fresh

    async def _handle(self, session: AsyncSession, new: Sequence[_Prepared]) -> None:
        deliveries = [p.delivery for p in new]
        _fail_if_poisoned(deliveries)
        await crashpoints.slow_handling()
        if self.batch_handler is not None:
            await self.batch_handler(session, deliveries)
        else:
            await handle_one_by_one(session, self.handlers, deliveries)

    async def _settled(self, prepared: Sequence[_Prepared], fresh: Sequence[bool]) -> None:
        """Count events whose transaction committed (applied now, or found in the inbox)."""
        tally: dict[tuple[str, str], int] = {}
        for p, is_new in zip(prepared, fresh, strict=True):
            envelope = p.delivery.envelope
            outcome = "applied" if is_new else "duplicate"
            tally[envelope.type, outcome] = tally.get((envelope.type, outcome), 0) + 1
            if is_new:
                self.outcome.applied += 1
                self.outcome.last_event_time[p.delivery.topic] = envelope.time
                if self.on_applied is not None:
                    await self.on_applied(envelope)
            else:
                self.outcome.duplicates += 1
        # Counted per type and outcome once per poll: a labelled child per event was a visible cost.
        for (event_type, outcome), n in tally.items():
            metrics.CONSUMER_PROCESSED.labels(self.name, event_type, outcome).inc(n)

    async def _deliver(self, p: _Prepared) -> None:
        """Apply one event in its own transaction, retrying with backoff; dead-letter it when that cannot work."""
        envelope = p.delivery.envelope
        attempt = waits = 0
        while attempt < self.max_attempts:
            attempt += 1
            try:
                async with self.sessionmaker() as session, session.begin():
                    fresh = await self._claim(session, [p])
                    if fresh[0]:
                        _fail_if_poisoned([p.delivery])
                        # Through `handlers` even with a batch handler: the fallback must not depend on it.
                        await handle_one_by_one(session, self.handlers, [p.delivery])
            except PoisonEvent as exc:
                await self._dead_letter(p.record, exc, attempts=attempt)
                return
            except Exception as exc:
                if database_unavailable(exc):
                    # The database is away (a restart, a failover, a full or read-only disk): not the event's
                    # fault, so it spends none of its attempts and is never dead-lettered for it; the consumer
                    # waits here, offsets uncommitted, until the database answers again. Stopped meanwhile, it
                    # leaves the poll unapplied: delivered again to whoever owns the partition next.
                    if self._stopping.is_set():
                        raise
                    attempt -= 1
                    waits += 1
                    log.warning(
                        "database_unavailable", consumer=self.name, waits=waits, error=describe_error(exc)
                    )
                    await asyncio.sleep(min(self.backoff_seconds * 2 ** min(waits, 6), 5.0))
                    continue
                metrics.CONSUMER_PROCESSED.labels(self.name, envelope.type, "error").inc()
                log.warning(
                    "handler_failed",
                    consumer=self.name,
                    type=envelope.type,
                    attempt=attempt,
                    error=describe_error(exc),
                )
                if attempt == self.max_attempts:
                    await self._dead_letter(p.record, exc, attempts=attempt)
                    return
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                continue
            await self._settled([p], fresh)
            return

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        assert self._producer is not None
        headers = [
            *(record.headers or []),
            ("dlq.error.type", type(error).__name__.encode()),
            ("dlq.error.message", describe_error(error)[:2000].encode()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.original.topic", record.topic.encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
        ]
        async with asyncio.timeout(30):
            await self._producer.send_and_wait(
                self.dead_letter_topic, value=record.value, key=record.key, headers=headers
            )
        self.outcome.dead_lettered += 1
        metrics.CONSUMER_DLQ.labels(self.name).inc()
        log.error(
            "event_dead_lettered",
            consumer=self.name,
            topic=record.topic,
            offset=record.offset,
            error_type=type(error).__name__,
        )


__all__ = [
    "BatchHandler",
    "ConsumerRunner",
    "Delivery",
    "EventData",
    "Handler",
    "PoisonEvent",
    "handle_one_by_one",
    "inbox_table",
]
