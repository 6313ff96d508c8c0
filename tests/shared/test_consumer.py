"""The idempotent consumer runner against the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import registry

from shared.consumer import ConsumerRunner, Delivery
from shared.events import CloudEvent, build_envelope
from shared.kafka import ensure_topics, security_options
from shared.testing.plugin import consume, unique
from tests.shared.conftest import PoisonPill, ProbeHappened, effect, inbox

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def record_effect(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
    await session.execute(insert(effect).values(event_id=uuid.UUID(envelope.id), consumer="probe"))


async def always_fails(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
    raise ValueError("this handler cannot apply the event")


async def _produce(bootstrap: str, topic: str, envelopes: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **security_options())
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                topic, orjson.dumps(env.model_dump(mode="json")), key=env.partitionkey.encode()
            )
    finally:
        await producer.stop()


async def _effects(sm: async_sessionmaker[AsyncSession], event_id: str) -> int:
    async with sm() as s:
        return int(
            (
                await s.execute(
                    select(func.count()).select_from(effect).where(effect.c.event_id == uuid.UUID(event_id))
                )
            ).scalar_one()
        )


def _runner(
    sm: async_sessionmaker[AsyncSession], bootstrap: str, topic: str, group: str, **kw: Any
) -> ConsumerRunner:
    return ConsumerRunner(
        name=group,
        topics=[topic],
        sessionmaker=sm,
        inbox=inbox,
        bootstrap_servers=bootstrap,
        handlers={ProbeHappened.event_type: record_effect, PoisonPill.event_type: always_fails},
        backoff_seconds=0.01,
        **kw,
    )


async def _run_until(runner: ConsumerRunner, done: Any, timeout: float = 45) -> None:
    async with asyncio.timeout(timeout):
        while not done():
            await runner.poll_once(timeout_ms=300)


async def test_same_envelope_twice_has_one_effect(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("dup")
    env = build_envelope(ProbeHappened(key="a", n=1), key="a")
    await _produce(kafka_bootstrap, topic, [env, env])
    runner = _runner(sessionmaker, kafka_bootstrap, topic, unique("g"))
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied + runner.outcome.duplicates >= 2)
    finally:
        await runner.close()
    assert await _effects(sessionmaker, env.id) == 1
    assert (runner.outcome.applied, runner.outcome.duplicates) == (1, 1)


async def test_failing_handler_goes_to_dead_letter_and_later_events_flow(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("poison", partitions=1)
    group = unique("g")
    poison = build_envelope(PoisonPill(n=1), key="a")
    later = build_envelope(ProbeHappened(key="a", n=2), key="a")
    unknown = build_envelope(ProbeHappened(key="a", n=3), key="a").model_copy(
        update={"type": "probe.other.v9"}
    )
    await _produce(kafka_bootstrap, topic, [poison, unknown, later])
    runner = _runner(sessionmaker, kafka_bootstrap, topic, group, max_attempts=3)
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied >= 1)
    finally:
        await runner.close()
    assert await _effects(sessionmaker, later.id) == 1
    assert runner.outcome.dead_lettered == 1
    assert runner.outcome.skipped_unknown == 1
    dead = await consume(f"{group}.dlq", until=lambda r: len(r) >= 1, timeout=30)
    assert orjson.loads(dead[0].value)["id"] == poison.id
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlq.error.type"] == "ValueError"
    assert "cannot apply" in headers["dlq.error.message"]
    assert headers["dlq.attempts"] == "3"
    assert headers["dlq.original.topic"] == topic


async def test_malformed_record_goes_to_dead_letter(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("garbage", partitions=1)
    group = unique("g")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, **security_options())
    await producer.start()
    await producer.send_and_wait(topic, b"{not json", key=b"x")
    await producer.stop()
    runner = _runner(sessionmaker, kafka_bootstrap, topic, group)
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.dead_lettered >= 1)
    finally:
        await runner.close()
    dead = await consume(f"{group}.dlq", until=lambda r: len(r) >= 1, timeout=30)
    assert dead[0].value == b"{not json"


class SimulatedCrash(Exception):
    pass


async def test_crash_after_db_commit_before_offset_commit_has_no_second_effect(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("crash", partitions=1)
    group = unique("g")
    env = build_envelope(ProbeHappened(key="c", n=1), key="c")
    await _produce(kafka_bootstrap, topic, [env])

    async def crash() -> None:
        raise SimulatedCrash

    first = _runner(sessionmaker, kafka_bootstrap, topic, group, before_offset_commit=crash)
    await first.start()
    try:
        with pytest.raises(SimulatedCrash):
            await _run_until(first, lambda: False)
    finally:
        await first.abort()  # like kill -9: no offset commit
    assert await _effects(sessionmaker, env.id) == 1

    second = _runner(sessionmaker, kafka_bootstrap, topic, group)
    await second.start()
    try:
        await _run_until(second, lambda: second.outcome.duplicates >= 1)
    finally:
        await second.close()
    assert second.outcome.applied == 0, "the redelivered event must not apply again"
    assert await _effects(sessionmaker, env.id) == 1


async def test_dlq_topic_creation_is_idempotent(kafka_bootstrap: str) -> None:
    name = unique("idem.")
    await ensure_topics(kafka_bootstrap, [name], partitions=1)
    await ensure_topics(kafka_bootstrap, [name], partitions=1)


# --- one transaction per poll, and the batch hook ---------------------------------------------------------


def _batch_runner(
    sm: async_sessionmaker[AsyncSession], bootstrap: str, topic: str, group: str, **kw: Any
) -> ConsumerRunner:
    return _runner(sm, bootstrap, topic, group, **kw)


async def test_batch_same_envelope_twice_has_one_effect(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("bdup", partitions=1)
    env = build_envelope(ProbeHappened(key="a", n=1), key="a")
    other = build_envelope(ProbeHappened(key="a", n=2), key="a")
    # Both copies land in one poll, so the second meets the first's inbox row inside the same transaction.
    await _produce(kafka_bootstrap, topic, [env, other, env])
    runner = _batch_runner(sessionmaker, kafka_bootstrap, topic, unique("g"))
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied + runner.outcome.duplicates >= 3)
    finally:
        await runner.close()
    assert await _effects(sessionmaker, env.id) == 1
    assert await _effects(sessionmaker, other.id) == 1
    assert (runner.outcome.applied, runner.outcome.duplicates) == (2, 1)


async def test_batch_poison_in_the_middle_is_dead_lettered_and_the_others_apply_once(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("bpoison", partitions=1)
    group = unique("g")
    before = [build_envelope(ProbeHappened(key="a", n=i), key="a") for i in range(3)]
    poison = build_envelope(PoisonPill(n=1), key="a")
    after = [build_envelope(ProbeHappened(key="a", n=10 + i), key="a") for i in range(3)]
    await _produce(kafka_bootstrap, topic, [*before, poison, *after])
    runner = _batch_runner(sessionmaker, kafka_bootstrap, topic, group, max_attempts=2)
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied + runner.outcome.dead_lettered >= 7)
    finally:
        await runner.close()
    for env in [*before, *after]:
        assert await _effects(sessionmaker, env.id) == 1
    assert (runner.outcome.applied, runner.outcome.dead_lettered) == (6, 1)
    dead = await consume(f"{group}.dlq", until=lambda r: len(r) >= 1, timeout=30)
    assert [orjson.loads(r.value)["id"] for r in dead] == [poison.id]
    assert {k: v.decode() for k, v in dead[0].headers}["dlq.attempts"] == "2"

    # Everything, the dead-lettered record included, was committed: a new runner of the group sees nothing.
    again = _batch_runner(sessionmaker, kafka_bootstrap, topic, group)
    await again.start()
    try:
        for _ in range(3):
            await again.poll_once(timeout_ms=300)
    finally:
        await again.close()
    assert (again.outcome.applied, again.outcome.duplicates, again.outcome.dead_lettered) == (0, 0, 0)


async def test_batch_transient_failure_leaves_no_partial_effect_and_retries_the_record(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("bflaky", partitions=1)
    envs = [build_envelope(ProbeHappened(key="a", n=i), key="a") for i in range(5)]
    flaky, failed = envs[2].id, []

    async def fails_once(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
        # The effect is written before the failure: it must be rolled back, not kept beside the retry's.
        await record_effect(session, envelope, data)
        if envelope.id == flaky and not failed:
            failed.append(envelope.id)
            raise ConnectionError("transient")

    await _produce(kafka_bootstrap, topic, envs)
    runner = _batch_runner(sessionmaker, kafka_bootstrap, topic, unique("g"))
    runner.handlers[ProbeHappened.event_type] = fails_once
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied >= 5)
    finally:
        await runner.close()
    assert failed == [flaky]
    for env in envs:
        assert await _effects(sessionmaker, env.id) == 1
    assert runner.outcome.dead_lettered == 0


@pytest.mark.parametrize("hooked", [False, True], ids=["handlers", "batch_handler"])
async def test_batch_crash_after_db_commit_before_offset_commit_has_no_second_effect(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any, hooked: bool
) -> None:
    topic = await topic_factory("bcrash", partitions=1)
    group = unique("g")
    envs = [build_envelope(ProbeHappened(key="c", n=i), key="c") for i in range(4)]
    await _produce(kafka_bootstrap, topic, envs)

    async def crash() -> None:
        raise SimulatedCrash

    def _batch_runner(*args: Any, **kw: Any) -> ConsumerRunner:
        return _runner(*args, batch_handler=record_effects if hooked else None, **kw)

    first = _batch_runner(sessionmaker, kafka_bootstrap, topic, group, before_offset_commit=crash)
    await first.start()
    try:
        with pytest.raises(SimulatedCrash):
            await _run_until(first, lambda: False)
    finally:
        await first.abort()  # like kill -9: no offset commit
    applied_first = first.outcome.applied
    assert applied_first >= 1
    for env in envs[:applied_first]:
        assert await _effects(sessionmaker, env.id) == 1

    second = _batch_runner(sessionmaker, kafka_bootstrap, topic, group)
    await second.start()
    try:
        await _run_until(second, lambda: second.outcome.applied + second.outcome.duplicates >= 4)
    finally:
        await second.close()
    assert second.outcome.duplicates == applied_first, "the redelivered events must not apply again"
    for env in envs:
        assert await _effects(sessionmaker, env.id) == 1


async def record_effects(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
    """The batch form of `record_effect`: one statement for the whole poll."""
    if not deliveries:
        return
    await session.execute(
        insert(effect),
        [{"event_id": uuid.UUID(d.envelope.id), "consumer": "probe"} for d in deliveries],
    )


async def test_batch_handler_gets_the_new_events_of_a_poll_once_in_order(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("bhook", partitions=1)
    group = unique("g")
    envs = [build_envelope(ProbeHappened(key="k", n=i), key="k") for i in range(6)]
    unknown = build_envelope(ProbeHappened(key="k", n=99), key="k").model_copy(
        update={"type": "probe.other.v9"}
    )
    # A copy within the poll, an unknown type, and (below) a copy in a later poll.
    await _produce(kafka_bootstrap, topic, [*envs[:3], envs[1], unknown, *envs[3:]])
    calls: list[list[Delivery]] = []

    async def batch(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        calls.append(list(deliveries))
        await record_effects(session, deliveries)

    runner = _runner(sessionmaker, kafka_bootstrap, topic, group, batch_handler=batch)
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied + runner.outcome.duplicates >= 7)
        await _produce(kafka_bootstrap, topic, [envs[0]])
        await _run_until(runner, lambda: runner.outcome.duplicates >= 2)
    finally:
        await runner.close()
    seen = [d for call in calls for d in call]
    assert [d.envelope.id for d in seen] == [e.id for e in envs], "each new event once, in offset order"
    assert [d.offset for d in seen] == sorted(d.offset for d in seen)
    assert all(isinstance(d.data, ProbeHappened) and d.topic == topic and d.partition == 0 for d in seen)
    for env in envs:
        assert await _effects(sessionmaker, env.id) == 1
    assert (runner.outcome.applied, runner.outcome.duplicates, runner.outcome.skipped_unknown) == (6, 2, 1)


async def test_batch_handler_failing_falls_back_to_the_handlers_one_by_one(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("bhookfail", partitions=1)
    group = unique("g")
    before = [build_envelope(ProbeHappened(key="a", n=i), key="a") for i in range(3)]
    poison = build_envelope(PoisonPill(n=1), key="a")
    after = [build_envelope(ProbeHappened(key="a", n=10 + i), key="a") for i in range(3)]
    await _produce(kafka_bootstrap, topic, [*before, poison, *after])

    calls: list[int] = []

    async def batch(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        # Writes first, then fails, every time: the effects can only come from the handlers one by one, and
        # nothing of the batch's may stay beside them.
        calls.append(len(deliveries))
        await record_effects(session, [d for d in deliveries if isinstance(d.data, ProbeHappened)])
        raise ValueError("the batch cannot apply")

    runner = _runner(sessionmaker, kafka_bootstrap, topic, group, batch_handler=batch, max_attempts=2)
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied + runner.outcome.dead_lettered >= 7)
    finally:
        await runner.close()
    assert calls, "the batch handler was tried first"
    for env in [*before, *after]:
        assert await _effects(sessionmaker, env.id) == 1
    assert (runner.outcome.applied, runner.outcome.dead_lettered) == (6, 1)
    dead = await consume(f"{group}.dlq", until=lambda r: len(r) >= 1, timeout=30)
    assert [orjson.loads(r.value)["id"] for r in dead] == [poison.id]

    again = _runner(sessionmaker, kafka_bootstrap, topic, group, batch_handler=batch)
    await again.start()
    try:
        for _ in range(3):
            await again.poll_once(timeout_ms=300)
    finally:
        await again.close()
    assert (again.outcome.applied, again.outcome.duplicates, again.outcome.dead_lettered) == (0, 0, 0)


async def test_per_key_order_holds_across_partitions_and_polls(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("border", partitions=3)
    keys = [f"key-{i}" for i in range(6)]
    envs = [build_envelope(ProbeHappened(key=k, n=n), key=k) for n in range(20) for k in keys]
    await _produce(kafka_bootstrap, topic, envs)
    order: dict[str, list[int]] = {k: [] for k in keys}

    async def batch(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            order[d.data.key].append(d.data.n)

    runner = _runner(sessionmaker, kafka_bootstrap, topic, unique("g"), batch_handler=batch, max_records=17)
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied >= len(envs))
    finally:
        await runner.close()
    assert order == {k: list(range(20)) for k in keys}


class _Effect:
    """The effect table mapped for the ORM, as services' handlers use it (added objects, loaded rows)."""

    event_id: uuid.UUID
    consumer: str


registry().map_imperatively(_Effect, effect)


async def test_each_handler_sees_what_the_earlier_ones_of_the_poll_did(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("bsee", partitions=1)
    label = unique("orm.")
    envs = [build_envelope(ProbeHappened(key="s", n=i), key="s") for i in range(5)]
    await _produce(kafka_bootstrap, topic, envs)
    counted: list[int] = []

    async def count_then_add(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
        # Like the services' handlers: an ORM query, then an object added and left to the flush.
        counted.append(
            int((await session.execute(select(func.count()).where(effect.c.consumer == label))).scalar_one())
        )
        session.add(_Effect(event_id=uuid.UUID(envelope.id), consumer=label))

    runner = _runner(sessionmaker, kafka_bootstrap, topic, unique("g"))
    runner.handlers[ProbeHappened.event_type] = count_then_add
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied >= 5)
    finally:
        await runner.close()
    assert counted == [0, 1, 2, 3, 4]


async def test_offsets_of_partitions_taken_away_during_a_poll_are_not_committed(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    """A rebalance during a poll leaves offsets of partitions the runner no longer owns; committing them would
    raise IllegalStateError and stop the consumer (the new owner replays them into the inbox instead)."""
    from aiokafka import TopicPartition

    topic = await topic_factory("revoked")
    env = build_envelope(ProbeHappened(key="a", n=1), key="a")
    await _produce(kafka_bootstrap, topic, [env])
    runner = _runner(sessionmaker, kafka_bootstrap, topic, unique("g"))
    await runner.start()
    try:
        await _run_until(runner, lambda: runner.outcome.applied >= 1)
        gone = TopicPartition(f"{topic}.elsewhere", 0)
        runner._processed[gone] = 7  # as left by a poll that straddled a rebalance
        await runner.commit_processed()
        runner.forget([gone])
        assert gone not in runner._processed
    finally:
        await runner.close()
    assert await _effects(sessionmaker, env.id) == 1


async def test_a_poll_slower_than_the_poll_interval_keeps_the_group_and_commits(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    """Issue 14, scenario 6: a handler that takes 2.5x max.poll.interval. Without polling meanwhile the client
    leaves the group after the interval and joins again at its next poll: a rebalance per slow poll (and with
    other members, its partitions and the poll's events handed to them). With the runner's paused polls the
    member stays, commits, and gets the next event without a new assignment."""
    from aiokafka import TopicPartition

    topic = await topic_factory("slow", partitions=1)
    group = unique("g")
    interval = 2.0
    slow = build_envelope(ProbeHappened(key="s", n=1), key="s")
    later = build_envelope(ProbeHappened(key="s", n=2), key="s")
    await _produce(kafka_bootstrap, topic, [slow])

    async def slow_handler(session: AsyncSession, envelope: CloudEvent, data: Any) -> None:
        if envelope.id == slow.id:
            await asyncio.sleep(interval * 2.5)
        await record_effect(session, envelope, data)

    first = _runner(sessionmaker, kafka_bootstrap, topic, group, max_poll_interval_seconds=interval)
    first.handlers[ProbeHappened.event_type] = slow_handler
    await first.start()
    try:
        await _run_until(first, lambda: first.outcome.applied >= 1)
        await _produce(kafka_bootstrap, topic, [later])
        # Still the member owning the partition: the next event comes to it, the slow one is not delivered again.
        await _run_until(first, lambda: first.outcome.applied >= 2)
        assert first.outcome.duplicates == 0
        assert first.assignments == 1, "the slow poll cost a rebalance"
        assert first.slow_polls == 1
        committed = await first._consumer.committed(TopicPartition(topic, 0))  # type: ignore[union-attr]
    finally:
        await first.close()
    assert committed == 2, "both events' offsets committed by the member that applied them"
    assert await _effects(sessionmaker, slow.id) == 1
    assert await _effects(sessionmaker, later.id) == 1


async def test_a_database_away_is_waited_for_never_dead_lettered(
    sessionmaker: async_sessionmaker[AsyncSession], kafka_bootstrap: str, topic_factory: Any
) -> None:
    """Issue 14, scenario 9: PostgreSQL restarting refuses connections for seconds. That is not the event's
    fault: the consumer must wait for the database (spending none of the event's attempts) and then apply the
    event, never dead-letter it (the scenario's first run dead-lettered 17 events while PostgreSQL restarted)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.e2e.stack import free_port

    topic = await topic_factory("dbaway", partitions=1)
    env = build_envelope(ProbeHappened(key="d", n=1), key="d")
    await _produce(kafka_bootstrap, topic, [env])
    # A port nobody listens on: connect() is refused, as while the server restarts.
    away = create_async_engine(f"postgresql+asyncpg://kencana:kencana@127.0.0.1:{free_port()}/away")
    runner = _runner(
        async_sessionmaker(away, expire_on_commit=False), kafka_bootstrap, topic, unique("g"), max_attempts=2
    )
    await runner.start()

    async def database_back() -> None:
        await asyncio.sleep(2)  # several times what two attempts with their backoff take
        runner.sessionmaker = sessionmaker

    back = asyncio.create_task(database_back())
    try:
        await _run_until(runner, lambda: runner.outcome.applied >= 1)
    finally:
        await runner.close()
        await back
        await away.dispose()
    assert runner.outcome.dead_lettered == 0
    assert await _effects(sessionmaker, env.id) == 1
