"""The secured bus (issue 15), against the real broker in secure mode (`make test`: SASL/SCRAM over TLS + ACLs).

Each test creates its own users (unique names, with the ACLs shared/kafka_security.py gives a ministry or a
service, on this test's topics) as the test principal, and deletes them afterwards. A refusal must be an
authorisation or authentication error, and quick: a timeout would not tell a refusal from a slow broker.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from shared.config import kafka_bootstrap_servers
from shared.kafka import client_security, ensure_topics, security_options
from shared.kafka_acl import put_user, remove_user
from shared.kafka_security import (
    KafkaSecurity,
    Principal,
    ministry_acls,
    ministry_group_prefix,
    ministry_principal,
    service_acls,
)
from shared.testing.plugin import unique
from shared.topics import public_topic

pytestmark = pytest.mark.skipif(
    not client_security().secured,
    reason="the broker in use is PLAINTEXT (KENCANA_KAFKA_SECURITY_PROTOCOL unset): `make test` runs these secured",
)

# A refusal arrives within a round trip or two; far below any client timeout used here.
REFUSAL_SECONDS = 10.0


@pytest.fixture
async def users(kafka_bootstrap: str) -> AsyncIterator[Callable[[Principal], Awaitable[KafkaSecurity]]]:
    """Creates SCRAM users with their ACLs for one test; removes them (and their ACLs) afterwards."""
    made: list[str] = []

    async def make(principal: Principal) -> KafkaSecurity:
        password = unique("pw-")
        await put_user(kafka_bootstrap, principal, password)
        made.append(principal.name)
        return client_security().as_user(principal.name, password)

    yield make
    for name in made:
        await remove_user(kafka_bootstrap, name)


async def _produce(bootstrap: str, topic: str, value: bytes, **security: Any) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, request_timeout_ms=8000, **security
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _read_assigned(
    bootstrap: str, topic: str, security: KafkaSecurity, timeout: float = 20
) -> list[bytes]:
    """Every record of the topic, without a consumer group (as a ministry's script or the console consumer)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **security.client_options(),
    )
    try:
        await consumer.start()  # waits for the topic's metadata: an unauthorised topic fails here
        out: list[bytes] = []
        async with asyncio.timeout(timeout):
            while not out:
                batch = await consumer.getmany(timeout_ms=500)
                out += [r.value or b"" for recs in batch.values() for r in recs]
        return out
    finally:
        await consumer.stop()


async def _read_in_group(
    bootstrap: str, topic: str, group: str, security: KafkaSecurity, timeout: float = 30
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security.client_options(),
    )
    try:
        await consumer.start()
        out: list[bytes] = []
        async with asyncio.timeout(timeout):
            while not out:
                batch = await consumer.getmany(timeout_ms=500)
                out += [r.value or b"" for recs in batch.values() for r in recs]
        await consumer.commit()  # the group's offset: needs READ on the group
        return out
    finally:
        await consumer.stop()


async def _refused(action: Awaitable[object], *errors: type[BaseException]) -> BaseException:
    started = time.monotonic()
    with pytest.raises(errors) as raised:
        async with asyncio.timeout(REFUSAL_SECONDS * 2):
            await action
    assert time.monotonic() - started < REFUSAL_SECONDS, (
        f"refused only after {time.monotonic() - started:.1f}s"
    )
    return raised.value


async def _topics(bootstrap: str, *names: str) -> None:
    await ensure_topics(bootstrap, names, partitions=1)
    for name in names:
        await _produce(bootstrap, name, f"on {name}".encode(), **security_options())


async def test_a_ministry_reads_its_own_topic_and_nothing_else(kafka_bootstrap: str, users: Any) -> None:
    suffix = unique(".t")
    mine, theirs = unique("mina"), unique("minb")
    own, other, internal = (
        f"{public_topic(mine)}{suffix}",
        f"{public_topic(theirs)}{suffix}",
        f"kencana.registry{suffix}",
    )
    await _topics(kafka_bootstrap, own, other, internal)
    ministry = await users(Principal(ministry_principal(mine), ministry_acls(mine, topic_suffix=suffix)))

    group = f"{ministry_group_prefix(mine)}reader"
    assert await _read_in_group(kafka_bootstrap, own, group, ministry) == [f"on {own}".encode()]

    await _refused(_read_assigned(kafka_bootstrap, internal, ministry), TopicAuthorizationFailedError)
    await _refused(_read_assigned(kafka_bootstrap, other, ministry), TopicAuthorizationFailedError)
    # Its own topic, but a group outside its prefix (another ministry's, or a service's).
    for foreign in (f"{ministry_group_prefix(theirs)}reader", "reporting.projector"):
        await _refused(_read_in_group(kafka_bootstrap, own, foreign, ministry), GroupAuthorizationFailedError)
    # Nor may it write, even to its own topic (an idempotent producer is stopped earlier, at the cluster).
    await _refused(
        _produce(kafka_bootstrap, own, b"forged", **ministry.client_options()),
        TopicAuthorizationFailedError,
        ClusterAuthorizationFailedError,
    )


async def test_unauthenticated_and_wrong_password_clients_are_refused(
    kafka_bootstrap: str, users: Any
) -> None:
    suffix = unique(".t")
    name = unique("minc")
    topic = f"{public_topic(name)}{suffix}"
    await _topics(kafka_bootstrap, topic)
    ministry = await users(Principal(ministry_principal(name), ministry_acls(name, topic_suffix=suffix)))

    # PLAINTEXT on the TLS listener: the broker closes the connection, nothing is read.
    plaintext = KafkaSecurity()
    await _refused(_read_assigned(kafka_bootstrap, topic, plaintext), KafkaConnectionError)
    # The right user with a wrong password: SCRAM authentication fails.
    wrong = ministry.as_user(ministry.username, ministry.password + "x")
    await _refused(_read_assigned(kafka_bootstrap, topic, wrong), KafkaError)
    # A user that does not exist.
    await _refused(
        _read_assigned(kafka_bootstrap, topic, ministry.as_user(unique("nobody"), "pw")), KafkaError
    )
    # The right credentials read it (the refusals above were not the broker's doing).
    assert await _read_assigned(kafka_bootstrap, topic, ministry) == [f"on {topic}".encode()]


async def test_a_service_relay_writes_only_its_own_topic(kafka_bootstrap: str, users: Any) -> None:
    suffix = unique(".t")
    registry_topic, uppka_topic, public = (
        f"kencana.registry{suffix}",
        f"kencana.uppka{suffix}",
        f"{public_topic(unique('mind'))}{suffix}",
    )
    await _topics(kafka_bootstrap, registry_topic, uppka_topic, public)
    # The registry's ACLs on this test's topics, under a user of its own (the real `registry` user is left alone).
    relay = await users(Principal(unique("svc-registry-"), service_acls("registry", topic_suffix=suffix)))

    await _produce(kafka_bootstrap, registry_topic, b"event", **relay.client_options())
    await _refused(
        _produce(kafka_bootstrap, uppka_topic, b"forged", **relay.client_options()),
        TopicAuthorizationFailedError,
    )
    await _refused(
        _produce(kafka_bootstrap, public, b"forged", **relay.client_options()), TopicAuthorizationFailedError
    )
    # The registry consumes nothing: not even another service's topic.
    await _refused(_read_assigned(kafka_bootstrap, uppka_topic, relay), TopicAuthorizationFailedError)


async def test_a_consumer_group_reads_only_what_its_service_consumes(
    kafka_bootstrap: str, users: Any
) -> None:
    suffix = unique(".t")
    registry_topic, uppka_topic, dashat_topic = (
        f"kencana.{s}{suffix}" for s in ("registry", "uppka", "dashat")
    )
    await _topics(kafka_bootstrap, registry_topic, uppka_topic, dashat_topic)
    uppka = await users(Principal(unique("svc-uppka-"), service_acls("uppka", topic_suffix=suffix)))

    # uppka.projector consumes the registry's and DASHAT's events (CONSUMES), in a group of its own prefix.
    group = f"uppka.projector{suffix}"
    assert await _read_in_group(kafka_bootstrap, registry_topic, group, uppka) == [
        f"on {registry_topic}".encode()
    ]
    assert await _read_in_group(kafka_bootstrap, dashat_topic, group, uppka) == [
        f"on {dashat_topic}".encode()
    ]
    # Its own topic is written, never read back; another service's group is refused.
    await _refused(_read_assigned(kafka_bootstrap, uppka_topic, uppka), TopicAuthorizationFailedError)
    await _refused(
        _read_in_group(kafka_bootstrap, registry_topic, f"dashat.projector{suffix}", uppka),
        GroupAuthorizationFailedError,
    )


def test_the_ministry_command_creates_and_rotates_a_ministry_user(tmp_path: Path) -> None:
    """`kencana kafka-security ministry <name>` (the runbook's command): a user reading its topic; run again,
    a new password, and the old one is refused."""
    from kencana_cli.kafka_security import app
    from typer.testing import CliRunner

    bootstrap = kafka_bootstrap_servers()
    suffix, name = unique(".t"), unique("mine")
    topic = f"{public_topic(name)}{suffix}"
    asyncio.run(_topics(bootstrap, topic))
    command = ["ministry", name, "--bootstrap-servers", bootstrap, "--suffix", suffix, "--out", str(tmp_path)]
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 0, first.output
    old = json.loads(first.output)
    try:
        assert (old["username"], old["topic"], old["group_prefix"]) == (
            f"ministry-{name}",
            topic,
            f"public.{name}.",
        )
        properties = (tmp_path / f"client-ministry-{name}.properties").read_text()
        assert "security.protocol=SASL_SSL" in properties and old["password"] in properties
        security = client_security()
        assert asyncio.run(
            _read_assigned(bootstrap, topic, security.as_user(old["username"], old["password"]))
        ) == [f"on {topic}".encode()]

        second = CliRunner().invoke(app, command)
        assert second.exit_code == 0, second.output
        new = json.loads(second.output)
        assert new["password"] != old["password"]
        assert asyncio.run(
            _read_assigned(bootstrap, topic, security.as_user(new["username"], new["password"]))
        )
        with pytest.raises(KafkaError):
            asyncio.run(_read_assigned(bootstrap, topic, security.as_user(old["username"], old["password"])))

        refused = CliRunner().invoke(app, ["ministry", "Bad.Name", "--bootstrap-servers", bootstrap])
        assert refused.exit_code != 0 and "NAME" in refused.output
    finally:
        asyncio.run(remove_user(bootstrap, f"ministry-{name}"))
