"""Outbox and relay against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.outbox import Relay, RelayError, publish
from shared.testing.plugin import consume, unique, wait_for
from tests.shared.conftest import ProbeHappened, outbox, probe

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def _count(sm: async_sessionmaker[AsyncSession], label: str) -> tuple[int, int]:
    async with sm() as s:
        states = (
            await s.execute(select(func.count()).select_from(probe).where(probe.c.label == label))
        ).scalar_one()
        events = (
            await s.execute(select(func.count()).select_from(outbox).where(outbox.c.partition_key == label))
        ).scalar_one()
    return states, events


async def test_state_and_event_commit_together(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    label = unique("commit")
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(probe).values(id=abs(hash(label)) % 2**31, label=label))
        await publish(session, outbox, ProbeHappened(key=label, n=1), key=label)
    assert await _count(sessionmaker, label) == (1, 1)


async def test_state_and_event_roll_back_together(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    label = unique("rollback")
    with pytest.raises(RuntimeError):
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(probe).values(id=abs(hash(label)) % 2**31, label=label))
            await publish(session, outbox, ProbeHappened(key=label, n=1), key=label)
            raise RuntimeError("use case failed after writing")
    assert await _count(sessionmaker, label) == (0, 0)


async def _drain(relay: Relay, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await relay.publish_batch():
            pass


async def test_relay_delivers_every_row_in_key_order(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("outbox", partitions=3)  # type: ignore[operator]
    keys = [unique("k") for _ in range(10)]
    written: list[str] = []
    for n in range(30):
        async with sessionmaker() as session, session.begin():
            for key in keys:
                env = await publish(session, outbox, ProbeHappened(key=key, n=n), key=key)
                written.append(env.id)
    relay = Relay(
        service="probe",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=64,
    )
    try:
        await _drain(relay)
    finally:
        await relay._reset_producer()
    wanted = set(written)

    def mine(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if orjson.loads(r.value)["id"] in wanted]

    records = mine(await consume(topic, until=lambda r: len(mine(r)) >= len(written), timeout=60))
    ids = [orjson.loads(r.value)["id"] for r in records]
    assert sorted(ids) == sorted(written)
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        body = orjson.loads(r.value)
        assert r.key.decode() == body["partitionkey"]
        per_key[body["partitionkey"]].append(body["data"]["n"])
    for key in keys:
        assert per_key[key] == list(range(30)), f"order broken for {key}"
    async with sessionmaker() as s:
        pending = (
            await s.execute(
                select(func.count())
                .select_from(outbox)
                .where(
                    outbox.c.event_id.in_([uuid.UUID(i) for i in written]), outbox.c.published_at.is_(None)
                )
            )
        ).scalar_one()
    assert pending == 0


def _ids(records: list) -> set[str]:  # type: ignore[type-arg]
    return {orjson.loads(r.value)["id"] for r in records}


async def _write(sessionmaker: async_sessionmaker[AsyncSession], key: str, n: int) -> str:
    async with sessionmaker() as session, session.begin():
        return (await publish(session, outbox, ProbeHappened(key=key, n=n), key=key)).id


@contextlib.asynccontextmanager
async def _running(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    """The relay's own loop (leader election, LISTEN, polling) in the background, stopped at the end."""
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(30):
            await relay.listening.wait()
        yield task
    finally:
        relay.stop()
        async with asyncio.timeout(30):
            await task
        await relay._reset_producer()


def _slow_polling_relay(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic: str
) -> Relay:
    # A poll interval far beyond the deadlines below: only the commit's notification can explain a delivery.
    return Relay(
        service=unique("probe-listen"),
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        poll_interval=POLL_NEVER,
    )


POLL_NEVER = 300.0
SOON = 10.0


async def test_a_commit_wakes_the_relay_without_waiting_for_the_poll(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("wake", partitions=3)  # type: ignore[operator]
    relay = _slow_polling_relay(sessionmaker, kafka_bootstrap, topic)
    async with _running(relay):
        await asyncio.sleep(1)  # the start-up round is over: the relay now waits for a notification
        first = await _write(sessionmaker, unique("k"), 1)
        await consume(topic, until=lambda r: first in _ids(r), timeout=SOON)
        second = await _write(sessionmaker, unique("k"), 2)
        await consume(topic, until=lambda r: second in _ids(r), timeout=SOON)


async def test_a_leading_relay_holds_its_lock_outside_any_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    # A transaction left open for as long as the relay leads pins the database's xmin horizon: nothing deleted
    # meanwhile (the published outbox rows first) can be vacuumed, and every outbox read walks the dead rows.
    topic = await topic_factory("horizon", partitions=1)  # type: ignore[operator]
    relay = _slow_polling_relay(sessionmaker, kafka_bootstrap, topic)
    lock_holders = text(
        """
        SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
          AND a.state = 'idle in transaction'
        """
    )
    async with _running(relay):
        first = await _write(sessionmaker, unique("k"), 1)
        await consume(topic, until=lambda r: first in _ids(r), timeout=SOON)
        async with sessionmaker() as s:
            assert (await s.execute(lock_holders)).scalar_one() == 0


async def test_a_commit_during_a_drain_is_sent_while_the_drain_still_marks_the_rows_before_it(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("keepsdraining", partitions=3)  # type: ignore[operator]
    first = await _write(sessionmaker, unique("k"), 1)
    # Another transaction holds the first row: the relay can send it, but its mark waits, and so its drain.
    blocker = sessionmaker()
    await blocker.begin()
    try:
        await blocker.execute(
            select(outbox.c.seq).where(outbox.c.event_id == uuid.UUID(first)).with_for_update()
        )
        relay = _slow_polling_relay(sessionmaker, kafka_bootstrap, topic)
        async with _running(relay):
            await consume(topic, until=lambda r: first in _ids(r), timeout=SOON)
            second = await _write(sessionmaker, unique("k"), 2)
            # Read and sent in the same drain, not after the first row's mark (nor at the next poll).
            await consume(topic, until=lambda r: second in _ids(r), timeout=SOON)
            assert await _pending(sessionmaker, [first]) == 1
            await blocker.rollback()
            await wait_for(lambda: _all_marked(sessionmaker, [first, second]), timeout=SOON)
    finally:
        await blocker.close()


async def _all_marked(sessionmaker: async_sessionmaker[AsyncSession], ids: list[str]) -> bool:
    return await _pending(sessionmaker, ids) == 0


async def test_a_rolled_back_transaction_publishes_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("rolledback", partitions=1)  # type: ignore[operator]
    relay = _slow_polling_relay(sessionmaker, kafka_bootstrap, topic)
    async with _running(relay):
        key = unique("k")
        with pytest.raises(RuntimeError):
            async with sessionmaker() as session, session.begin():
                rolled_back = (await publish(session, outbox, ProbeHappened(key=key, n=0), key=key)).id
                raise RuntimeError("use case failed after writing")
        marker = await _write(sessionmaker, key, 1)
        records = await consume(topic, until=lambda r: marker in _ids(r), timeout=SOON)
    assert rolled_back not in _ids(records)
    async with sessionmaker() as s:
        found = await s.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.event_id == uuid.UUID(rolled_back))
        )
    assert found == 0


async def test_the_relay_listens_again_after_its_connection_is_killed(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("relisten", partitions=3)  # type: ignore[operator]
    relay = _slow_polling_relay(sessionmaker, kafka_bootstrap, topic)
    async with _running(relay):
        killed = relay.listen_backend_pid
        async with sessionmaker() as s:
            assert await s.scalar(select(func.pg_terminate_backend(killed)))
        # Committed while nobody listens: the reconnection itself must look at the outbox.
        while_down = await _write(sessionmaker, unique("k"), 1)

        async def listening_again() -> bool:
            return relay.listen_backend_pid not in (None, killed)

        await wait_for(listening_again, timeout=SOON, interval=0.05, what="a new LISTEN connection")
        after = await _write(sessionmaker, unique("k"), 2)
        await consume(topic, until=lambda r: {while_down, after} <= _ids(r), timeout=SOON)


async def test_pipelined_batches_keep_key_order_and_pick_up_late_commits(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("pipeline", partitions=3)  # type: ignore[operator]
    relay = Relay(
        service="probe-pipeline",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=7,  # many small batches, each read while the one before is in flight
    )
    keys = [unique("k") for _ in range(8)]
    late_key = unique("late")
    written: list[str] = []
    try:
        async with sessionmaker() as late, late.begin():
            # This row takes its seq now but commits only after later rows were published.
            written.append((await publish(late, outbox, ProbeHappened(key=late_key, n=0), key=late_key)).id)
            for n in range(25):
                async with sessionmaker() as session, session.begin():
                    for key in keys:
                        written.append(
                            (await publish(session, outbox, ProbeHappened(key=key, n=n), key=key)).id
                        )
            async with asyncio.timeout(60):
                await relay.publish_pending()
        written.append(await _write(sessionmaker, late_key, 1))
        async with asyncio.timeout(60):
            await relay.publish_pending()
    finally:
        await relay._reset_producer()
    wanted = set(written)

    def mine(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if orjson.loads(r.value)["id"] in wanted]

    records = mine(await consume(topic, until=lambda r: len(mine(r)) >= len(written), timeout=60))
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(written), "each exactly once"
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        body = orjson.loads(r.value)
        per_key[body["partitionkey"]].append(body["data"]["n"])
    for key in keys:
        assert per_key[key] == list(range(25)), f"order broken for {key}"
    assert per_key[late_key] == [0, 1]


class _DiesBeforeMarking(Relay):
    """A relay whose process dies after the broker acknowledged a batch and before its mark committed."""

    async def _mark(self, session: AsyncSession, seqs: list[int]) -> int:
        raise RuntimeError("relay process killed")


class _SlowToMark(Relay):
    """A relay whose marks land long after the acknowledgements, so reads and sends overlap them."""

    async def _mark(self, session: AsyncSession, seqs: list[int]) -> int:
        await asyncio.sleep(0.2)
        return await super()._mark(session, seqs)


async def _pending(sessionmaker: async_sessionmaker[AsyncSession], ids: list[str]) -> int:
    async with sessionmaker() as s:
        return int(
            (
                await s.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(
                        outbox.c.event_id.in_([uuid.UUID(i) for i in ids]), outbox.c.published_at.is_(None)
                    )
                )
            ).scalar_one()
        )


async def test_rows_acknowledged_but_not_marked_when_the_relay_dies_are_sent_again(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("diesbeforemark", partitions=3)  # type: ignore[operator]
    keys = [unique("k") for _ in range(4)]
    written = [await _write(sessionmaker, key, n) for n in range(5) for key in keys]
    dying = _DiesBeforeMarking(
        service="probe-dies",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=6,
    )
    try:
        with pytest.raises(RuntimeError, match="killed"):
            async with asyncio.timeout(60):
                await dying.publish_pending()
    finally:
        await dying._reset_producer()
    # Acknowledged by the broker, yet nothing marked: the outbox still owes every row.
    assert await _pending(sessionmaker, written) == len(written)
    assert dying.published_total == 0

    next_leader = Relay(
        service="probe-dies",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=6,
    )
    try:
        async with asyncio.timeout(60):
            while await next_leader.publish_pending():
                pass
    finally:
        await next_leader._reset_producer()
    assert await _pending(sessionmaker, written) == 0
    wanted = set(written)

    def mine(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if orjson.loads(r.value)["id"] in wanted]

    # The next leader sent every row again, in order per key (duplicates are the consumers' inbox's to drop).
    records = mine(await consume(topic, until=lambda r: _ids(mine(r)) == wanted, timeout=60))
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        body = orjson.loads(r.value)
        per_key[body["partitionkey"]].append(body["data"]["n"])
    for key in keys:
        ns = per_key[key]
        assert sorted(set(ns)) == list(range(5)), f"lost an event of {key}"
        assert ns[len(ns) - 5 :] == list(range(5)), f"the re-send broke the order of {key}"


async def test_reads_while_marks_are_in_progress_send_each_row_once_in_key_order(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: object
) -> None:
    topic = await topic_factory("slowmark", partitions=3)  # type: ignore[operator]
    keys = [unique("k") for _ in range(6)]
    written = [await _write(sessionmaker, key, n) for n in range(12) for key in keys]
    relay = _SlowToMark(
        service="probe-slowmark",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        topic_for=lambda _: topic,
        batch_size=5,
    )
    try:
        async with asyncio.timeout(60):
            published = 0
            while n := await relay.publish_pending():
                published += n
    finally:
        await relay._reset_producer()
    assert published >= len(written)
    assert await _pending(sessionmaker, written) == 0
    wanted = set(written)

    def mine(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if orjson.loads(r.value)["id"] in wanted]

    records = mine(await consume(topic, until=lambda r: len(mine(r)) >= len(written), timeout=60))
    await asyncio.sleep(1)  # a duplicate would arrive right behind
    records = mine(await consume(topic, until=lambda r: len(mine(r)) >= len(written), timeout=60))
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(written), "each exactly once"
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        body = orjson.loads(r.value)
        per_key[body["partitionkey"]].append(body["data"]["n"])
    for key in keys:
        assert per_key[key] == list(range(12)), f"order broken for {key}"


async def test_a_batch_the_broker_never_takes_stays_pending_and_counts_the_attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = unique("k")
    written = [await _write(sessionmaker, key, n) for n in range(3)]
    relay = Relay(
        service="probe-nobroker",
        sessionmaker=sessionmaker,
        table=outbox,
        bootstrap_servers="127.0.0.1:1",  # nothing listens there: the producer never starts
        send_timeout=2.0,
        wake_on_commit=False,
    )
    with pytest.raises(RelayError):
        async with asyncio.timeout(60):
            await relay.publish_pending()
    assert relay._producer is None, "the failed producer is thrown away"
    assert await _pending(sessionmaker, written) == len(written)
    async with sessionmaker() as s:
        attempts = (
            await s.execute(
                select(func.max(outbox.c.attempts)).where(
                    outbox.c.event_id.in_([uuid.UUID(i) for i in written])
                )
            )
        ).scalar_one()
    assert attempts >= 1
    async with sessionmaker() as s, s.begin():  # leave nothing pending for the tests after this one
        await s.execute(delete(outbox).where(outbox.c.event_id.in_([uuid.UUID(i) for i in written])))
