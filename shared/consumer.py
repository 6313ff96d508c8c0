"""Idempotent consumer runner: inbox in the effect's transaction, commit after it, retries, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics
from shared.events.envelope import CloudEvent, EventData, parse_data
from shared.kafka import ensure_topics, make_consumer, make_producer, when_kafka_answers
from shared.logging import get_logger
from shared.web.context import reset_correlation_id, set_correlation_id

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
    envelope: CloudEvent
    data: Any
    handler: Handler


_Pending = tuple[TopicPartition, ConsumerRecord[bytes, bytes], _Prepared | None]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Commit what was processed so the next owner starts right after it.
        await self.runner.commit_processed([tp for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions_assigned", consumer=self.runner.name, partitions=[str(tp) for tp in assigned])


class ConsumerRunner:
    """Consumes topics for one consumer group and applies each event exactly once to the database.

    Handlers are typed async functions `(session, envelope, data)` keyed by event type; they must not commit.

    By default every event is applied in its own transaction. With `batch_transaction=True` the records of one
    poll share one transaction (each still with its inbox row). When a record fails, the transaction is rolled
    back, the records before it are applied again together, and the failing one goes through the per-record
    path alone (fresh transaction per attempt, backoff, dead letter) before the batch goes on after it; so
    order, retries and dead letters stay as they are. Offsets are committed only after the transaction that
    holds their records committed.
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
        dead_letter_topic: str | None = None,
        max_attempts: int = 4,
        backoff_seconds: float = 0.2,
        max_records: int = 200,
        dead_letter_replication_factor: int = 1,
        on_applied: Callable[[CloudEvent], Awaitable[None]] | None = None,
        before_offset_commit: Callable[[], Awaitable[None]] | None = None,
        batch_transaction: bool = False,
    ) -> None:
        self.name = name
        self.topics = topics
        self.handlers = dict(handlers)
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.bootstrap_servers = bootstrap_servers
        self.dead_letter_topic = dead_letter_topic or f"{name}.dlq"
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_records = max_records
        self.dead_letter_replication_factor = dead_letter_replication_factor
        self.on_applied = on_applied
        self.before_offset_commit = before_offset_commit
        self.batch_transaction = batch_transaction
        self.outcome = Outcome()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._processed: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the record in hand, commit, and leave the group."""
        self._stopping.set()

    async def start(self) -> None:
        """Create the dead-letter topic and join the group; waits out a broker outage at start-up."""
        await when_kafka_answers(self._start_clients, what=f"start consumer {self.name}")

    async def _start_clients(self) -> None:
        try:
            await ensure_topics(
                self.bootstrap_servers,
                [self.dead_letter_topic],
                partitions=1,
                replication_factor=self.dead_letter_replication_factor,
            )
            self._consumer = make_consumer(
                self.bootstrap_servers, group_id=self.name, client_id=f"{self.name}-consumer"
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
        with contextlib.suppress(Exception):
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
        """One poll: apply every record in partition order, then commit the offsets. Returns records seen."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
        count = 0
        if self.batch_transaction:
            items = [(tp, record) for tp, records in batches.items() for record in records]
            await self._process_batch(items)
            count = len(items)
        else:
            for tp, records in batches.items():
                for record in records:
                    await self._process(record)
                    self._processed[tp] = record.offset + 1
                    count += 1
        if count:
            if self.before_offset_commit is not None:
                await self.before_offset_commit()
            await self.commit_processed()
            self._record_lag()
        return count

    async def commit_processed(self, partitions: list[TopicPartition] | None = None) -> None:
        if self._consumer is None or not self._processed:
            return
        offsets = {
            tp: OffsetAndMetadata(off, "")
            for tp, off in self._processed.items()
            if partitions is None or tp in partitions
        }
        if offsets:
            await self._consumer.commit(offsets)

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

    async def _prepare(self, record: ConsumerRecord[bytes, bytes]) -> _Prepared | None:
        """Parse a record; None when it was dead-lettered (unparseable) or skipped (no handler)."""
        try:
            envelope = CloudEvent.model_validate(orjson.loads(record.value or b""))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            await self._dead_letter(record, exc, attempts=0)
            return None
        handler = self.handlers.get(envelope.type)
        if handler is None:
            self.outcome.skipped_unknown += 1
            metrics.CONSUMER_UNKNOWN.labels(self.name).inc()
            return None
        try:
            parsed = parse_data(envelope)
            data: Any = parsed if parsed is not None else envelope.data
        except ValidationError as exc:
            await self._dead_letter(record, exc, attempts=0)
            return None
        return _Prepared(record, envelope, data, handler)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        prepared = await self._prepare(record)
        if prepared is not None:
            await self._deliver(prepared)

    async def _deliver(self, p: _Prepared) -> None:
        """Apply one event in its own transaction, retrying with backoff; dead-letter it when that cannot work."""
        envelope = p.envelope
        token = set_correlation_id(envelope.correlationid or envelope.id)
        try:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    applied = await self._apply(envelope, p.data, p.handler)
                except PoisonEvent as exc:
                    await self._dead_letter(p.record, exc, attempts=attempt)
                    return
                except Exception as exc:
                    metrics.CONSUMER_PROCESSED.labels(self.name, envelope.type, "error").inc()
                    log.warning(
                        "handler_failed",
                        consumer=self.name,
                        type=envelope.type,
                        attempt=attempt,
                        error=repr(exc)[:500],
                    )
                    if attempt == self.max_attempts:
                        await self._dead_letter(p.record, exc, attempts=attempt)
                        return
                    await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                    continue
                await self._settled(p, applied)
                return
        finally:
            reset_correlation_id(token)

    async def _settled(self, p: _Prepared, applied: bool) -> None:
        """Count an event whose transaction committed (applied now, or found in the inbox)."""
        if applied:
            self.outcome.applied += 1
            self.outcome.last_event_time[p.record.topic] = p.envelope.time
            metrics.CONSUMER_PROCESSED.labels(self.name, p.envelope.type, "applied").inc()
            if self.on_applied is not None:
                await self.on_applied(p.envelope)
        else:
            self.outcome.duplicates += 1
            metrics.CONSUMER_PROCESSED.labels(self.name, p.envelope.type, "duplicate").inc()

    async def _apply(self, envelope: CloudEvent, data: Any, handler: Handler) -> bool:
        """The effect and the inbox row in one transaction; False when the event was already applied."""
        async with self.sessionmaker() as session, session.begin():
            return await self._apply_in(session, envelope, data, handler)

    async def _apply_in(
        self, session: AsyncSession, envelope: CloudEvent, data: Any, handler: Handler
    ) -> bool:
        """Inbox row, then the effect, in the caller's transaction; False when the event was already applied."""
        inserted = (
            await session.execute(
                insert(self.inbox)
                .values(consumer=self.name, event_id=uuid.UUID(envelope.id), event_type=envelope.type)
                .on_conflict_do_nothing()
                .returning(self.inbox.c.event_id)
            )
        ).first()
        if inserted is None:
            return False
        await handler(session, envelope, data)
        return True

    async def _process_batch(self, items: list[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]) -> None:
        """Apply one poll's records in one transaction (see the class docstring)."""
        pending = [(tp, record, await self._prepare(record)) for tp, record in items]
        start = 0
        while start < len(pending):
            failed = await self._try_chunk(pending, start, len(pending))
            if failed is None:
                return
            # Nothing from `start` on is committed. The records before the failing one applied cleanly, so
            # they are tried again together (one by one if that fails too); the failing one takes the
            # per-record path, with its retries and dead letter, before anything after it.
            if failed > start and await self._try_chunk(pending, start, failed) is not None:
                for i in range(start, failed):
                    await self._deliver_at(pending, i)
            if failed < len(pending):
                await self._deliver_at(pending, failed)
            start = failed + 1

    async def _try_chunk(self, pending: list[_Pending], start: int, end: int) -> int | None:
        """Apply pending[start:end] in one transaction; None when it committed, else where it failed.

        A failing handler rolls back the whole transaction (no savepoints: hundreds of subtransactions in one
        transaction make PostgreSQL slow for every session); `end` means the commit itself failed.
        """
        done: list[tuple[_Prepared, bool]] = []
        at = end
        try:
            async with self.sessionmaker() as session, session.begin():
                for at in range(start, end):
                    p = pending[at][2]
                    if p is None:
                        continue
                    token = set_correlation_id(p.envelope.correlationid or p.envelope.id)
                    try:
                        done.append((p, await self._apply_in(session, p.envelope, p.data, p.handler)))
                    finally:
                        reset_correlation_id(token)
                at = end
        except Exception as exc:
            log.warning("batch_rolled_back", consumer=self.name, records=end - start, error=repr(exc)[:500])
            return at
        for p, applied in done:
            await self._settled(p, applied)
        for tp, record, _ in pending[start:end]:
            self._processed[tp] = record.offset + 1
        return None

    async def _deliver_at(self, pending: list[_Pending], i: int) -> None:
        tp, record, p = pending[i]
        if p is not None:
            await self._deliver(p)
        self._processed[tp] = record.offset + 1

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        assert self._producer is not None
        headers = [
            *(record.headers or []),
            ("dlq.error.type", type(error).__name__.encode()),
            ("dlq.error.message", str(error)[:2000].encode()),
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


__all__ = ["ConsumerRunner", "EventData", "Handler", "PoisonEvent", "inbox_table"]
