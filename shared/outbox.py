"""Transactional outbox: events are rows written with the state change, published later by one relay."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    event,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import crashpoints, metrics
from shared.db import new_wire_ids, utcnow
from shared.events.envelope import (
    CONTENT_TYPE,
    CloudEvent,
    EventData,
    build_envelope,
    deprecated_fields,
    published_payload,
)
from shared.kafka import make_producer
from shared.logging import describe_error, get_logger
from shared.web.context import current_causation_id, current_correlation_id

log = get_logger(__name__)


# The relay LISTENs on this channel; a trigger on the outbox table signals it when a transaction that wrote outbox
# rows commits. PostgreSQL takes a global lock while it queues the notifications of a committing transaction, so
# the trigger keeps that cheap: statement-level (one call per INSERT, however many rows), and always the same
# payload (the table name), which PostgreSQL folds into one notification per transaction. A notification is only a
# hint: the relay still polls, so a lost one delays an event by at most the poll interval.
WAKE_CHANNEL = "kencana_outbox"


def wake_relay_ddl(table_name: str = "outbox") -> list[str]:
    """The function and statement-level trigger that signal the relay (run by migrations and `create_all`)."""
    function = f"{table_name}_wake_relay"
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{WAKE_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$",
        f"CREATE TRIGGER {function} AFTER INSERT ON {table_name} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def drop_wake_relay_ddl(table_name: str = "outbox") -> list[str]:
    """Undo `wake_relay_ddl` (migration downgrades)."""
    function = f"{table_name}_wake_relay"
    return [f"DROP TRIGGER IF EXISTS {function} ON {table_name}", f"DROP FUNCTION IF EXISTS {function}()"]


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table every service's metadata includes (with the trigger that wakes the relay)."""
    table = Table(
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
    for statement in wake_relay_ddl(table.name):
        event.listen(table, "after_create", DDL(statement))  # type: ignore[no-untyped-call]
    return table


async def publish(
    session: AsyncSession,
    table: Table,
    data: EventData,
    *,
    key: str | uuid.UUID,
    subject: str | None = None,
    causation_id: str | None = None,
    event_time: datetime | None = None,
) -> CloudEvent:
    """Write an event in the caller's transaction; it reaches Kafka only if that transaction commits.

    `event_time` dates the envelope when the fact belongs to another moment than now (a change by age, dated at the
    start of its day, which is where consumers file it).
    """
    envelope, row = _built(data, key, subject, causation_id, event_time)
    await session.execute(insert(table).values(**row))
    return envelope


def outbox_row(
    data: EventData,
    *,
    key: str | uuid.UUID,
    subject: str | None = None,
    causation_id: str | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """The row `publish` would write, as column values, for a writer that puts several rows (or the rows and
    the state change they record) in one statement of its own; the caller's transaction still decides."""
    return _built(data, key, subject, causation_id, event_time)[1]


def _built(
    data: EventData,
    key: str | uuid.UUID,
    subject: str | None,
    causation_id: str | None,
    event_time: datetime | None,
) -> tuple[CloudEvent, dict[str, Any]]:
    # Correlation and causation come from the context the web kit or the consumer runner set (none in a job).
    envelope = build_envelope(
        data,
        key=str(key),
        subject=subject,
        correlation_id=current_correlation_id(),
        causation_id=causation_id or current_causation_id(),
        time=event_time,
    )
    row = {
        "event_id": uuid.UUID(envelope.id),
        "topic": data.topic(),
        "partition_key": envelope.partitionkey,
        "event_type": envelope.type,
        "envelope": envelope.model_dump(mode="json", exclude_none=True),
    }
    return envelope, row


OutboxRecord = tuple[uuid.UUID, str, str, str, str]
# The columns of an `OutboxRecord`, for bulk writers (COPY); `envelope` is the JSON text.
OUTBOX_RECORD_COLUMNS = ("event_id", "topic", "partition_key", "event_type", "envelope")
# An event for `outbox_records`: the payload model, or its type and the facts it would be built from (a bulk
# writer's cheap form: no model per event; the facts must be what the model's fields would hold after validation).
OutboxEvent = EventData | tuple[type[EventData], dict[str, Any]]
# Field types whose JSON orjson writes exactly as pydantic does (a datetime would not: "+00:00" against "Z").
_PLAIN_JSON_TYPES: frozenset[Any] = frozenset({str, int, bool, uuid.UUID, date, type(None)})


def _plain_json_field(annotation: Any) -> bool:
    if annotation in _PLAIN_JSON_TYPES:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin in (Union, UnionType):
        return all(_plain_json_field(a) for a in args)
    if origin is list:
        return len(args) == 1 and args[0] is str
    return False


class _FactsPayload:
    """The JSON of one event type's payload written from plain facts with orjson, or None where it cannot be.

    A pydantic model per event, validated then dumped, cost more than the rest of a bulk import's work on a row.
    Only types whose every field serialises the same way through orjson qualify (no floats: an int given for a
    float field would lose its ".0"; no datetimes); deprecated fields travel at their default, as
    `published_payload` sends them. The first payload of each type per batch is also built through the model and
    compared: a difference sends the whole batch of that type through the model.
    """

    def __init__(self, model: type[EventData]) -> None:
        fields = model.model_fields
        self.ok = all(_plain_json_field(f.annotation) for f in fields.values())
        self.deprecated = deprecated_fields(model)
        self.defaults = {name: None if f.is_required() else f.default for name, f in fields.items()}

    def dump(self, facts: dict[str, Any]) -> str | None:
        """The payload's JSON; None for a value orjson cannot write as the model would (the model writes it)."""
        values = {
            **self.defaults,
            **{k: v for k, v in facts.items() if k in self.defaults},
            **self.deprecated,
        }
        try:
            return orjson.dumps(values, default=_uuid_text).decode()
        except TypeError:
            return None


def _uuid_text(value: Any) -> str:
    # Ids read from the database are asyncpg's own UUID type (a uuid.UUID subclass orjson does not take).
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError


def outbox_records(
    events: Sequence[tuple[OutboxEvent, str | uuid.UUID]], *, correlation_id: str | None = None
) -> list[OutboxRecord]:
    """The rows `publish` would write for many events, for one bulk write in the caller's transaction.

    `build_envelope` makes the first envelope of each event type; the others are that envelope with their own
    id, key and data (one event time per batch), because a pydantic envelope per event costs more than all
    the rest of a bulk import's work on a row. An event given as (type, facts) is validated into its model only
    when it is the first of its type (for the envelope and the check of `_FactsPayload`).
    """
    # Per event type, the envelope's JSON up to its per-event members (key order does not matter in JSONB).
    heads: dict[str, tuple[str, str, bool, _FactsPayload | None]] = {}
    now = utcnow()
    out: list[OutboxRecord] = []
    for (item, key), event_id in zip(events, new_wire_ids(len(events)), strict=True):
        if isinstance(item, EventData):
            model, data, facts = type(item), item, None
        else:
            (model, facts), data = item, None
        known = heads.get(model.event_type)
        if known is None:
            if data is None:
                assert facts is not None
                data = model(**facts)
            template = build_envelope(data, key=str(key), correlation_id=correlation_id, time=now).model_dump(
                mode="json", exclude_none=True
            )
            for own in ("id", "partitionkey", "subject", "data"):
                template.pop(own, None)
            head_text = orjson.dumps(template).decode()[:-1]
            fast: _FactsPayload | None = None
            if facts is not None:
                fast = _FactsPayload(model)
                first = fast.dump(facts) if fast.ok else None
                if first is None or orjson.loads(first) != published_payload(data):
                    fast = None
            known = heads[model.event_type] = (head_text, data.topic(), bool(deprecated_fields(model)), fast)
        head, topic, has_deprecated, fast = known
        partition_key = str(key)
        payload = fast.dump(facts) if facts is not None and fast is not None else None
        if payload is None:
            if data is None:
                assert facts is not None
                data = model(**facts)
            # Deprecated fields travel at their default (issue 12, item 7); the plain dump is kept for the others.
            payload = (
                orjson.dumps(published_payload(data)).decode() if has_deprecated else data.model_dump_json()
            )
        subject = model.subject_of(facts if facts is not None else data)
        own_subject = f'"subject":{orjson.dumps(subject).decode()},' if subject is not None else ""
        text = (
            f'{head},"id":"{event_id}","partitionkey":{orjson.dumps(partition_key).decode()},'
            f'{own_subject}"data":{payload}}}'
        )
        out.append((event_id, topic, partition_key, model.event_type, text))
    return out


@dataclass
class _Row:
    seq: int
    topic: str
    key: str
    event_type: str
    value: bytes


@dataclass
class _Flight:
    """A batch handed to the producer: one acknowledgement future per row, in row order, until the first error."""

    rows: list[_Row]
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    error: BaseException | None = None

    def cancel(self, settled: int) -> None:
        for fut in self.futures[settled:]:
            fut.cancel()


class _Marks:
    """Acknowledged rows being marked published while the relay goes on sending.

    Until its UPDATE has committed, a row still looks unpublished: `rows` are what the next read must leave out.
    Up to two marks run at once, each on a session of its own (opened when first needed), so the last batch's mark
    does not wait for the one before it; rows acknowledged while both run wait in a queue and go together in the
    next mark, so a slow database means fewer, larger marks rather than a relay that stops sending.
    """

    def __init__(
        self,
        sessions: contextlib.AsyncExitStack,
        open_session: Callable[[], Any],
        mark: Callable[[AsyncSession, list[int]], Coroutine[Any, Any, int]],
    ) -> None:
        self._sessions = sessions
        self._open_session = open_session
        self._mark = mark
        self._idle: list[AsyncSession] = []
        self._queued: list[_Row] = []
        self._running: list[tuple[asyncio.Task[int], list[_Row], AsyncSession]] = []
        self.marked = 0

    @property
    def rows(self) -> list[_Row]:
        return [*self._queued, *(row for _, rows, _ in self._running for row in rows)]

    async def session(self) -> AsyncSession:
        """An idle marking session (opened on first use, kept for the drain)."""
        if self._idle:
            return self._idle.pop()
        session: AsyncSession = await self._sessions.enter_async_context(self._open_session())
        return session

    async def start(self, rows: list[_Row]) -> None:
        """Mark these rows in the background: now if a session is free, else with the next mark."""
        self._queued.extend(rows)
        while self._running and self._running[0][0].done():
            await self._wait_oldest()
        await self._launch()

    async def _launch(self) -> None:
        if self._queued and len(self._running) < _MARKS_AT_ONCE:
            session = await self.session()
            rows, self._queued = self._queued, []
            task = asyncio.create_task(self._mark(session, [row.seq for row in rows]))
            self._running.append((task, rows, session))

    async def _wait_oldest(self) -> None:
        task, _, session = self._running.pop(0)
        try:
            self.marked += await task
        except BaseException:
            task.cancel()
            raise
        self._idle.append(session)

    async def wait(self) -> None:
        """Until every acknowledged row is marked; the first error is raised here."""
        while self._running or self._queued:
            if self._running:
                await self._wait_oldest()
            await self._launch()

    async def wait_or(self, wake: asyncio.Event) -> bool:
        """Until every acknowledged row is marked (True), or until `wake` is set first (False); marks still
        running then go on."""
        waker = asyncio.create_task(wake.wait())
        try:
            while self._running or self._queued:
                if self._running and not self._running[0][0].done():
                    await asyncio.wait([self._running[0][0], waker], return_when=asyncio.FIRST_COMPLETED)
                    if waker.done():
                        return False
                    continue
                if self._running:
                    await self._wait_oldest()
                await self._launch()
            return True
        finally:
            waker.cancel()

    async def close(self) -> None:
        """Let the marks land after a failure elsewhere; if they fail too, their rows are only sent again."""
        try:
            await self.wait()
        except BaseException as exc:
            tasks = [task for task, _, _ in self._running]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._running, self._queued = [], []
            if not isinstance(exc, Exception):
                raise
            log.warning("relay_mark_failed", error=describe_error(exc))


_MARKS_AT_ONCE = 2


class Relay:
    """Publishes outbox rows in commit order, marking each published only after the broker acknowledged it.

    Only one relay per service publishes at a time (a PostgreSQL advisory lock elects it), which is what keeps
    per-key order; every send is bounded by a timeout and the producer is rebuilt after any failure, because an
    idempotent aiokafka producer can hang or stay stuck after a broker outage.

    The leader keeps a LISTEN connection of its own and starts a round as soon as a commit that wrote outbox rows
    signals it (see `WAKE_CHANNEL`); otherwise it looks every `poll_interval`, which is what guarantees delivery
    when a notification is missed (LISTEN connection lost, database restarted, rows written by some other way).
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
        retention: timedelta = timedelta(0),
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        wake_on_commit: bool = True,
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
            lambda: make_relay_producer(
                bootstrap_servers, client_id=f"{service}-relay", send_timeout=send_timeout
            )
        )
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._listen_dsn = _listen_dsn(sessionmaker) if wake_on_commit else None
        self.listening = asyncio.Event()
        self.listen_backend_pid: int | None = None
        self._lock_key = zlib.crc32(f"kencana-relay:{service}:{table.name}".encode())
        self._lag_measured_at = 0.0
        self.published_total = 0

        # One read per batch, the pending rows in seq order from the partial index, as three ranges around the
        # rows not yet marked (see `_around`): below them, in their gaps, above them. Each range is its own
        # ordered scan with the batch's LIMIT, merged in seq order, so PostgreSQL walks the index only as far as
        # the batch and converts only the rows returned to text. One statement with OR-ed ranges was planned as
        # a bitmap scan of every pending row and a sort before the LIMIT (and the seqs chosen in a subquery
        # first, then read whole, still visited every pending row on the heap): with 4,000 pending, 44 ms
        # against 11 ms this way (EXPLAIN ANALYZE). The reader's session turns bitmap scans off (see
        # `_reading`): with the few pending rows the statistics usually show, the planner would choose one and
        # walk a whole backlog for each batch.
        def pending_range(*where: Any) -> Any:
            return select(
                table.c.seq,
                table.c.topic,
                table.c.partition_key,
                table.c.event_type,
                # As text: the envelope goes to Kafka as the JSON it is, without a decode and an encode per row.
                cast(table.c.envelope, Text).label("envelope"),
            ).where(table.c.published_at.is_(None), *where)

        limit = bindparam("limit", type_=Integer)
        ranges = union_all(
            pending_range(table.c.seq < bindparam("first")).order_by(table.c.seq).limit(limit),
            pending_range(table.c.seq == any_(bindparam("gaps", type_=ARRAY(BigInteger)))),
            pending_range(table.c.seq > bindparam("last")).order_by(table.c.seq).limit(limit),
        ).subquery("pending")
        self._fetch_rows = select(ranges).order_by(ranges.c.seq).limit(limit)
        self._fetch_sql: tuple[str, list[str]] | None = None
        self._headers: dict[str, list[tuple[str, bytes]]] = {}
        # One array parameter whatever the batch size: one statement, one cached plan.
        published = table.c.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger)))
        # A published row is deleted unless published rows are kept for a while (`retention`): the topics are
        # the history (kept forever), nothing in the services reads a published row, and marking one by an
        # UPDATE was half the relay's cost in PostgreSQL. `published_at` is in the pending index's predicate,
        # so the UPDATE is never HOT: a new ~600-byte row version and an entry in every index per event, 11 µs
        # of PostgreSQL CPU per event against 1 µs for the DELETE (bench/relay.py, relay_pg_cpu_us_per_event;
        # EXPLAIN ANALYZE of 1,000 rows: 25-50 ms against 2-3 ms). Kept rows (retention > 0: the end-to-end
        # and fault runs count the events each service emitted from its outbox) are marked as before and
        # purged after the retention.
        self.keeps_published = retention > timedelta(0)
        self._mark_published: Any = (
            update(table).where(published).values(published_at=bindparam("at"))
            if self.keeps_published
            else delete(table).where(published)
        )

    def stop(self) -> None:
        """Ask the loop to finish its current batch and exit."""
        self._stopping.set()
        self._wake.set()

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

    async def _fetch(self, session: AsyncSession, around: dict[str, Any]) -> list[_Row]:
        # The rows come straight from the driver: building SQLAlchemy result rows cost more CPU per batch than
        # the read itself on the server, and that CPU is the relay's bottleneck (it also drives the producer).
        # The statement is still the one built above, compiled once; the session's connection runs it.
        if self._fetch_sql is None:
            compiled = self._fetch_rows.compile(dialect=session.get_bind().dialect)
            self._fetch_sql = (compiled.string, list(compiled.positiontup or ()))
        sql, names = self._fetch_sql
        params = {"limit": self.batch_size, **around}
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        assert driver is not None
        records = await driver.fetch(sql, *(params[name] for name in names))
        return [
            _Row(seq, topic, key, event_type, envelope.encode())
            for seq, topic, key, event_type, envelope in records
        ]

    async def _read(self, session: AsyncSession, around: dict[str, Any]) -> list[_Row]:
        rows = await self._fetch(session, around)
        if time.monotonic() - self._lag_measured_at >= _LAG_METRICS_EVERY:
            await self._update_lag_metrics(session)
        return rows

    @contextlib.asynccontextmanager
    async def _statements(self) -> AsyncIterator[AsyncSession]:
        """A session held for a whole drain whose statements commit one by one.

        Each of the relay's statements stands alone (a read, one UPDATE), so a transaction around it only cost a
        pool checkout with its ping, a BEGIN and a COMMIT per step; and a transaction held open for the drain
        would keep vacuum from clearing the published rows the next reads walk past.
        """
        async with self.sessionmaker() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        """The drain's reader: a `_statements` session whose planner does not choose bitmap scans (see the read
        statement), set back before the connection returns to the pool."""
        async with self._statements() as session:
            await session.execute(text("SET enable_bitmapscan = off"))
            try:
                yield session
            finally:
                with contextlib.suppress(Exception):  # a broken connection is thrown away by the pool
                    await session.execute(text("RESET enable_bitmapscan"))

    async def _hand_over(self, rows: list[_Row]) -> _Flight:
        """Give a batch to the producer without waiting for the broker.

        Every record is handed over before anything is awaited, so the producer packs them into one request per
        partition (no await in between yields to its sender); its idempotence keeps each partition's records in
        the order handed over, across batches too.
        """
        flight = _Flight(rows)
        try:
            producer = await self._ensure_producer()
            for row in rows:
                # One headers list per event type, shared by its records (the producer only reads it): building
                # it per record was a tenth of the hand-over.
                headers = self._headers.get(row.event_type)
                if headers is None:
                    headers = [("content-type", _CONTENT_TYPE), ("ce_type", row.event_type.encode())]
                    self._headers[row.event_type] = headers
                flight.futures.append(
                    await producer.send(
                        self.topic_for(row.topic), value=row.value, key=row.key.encode(), headers=headers
                    )
                )
        except Exception as exc:  # broker down, timeout, stuck producer: the rest of the batch waits
            flight.error = exc
        return flight

    async def _mark(self, session: AsyncSession, seqs: list[int]) -> int:
        """Mark acknowledged rows published, deleting them unless kept (one statement, committed on its own)."""
        params: dict[str, Any] = {"seqs": seqs}
        if self.keeps_published:
            params["at"] = utcnow()
        await session.execute(self._mark_published, params)
        self.published_total += len(seqs)
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(seqs))
        return len(seqs)

    async def _settle(self, flight: _Flight, marks: _Marks) -> None:
        """Wait for a batch's acknowledgements and start marking the rows acknowledged before the first failure.

        The mark runs while the relay reads and sends the next batch (`marks` keeps its rows out of those reads).
        After a failure the rest of the batch stays unpublished (sent again later: the consumers' inbox drops a
        duplicate), the producer is thrown away, and RelayError is raised.
        """
        acked: list[int] = []
        error = flight.error
        try:
            async with asyncio.timeout(self.send_timeout):
                for row, fut in zip(flight.rows, flight.futures, strict=False):
                    await fut
                    acked.append(row.seq)
        except Exception as exc:
            error = exc
        finally:
            flight.cancel(len(acked))
        if acked:
            crashpoints.reached("relay.after_send")  # test-only: sent, not yet marked
            await marks.start(flight.rows[: len(acked)])
        if error is None and len(acked) < len(flight.rows):
            error = RelayError("not every record of the batch was handed to the producer")
        if error is not None:
            metrics.RELAY_ERRORS.labels(self.service).inc()
            log.warning(
                "relay_send_failed", error=describe_error(error), pending=len(flight.rows) - len(acked)
            )
            await self._reset_producer()  # first: whatever happens to the marks, the next send gets a new one
            await marks.wait()
            session = await marks.session()
            await session.execute(
                update(self.table)
                .where(self.table.c.seq == flight.rows[len(acked)].seq)
                .values(attempts=self.table.c.attempts + 1, last_error=describe_error(error)[:1000])
            )
            raise RelayError(str(error)) from error

    async def publish_batch(self) -> int:
        """One round: read unpublished rows, send them, mark the acknowledged ones. Returns how many."""
        async with contextlib.AsyncExitStack() as sessions:
            reader = await sessions.enter_async_context(self._reading())
            rows = await self._read(reader, _EVERYTHING)
            if not rows:
                return 0
            marks = _Marks(sessions, self._statements, self._mark)
            try:
                await self._settle(await self._hand_over(rows), marks)
                await marks.wait()
            finally:
                await marks.close()
            return marks.marked

    async def publish_pending(self) -> int:
        """Publish until a read comes back short of a full batch. Returns how many were published.

        Three batches move at once: the next is read while this one is handed to the producer, the one before
        waits for its acknowledgements, and the one before that is being marked; so the database and the broker
        work while the relay itself does (each read leaves out every row not yet marked). A row is still marked
        only after its acknowledgement; a row acknowledged but not yet marked when the relay dies is sent again
        by the next leader (the consumers' inbox drops the duplicate).

        A commit signalled while the drain runs (see `WAKE_CHANNEL`) is read at once, around the rows still in
        flight or being marked, instead of after the last acknowledgement and mark of the drain: under a steady
        stream of writes an event then waits for one read, not for the tail of the previous drain (the flagship
        hop commit -> broker). The drain still ends after `_DRAIN_SECONDS`, for the loop's housekeeping.
        """
        flight: _Flight | None = None
        ahead: asyncio.Task[list[_Row]] | None = None
        until = time.monotonic() + _DRAIN_SECONDS
        async with contextlib.AsyncExitStack() as sessions:
            reader = await sessions.enter_async_context(self._reading())
            marks = _Marks(sessions, self._statements, self._mark)
            try:
                rows = await self._read(reader, _EVERYTHING)
                while True:
                    while rows:
                        full = len(rows) == self.batch_size
                        if full:
                            unmarked = [*marks.rows, *(flight.rows if flight else []), *rows]
                            around = _around(sorted(unmarked, key=_by_seq))
                            if around is not None:
                                ahead = asyncio.create_task(self._read(reader, around))
                                # Handing over never yields: let the read reach the database before it starts.
                                await asyncio.sleep(0)
                        following = await self._hand_over(rows)
                        if flight is not None:
                            previous, flight = flight, following
                            await self._settle(previous, marks)
                        else:
                            flight = following
                        if ahead is not None:
                            reading, ahead = ahead, None
                            rows = await reading
                        elif full:  # too scattered to read around: let everything land first
                            last, flight = flight, None
                            await self._settle(last, marks)
                            await marks.wait()
                            rows = await self._read(reader, _EVERYTHING)
                        elif self._woken(until):
                            rows = await self._read_more(reader, marks, flight)
                        else:
                            rows = []
                    if flight is not None:
                        last, flight = flight, None
                        await self._settle(last, marks)
                    # Everything read is acknowledged: the drain ends once it is marked, or reads again first
                    # if a commit is signalled meanwhile.
                    if not self._woken(until) and (await marks.wait_or(self._wake) or not self._woken(until)):
                        break
                    rows = await self._read_more(reader, marks, None)
                await marks.wait()
            finally:
                if ahead is not None:  # the reader's session closes next: its statement must be over
                    ahead.cancel()
                    await asyncio.wait([ahead])
                if flight is not None:  # a batch before it failed: it is sent again with the rest
                    flight.cancel(0)
                await marks.close()
        return marks.marked

    def _woken(self, until: float) -> bool:
        """Whether a commit was signalled since the last read (consumed here), while the drain may go on."""
        if not self._wake.is_set() or self._stopping.is_set() or time.monotonic() >= until:
            return False
        self._wake.clear()  # before the read: a commit after it signals again
        return True

    async def _read_more(self, reader: AsyncSession, marks: _Marks, flight: _Flight | None) -> list[_Row]:
        """The next rows after a signal, around the rows still in flight or being marked."""
        unmarked = sorted([*marks.rows, *(flight.rows if flight else [])], key=_by_seq)
        around = _around(unmarked) if unmarked else _EVERYTHING
        if around is None:  # too scattered to read around: the read waits for the marks
            if flight is not None:
                self._wake.set()  # the drain settles the flight first, then reads again
                return []
            await marks.wait()
            around = _EVERYTHING
        return await self._read(reader, around)

    async def _update_lag_metrics(self, session: AsyncSession) -> None:
        # Counting the backlog reads every pending row: done every few seconds, not every round.
        self._lag_measured_at = time.monotonic()
        t = self.table
        row = (
            await session.execute(
                select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
            )
        ).one()
        metrics.OUTBOX_PENDING.labels(self.service).set(row[0])
        metrics.OUTBOX_LAG.labels(self.service).set((utcnow() - row[1]).total_seconds() if row[1] else 0)

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention period (with none: rows a relay that kept
        them marked published before)."""
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
                    # The lock is the session's, not a transaction's: without AUTOCOMMIT the SELECT began a
                    # transaction that stayed open while the relay led, and its snapshot held back the
                    # database's xmin horizon. Nothing deleted since (published outbox rows included) could be
                    # vacuumed or marked dead in an index: at rehearsal volume each read of the outbox walked
                    # hundreds of thousands of dead index entries (0.6 s a read).
                    await lock_session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
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
                log.warning("relay_loop_error", error=describe_error(exc))
                await self._sleep(backoff)
        await self._reset_producer()

    async def _loop(self) -> None:
        listener = asyncio.create_task(self._listen()) if self._listen_dsn else None
        try:
            backoff = 0.5
            rounds = 0
            while not self._stopping.is_set():
                # Cleared before the read: a commit signalled during this round starts the next one at once.
                self._wake.clear()
                try:
                    await self.publish_pending()
                    backoff = 0.5
                except RelayError:
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                rounds += 1
                if rounds % 500 == 0:
                    await self.purge_published()
                # The last read came back short: the outbox is drained until the next commit (or poll).
                await self._wait_for_work(self.poll_interval)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _wait_for_work(self, seconds: float) -> None:
        """Until a commit signals new rows, a stop is asked, or the poll interval is up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _listen(self) -> None:
        """Keep a LISTEN connection while leading; after losing it (database restart, killed) connect again."""
        backoff = 0.5
        while not self._stopping.is_set():
            if await self._listen_until_lost():
                backoff = 0.5
            if not self._stopping.is_set():
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _listen_until_lost(self) -> bool:
        """One LISTEN connection, held until it is lost or the relay stops; False when it could not connect."""
        assert self._listen_dsn is not None
        lost = asyncio.Event()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(self._listen_dsn, timeout=10)
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(WAKE_CHANNEL, self._notified)
            self.listen_backend_pid = conn.get_server_pid()
            self.listening.set()
            # Rows committed while nobody listened were signalled to no one: look now.
            self._wake.set()
            while not lost.is_set() and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_LISTEN_CHECK_EVERY):
                        await lost.wait()
                if not lost.is_set():
                    # A half-open TCP connection reports nothing; a query finds out.
                    await conn.fetchval("SELECT 1", timeout=5)
        except Exception as exc:
            log.warning("relay_listen_lost", error=describe_error(exc))
        finally:
            self.listening.clear()
            self.listen_backend_pid = None
            if conn is not None:
                conn.terminate()
        return conn is not None

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == self.table.name:
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


_CONTENT_TYPE = CONTENT_TYPE.encode()
_EVERYTHING: dict[str, Any] = {"first": 0, "last": 0, "gaps": []}  # seqs start at 1


def _by_seq(row: _Row) -> int:
    return row.seq


def _around(in_flight: list[_Row]) -> dict[str, Any] | None:
    """Bounds of a read that leaves out the rows not yet marked (in seq order): below, above, or in a gap.

    A gap is a seq between them that their read did not return: rolled back, or committed only after that read.
    Such a late row must be read now, not after the later rows of its key. None when the gaps are too many to
    list (a big rolled-back transaction burnt its seqs there).
    """
    first, last = in_flight[0].seq, in_flight[-1].seq
    if last - first >= 4 * len(in_flight):
        return None
    taken = {r.seq for r in in_flight}
    return {"first": first, "last": last, "gaps": [s for s in range(first + 1, last) if s not in taken]}


_LAG_METRICS_EVERY = 5.0
# How long a drain goes on reading what commits signal while it runs (see `publish_pending`).
_DRAIN_SECONDS = 5.0
_LISTEN_CHECK_EVERY = 30.0


def make_relay_producer(bootstrap_servers: str, *, client_id: str, send_timeout: float) -> AIOKafkaProducer:
    """The relay's idempotent producer, sized to carry a whole batch in one request per partition.

    No linger: the relay hands over a whole batch before it awaits anything, so waiting for more records would
    only add latency to a lone event.
    """
    return make_producer(
        bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=int(send_timeout * 1000),
        linger_ms=0,
        max_batch_size=512 * 1024,
    )


def _listen_dsn(sessionmaker: async_sessionmaker[AsyncSession]) -> str | None:
    """The relay's database as a plain asyncpg DSN, for its LISTEN connection (outside the pool)."""
    bind = sessionmaker.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        return None
    return bind.url.set(drivername="postgresql").render_as_string(hide_password=False)


class RelayError(Exception):
    """A batch could not be published completely; the rest waits for the next round."""
