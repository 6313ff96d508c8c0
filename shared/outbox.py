"""Transactional outbox: events are rows written with the state change, published later by one relay."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics
from shared.db import new_ids, utcnow
from shared.events.envelope import CONTENT_TYPE, CloudEvent, EventData, build_envelope
from shared.kafka import make_producer
from shared.logging import get_logger
from shared.web.context import current_correlation_id

log = get_logger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table every service's metadata includes."""
    return Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("partition_key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )


async def publish(
    session: AsyncSession,
    table: Table,
    data: EventData,
    *,
    key: str | uuid.UUID,
    subject: str | None = None,
    causation_id: str | None = None,
) -> CloudEvent:
    """Write an event in the caller's transaction; it reaches Kafka only if that transaction commits."""
    envelope = build_envelope(
        data,
        key=str(key),
        subject=subject,
        correlation_id=current_correlation_id(),
        causation_id=causation_id,
    )
    await session.execute(
        insert(table).values(
            event_id=uuid.UUID(envelope.id),
            topic=data.topic(),
            partition_key=envelope.partitionkey,
            event_type=envelope.type,
            envelope=envelope.model_dump(mode="json", exclude_none=True),
        )
    )
    return envelope


OutboxRecord = tuple[uuid.UUID, str, str, str, str]
# The columns of an `OutboxRecord`, for bulk writers (COPY); `envelope` is the JSON text.
OUTBOX_RECORD_COLUMNS = ("event_id", "topic", "partition_key", "event_type", "envelope")


def outbox_records(
    events: Sequence[tuple[EventData, str | uuid.UUID]], *, correlation_id: str | None = None
) -> list[OutboxRecord]:
    """The rows `publish` would write for many events, for one bulk write in the caller's transaction.

    `build_envelope` makes the first envelope of each event type; the others are that envelope with their own
    id, key and data (one event time per batch), because a pydantic envelope per event costs more than all
    the rest of a bulk import's work on a row.
    """
    # Per event type, the envelope's JSON up to its per-event members (key order does not matter in JSONB).
    heads: dict[str, tuple[str, str]] = {}
    now = utcnow()
    out: list[OutboxRecord] = []
    for (data, key), event_id in zip(events, new_ids(len(events)), strict=True):
        known = heads.get(data.event_type)
        if known is None:
            template = build_envelope(data, key=str(key), correlation_id=correlation_id, time=now).model_dump(
                mode="json", exclude_none=True
            )
            for own in ("id", "partitionkey", "data"):
                del template[own]
            known = heads[data.event_type] = (orjson.dumps(template).decode()[:-1], data.topic())
        head, topic = known
        partition_key = str(key)
        text = (
            f'{head},"id":"{event_id}","partitionkey":{orjson.dumps(partition_key).decode()},'
            f'"data":{data.model_dump_json()}}}'
        )
        out.append((event_id, topic, partition_key, data.event_type, text))
    return out


@dataclass
class _Row:
    seq: int
    event_id: uuid.UUID
    topic: str
    key: str
    envelope: dict[str, Any]


class Relay:
    """Publishes outbox rows in commit order, marking each published only after the broker acknowledged it.

    Only one relay per service publishes at a time (a PostgreSQL advisory lock elects it), which is what keeps
    per-key order; every send is bounded by a timeout and the producer is rebuilt after any failure, because an
    idempotent aiokafka producer can hang or stay stuck after a broker outage.
    """

    def __init__(
        self,
        *,
        service: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        bootstrap_servers: str,
        topic_for: Callable[[str], str] = lambda t: t,
        batch_size: int = 200,
        poll_interval: float = 0.2,
        send_timeout: float = 15.0,
        retention: timedelta = timedelta(hours=72),
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.table = table
        self.topic_for = topic_for
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.send_timeout = send_timeout
        self.retention = retention
        self._producer_factory = producer_factory or (
            lambda: make_producer(
                bootstrap_servers,
                client_id=f"{service}-relay",
                request_timeout_ms=int(send_timeout * 1000),
            )
        )
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._lock_key = zlib.crc32(f"kencana-relay:{service}:{table.name}".encode())
        self.published_total = 0

    def stop(self) -> None:
        """Ask the loop to finish its current batch and exit."""
        self._stopping.set()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                async with asyncio.timeout(self.send_timeout):
                    await producer.start()
            except BaseException:
                await self._discard(producer)
                raise
            self._producer = producer
        return self._producer

    async def _discard(self, producer: AIOKafkaProducer | None) -> None:
        if producer is None:
            return
        # stop() can hang forever with idempotence on and the broker down: give up on it after a while.
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(5):
                await producer.stop()

    async def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        await self._discard(producer)

    async def _fetch(self, session: AsyncSession) -> list[_Row]:
        t = self.table
        result = await session.execute(
            select(t.c.seq, t.c.event_id, t.c.topic, t.c.partition_key, t.c.envelope)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.seq)
            .limit(self.batch_size)
        )
        return [_Row(r.seq, r.event_id, r.topic, r.partition_key, r.envelope) for r in result]

    async def _send(self, rows: list[_Row]) -> list[int]:
        """Send a batch in order; returns the seqs acknowledged before the first failure."""
        producer = await self._ensure_producer()
        futures = []
        for row in rows:
            value = orjson.dumps(row.envelope)
            fut = await producer.send(
                self.topic_for(row.topic),
                value=value,
                key=row.key.encode(),
                headers=[("content-type", CONTENT_TYPE.encode()), ("ce_type", row.envelope["type"].encode())],
            )
            futures.append((row.seq, fut))
        acked: list[int] = []
        try:
            async with asyncio.timeout(self.send_timeout):
                for seq, fut in futures:
                    await fut
                    acked.append(seq)
        finally:
            for _, fut in futures[len(acked) :]:
                fut.cancel()
        return acked

    async def publish_batch(self) -> int:
        """One round: read unpublished rows, send them, mark the acknowledged ones. Returns how many."""
        async with self.sessionmaker() as session:
            rows = await self._fetch(session)
            await self._update_lag_metrics(session)
        if not rows:
            return 0
        acked: list[int] = []
        error: BaseException | None = None
        try:
            acked = await self._send(rows)
        except Exception as exc:  # broker down, timeout, stuck producer: rows wait, nothing is lost
            error = exc
        if acked:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(self.table).where(self.table.c.seq.in_(acked)).values(published_at=utcnow())
                )
            self.published_total += len(acked)
            metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(acked))
        if error is not None:
            metrics.RELAY_ERRORS.labels(self.service).inc()
            log.warning("relay_send_failed", error=repr(error), pending=len(rows) - len(acked))
            failed = [r.seq for r in rows if r.seq not in set(acked)][:1]
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(self.table)
                    .where(self.table.c.seq.in_(failed))
                    .values(attempts=self.table.c.attempts + 1, last_error=repr(error)[:1000])
                )
            await self._reset_producer()
            raise RelayError(str(error)) from error
        return len(acked)

    async def _update_lag_metrics(self, session: AsyncSession) -> None:
        t = self.table
        row = (
            await session.execute(
                select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
            )
        ).one()
        metrics.OUTBOX_PENDING.labels(self.service).set(row[0])
        metrics.OUTBOX_LAG.labels(self.service).set((utcnow() - row[1]).total_seconds() if row[1] else 0)

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention period."""
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(self.table).where(self.table.c.published_at < utcnow() - self.retention)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def run(self) -> None:
        """Publish until stopped, holding the service's relay lock so only one relay sends."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                async with self.sessionmaker() as lock_session:
                    got = (
                        await lock_session.execute(select(func.pg_try_advisory_lock(self._lock_key)))
                    ).scalar_one()
                    if not got:
                        await self._sleep(2.0)
                        continue
                    try:
                        await self._loop()
                    finally:
                        with contextlib.suppress(Exception):
                            await lock_session.execute(select(func.pg_advisory_unlock(self._lock_key)))
            except Exception as exc:
                log.warning("relay_loop_error", error=repr(exc))
                await self._sleep(backoff)
        await self._reset_producer()

    async def _loop(self) -> None:
        backoff = 0.5
        rounds = 0
        while not self._stopping.is_set():
            try:
                sent = await self.publish_batch()
                backoff = 0.5
            except RelayError:
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            rounds += 1
            if rounds % 500 == 0:
                await self.purge_published()
            if sent < self.batch_size:
                await self._sleep(self.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


class RelayError(Exception):
    """A batch could not be published completely; the rest waits for the next round."""
