"""Curated per-consumer streams and webhooks for other ministries (issue 15), on the real PostgreSQL and Kafka.

The curator is the real consumer-group runner on unique internal topics, the relay the real outbox relay, the
consumers' topics real topics read back whole, and the webhook receiver a real HTTP server on loopback.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson
import pytest
from prometheus_client import REGISTRY
from reporting.config import Settings
from reporting.main import create_app
from reporting.streams.contract import BY_NAME
from reporting.streams.webhooks import Deliverer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import create_engine, create_sessionmaker
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import (
    CHECKOUT_TAG,
    bearer,
    consume,
    recreate_database,
    running_app,
    unique,
    wait_for,
)
from shared.topics import public_topic
from tests.reporting.streams_kit import (
    Child,
    Receiver,
    curate,
    detected,
    internal_ids,
    measured,
    pregnancy,
    produce,
    relay,
    risk_changed,
    running_receiver,
    stream_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

ADMIN = bearer("streams:admin")
ENVELOPE_KEYS = {
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
}

HEALTH = {
    "name": "kemenkes-test",
    "description": "e-PPGBM growth monitoring",
    "profile": {
        "legal_basis": "health_surveillance",
        "events": {
            "child.measured": ["family_id", "sex", "age", "haz", "haz_class"],
            "stunting.detected": ["age", "severity", "haz"],
            "pregnancy.registered": ["age", "kek", "anaemia"],
        },
        "age": "months",
        "region": "village",
    },
}
SOCIAL = {
    "name": "kemensos-test",
    "profile": {
        "legal_basis": "social_protection",
        "events": {
            "child.measured": ["sex", "age"],
            "family.stunting_risk_changed": ["at_risk", "welfare_decile"],
        },
        "age": "band",
        "region": "district",
    },
}


@dataclass
class Stack:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest.fixture
async def stack(kafka_bootstrap: str) -> AsyncIterator[Stack]:
    url = await recreate_database(f"test_reporting_streams_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = stream_settings(url, "." + unique())
    await ensure_service_topics(settings, ["kencana.registry", "kencana.uppka", "kencana.dashat"])
    engine = create_engine(url, pool_size=6)
    try:
        yield Stack(settings, engine, create_sessionmaker(engine))
    finally:
        await engine.dispose()
        topics = [settings.topic(t) for t in ("kencana.registry", "kencana.uppka", "kencana.dashat")]
        topics += [
            settings.topic(public_topic(n)) for n in (HEALTH["name"], SOCIAL["name"], "kemendesa-test")
        ]
        await delete_topics(kafka_bootstrap, [*topics, f"reporting.streams{settings.topic_suffix}.dlq"])


def allowed_data_keys(profile: dict[str, object], public_type: str) -> set[str]:
    name = public_type.removeprefix("kencana.public.").removesuffix(".v1")
    public = BY_NAME[name]
    chosen = set(public.core) | set(profile["events"][name])  # type: ignore[index]
    if "age" in chosen:
        chosen = (chosen - {"age"}) | {"age_months", "age_years", "age_band"}
    return chosen


async def test_each_stream_carries_its_profile_only_with_its_own_pseudonyms(stack: Stack) -> None:
    settings = stack.settings
    async with running_app(create_app(settings)) as api:
        for body in (HEALTH, SOCIAL):
            r = await api.post("/v1/stream-consumers", json=body, headers=ADMIN)
            assert r.status_code == 201, r.text
            assert r.json()["topic"] == f"kencana.public.{body['name']}.v1{settings.topic_suffix}"
        # A clinical value under a basis that does not cover health data: refused, naming the field.
        bad = {**SOCIAL, "name": "kemendesa-test"}
        bad["profile"] = {
            **SOCIAL["profile"],
            "legal_basis": "regional_planning",  # type: ignore[dict-item]
            "events": {"child.measured": ["sex", "haz"]},
        }
        r = await api.post("/v1/stream-consumers", json=bad, headers=ADMIN)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "profile.events.child.measured[1]"
        assert (await api.get("/v1/stream-consumers/kemendesa-test", headers=ADMIN)).status_code == 404
        assert (await api.post("/v1/stream-consumers", json=HEALTH, headers=ADMIN)).status_code == 409
        assert (await api.get("/v1/stream-consumers", headers=bearer("reporting:read"))).status_code == 403

    a, b = Child(), Child(village_code="15.71.02.2003")
    events = [
        measured(a, date(2026, 10, 30), -2.4),
        measured(b, date(2026, 11, 2), -0.5),
        detected(a, date(2026, 10, 30), -2.4),
        measured(a, date(2026, 11, 30), -2.1),
        risk_changed(a),
        pregnancy(b),
    ]
    await produce(settings, events)
    await curate(settings, stack.sessionmaker, len(events))
    # Health: 3 measurements, the detection, the pregnancy; social affairs: 3 measurements and the risk change.
    assert await relay(settings, stack.sessionmaker) == 5 + 4

    health = await consume(
        settings.topic(public_topic("kemenkes-test")), until=lambda rs: len(rs) >= 5, timeout=30
    )
    social = await consume(
        settings.topic(public_topic("kemensos-test")), until=lambda rs: len(rs) >= 4, timeout=30
    )
    assert len(health) == 5 and len(social) == 4

    # The RW as a JSON value ("002" bare also occurs, by chance, inside the hex of a pseudonym or an event id).
    secrets = internal_ids(events) | {str(a.birth_date), '"002"'}
    for records, profile in ((health, HEALTH["profile"]), (social, SOCIAL["profile"])):
        for record in records:
            raw = record.value or b""
            for secret in secrets:  # scan every message: no internal id, birth date or RW anywhere in it
                assert secret.encode() not in raw, (secret, raw)
            assert b'"rw"' not in raw and b'"rt"' not in raw, raw
            envelope = orjson.loads(raw)
            assert set(envelope) <= ENVELOPE_KEYS
            assert set(envelope["data"]) <= allowed_data_keys(profile, envelope["type"]), envelope  # type: ignore[arg-type]
            assert record.key == envelope["subject"].encode()
            assert dict(record.headers or [])["content-type"] == b"application/cloudevents+json"

    def by_type(records, t):
        return [orjson.loads(r.value or b"") for r in records if orjson.loads(r.value or b"")["type"] == t]

    h_measured = by_type(health, "kencana.public.child.measured.v1")
    s_measured = by_type(social, "kencana.public.child.measured.v1")
    # Child a measured twice: one pseudonym in each stream, a different one in the other stream.
    h_ids = {m["data"]["measured_on"]: m["data"]["child_id"] for m in h_measured}
    s_ids = {m["data"]["measured_on"]: m["data"]["child_id"] for m in s_measured}
    assert h_ids["2026-10-30"] == h_ids["2026-11-30"] != h_ids["2026-11-02"]
    assert s_ids["2026-10-30"] == s_ids["2026-11-30"] != s_ids["2026-11-02"]
    assert not set(h_ids.values()) & set(s_ids.values())
    # The detection names the same child (pseudonym) as its measurement in the health stream.
    (h_detected,) = by_type(health, "kencana.public.stunting.detected.v1")
    assert h_detected["data"]["child_id"] == h_ids["2026-10-30"]
    # Granularity: completed months and the village for health, bands and the district for social affairs.
    # Born 2025-02-28: 20 completed months on 2026-10-30, 21 on 2026-11-30.
    assert {
        m["data"]["measured_on"]: m["data"]["age_months"]
        for m in h_measured
        if m["subject"] == h_ids["2026-10-30"]
    } == {
        "2026-10-30": 20,
        "2026-11-30": 21,
    }
    assert {m["data"]["age_band"] for m in s_measured} == {"12-23"}
    assert {m["data"]["region_code"] for m in s_measured} == {"15.71.01", "15.71.02"}
    assert {m["data"]["region_code"] for m in h_measured} == {"15.71.01.1001", "15.71.02.2003"}
    assert all("haz" not in m["data"] for m in s_measured)
    (h_pregnancy,) = by_type(health, "kencana.public.pregnancy.registered.v1")
    assert h_pregnancy["data"] | {"mother_id": None, "pregnancy_id": None} == {
        "mother_id": None,
        "pregnancy_id": None,
        "region_code": "15.71.02.2003",
        "age_years": 19,
        "kek": True,
        "anaemia": "mild",
    }
    (s_risk,) = by_type(social, "kencana.public.family.stunting_risk_changed.v1")
    assert s_risk["data"]["at_risk"] is True and s_risk["data"]["welfare_decile"] == 2
    assert "reasons" not in s_risk["data"]

    # Curating the same internal events again (a replay of the internal topic) adds nothing to either stream.
    async with stack.sessionmaker() as session:
        before = (await session.execute(text("SELECT count(*) FROM stream_event"))).scalar_one()
    await produce(settings, events[:2])
    await curate(settings, stack.sessionmaker, 2)
    async with stack.sessionmaker() as session:
        assert (await session.execute(text("SELECT count(*) FROM stream_event"))).scalar_one() == before


async def _deliver_until(
    deliverer: Deliverer, check: object, timeout: float = 60, what: str = "deliveries"
) -> None:
    async def step() -> bool:
        await deliverer.deliver_due()
        return bool(check())  # type: ignore[operator]

    await wait_for(step, timeout=timeout, interval=0.05, what=what)


async def test_webhooks_signed_retried_ordered_replayed_and_rotated(stack: Stack) -> None:
    settings = stack.settings
    receiver = Receiver(script=["500", "timeout", "500"])
    async with running_receiver(receiver), running_app(create_app(settings)) as api:
        assert (await api.post("/v1/stream-consumers", json=HEALTH, headers=ADMIN)).status_code == 201
        r = await api.post(
            "/v1/stream-consumers/kemenkes-test/webhooks", json={"url": receiver.url}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        sub_id, first_secret = r.json()["id"], r.json()["secret"]
        assert first_secret.startswith("whsec_")
        receiver.secrets = [first_secret]
        # Production refuses loopback and plain http.
        prod = Settings(
            database_url=settings.database_url,
            environment="production",
            streams_pseudonym_key="k" * 32,
            webhook_secret_key="w" * 32,
            jwt_public_key_file=settings.jwt_public_key_file.with_name("prod.pem")
            if settings.jwt_public_key_file
            else None,
        )
        from reporting.streams.service import check_target

        from shared.errors import ValidationFailed

        with pytest.raises(ValidationFailed):
            await check_target(prod, receiver.url)

        a, b = Child(), Child()
        events = [
            measured(a, date(2026, 9, 30), -2.2),
            measured(b, date(2026, 10, 1), -1.0),
            measured(a, date(2026, 10, 30), -2.3),
            detected(a, date(2026, 10, 30), -2.3),
            measured(a, date(2026, 11, 30), -2.1),
            measured(b, date(2026, 11, 1), -1.1),
        ]
        await produce(settings, events)
        await curate(settings, stack.sessionmaker, len(events))

        deliverer = Deliverer(settings, stack.sessionmaker)
        try:
            # Each event: 500, a timeout, 500 again, then accepted. Every one arrives, once, in order per subject.
            await _deliver_until(deliverer, lambda: len(receiver.accepted) >= 6, what="6 accepted")
            accepted_ids = [e["id"] for e in receiver.accepted]
            assert len(set(accepted_ids)) == 6 == len(accepted_ids)
            assert receiver.bad_signatures == 0
            assert len(receiver.requests) == 6 * 4
            per_subject: dict[str, list[str]] = {}
            for e in receiver.accepted:
                per_subject.setdefault(e["subject"], []).append(e["data"]["measured_on"] + e["type"])
            assert sorted(len(v) for v in per_subject.values()) == [2, 4]
            for seen in (
                per_subject.values()
            ):  # curated order: measured_on ascending, detection after its measurement
                assert seen == sorted(seen, key=lambda s: (s[:10], "detected" in s)), seen

            r = await api.get("/v1/stream-consumers/kemenkes-test/deliveries", headers=ADMIN)
            log = r.json()["items"]
            assert len(log) == 6 and {d["status"] for d in log} == {"delivered"}
            assert all(d["attempts"] == 4 for d in log)
            assert [a["error"] for a in log[0]["attempt_log"]] == ["HTTP 500", "timeout", "HTTP 500", None]
            # The ministry reads its own log with its own token, and nobody else's.
            own = bearer("streams:read", sub="kemenkes-test")
            assert (
                await api.get("/v1/stream-consumers/kemenkes-test/deliveries", headers=own)
            ).status_code == 200
            other = bearer("streams:read", sub="kemensos-test")
            assert (
                await api.get("/v1/stream-consumers/kemenkes-test/deliveries", headers=other)
            ).status_code == 404

            # Replay of one delivery: delivered again, same CloudEvents id (= webhook-id).
            receiver.script = []
            r = await api.post(
                f"/v1/stream-consumers/kemenkes-test/deliveries/{log[0]['id']}/replay", headers=ADMIN
            )
            assert r.status_code == 202, r.text
            await _deliver_until(deliverer, lambda: len(receiver.accepted) >= 7, what="replayed delivery")
            assert receiver.accepted[-1]["id"] == log[0]["event_id"]

            # Rotation: during the overlap both secrets sign; a receiver that has only the new one verifies.
            r = await api.post(
                f"/v1/stream-consumers/kemenkes-test/webhooks/{sub_id}/secret:rotate",
                json={"overlap_seconds": 3600},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            new_secret = r.json()["secret"]
            receiver.secrets = [new_secret]
            r = await api.post(
                "/v1/stream-consumers/kemenkes-test/replay",
                json={"since": "2000-01-01T00:00:00Z"},
                headers=ADMIN,
            )
            assert r.json() == {"events": 6, "deliveries": 6}
            await _deliver_until(deliverer, lambda: len(receiver.accepted) >= 13, what="stream replay")
            assert receiver.bad_signatures == 0
            assert {e["id"] for e in receiver.accepted[7:]} == set(accepted_ids)
            for _, headers, body in receiver.requests[-6:]:
                from tests.reporting.streams_kit import verify

                assert verify(first_secret, headers, body) and verify(new_secret, headers, body)
            # The replay also went to the topic again (through the outbox): 6 + 6 messages, 6 distinct ids.
            await relay(settings, stack.sessionmaker)
            records = await consume(
                settings.topic(public_topic("kemenkes-test")), until=lambda rs: len(rs) >= 12
            )
            assert len({orjson.loads(r.value or b"")["id"] for r in records}) == 6

            # Parked after the last attempt, then replayed once the receiver is back.
            receiver.always_fail = True
            c = Child()
            await produce(settings, [measured(c, date(2026, 11, 15), -1.5)])
            await curate(settings, stack.sessionmaker, 1)

            async def parked() -> list[dict[str, object]]:
                await deliverer.deliver_due()
                page = await api.get(
                    "/v1/stream-consumers/kemenkes-test/deliveries?status=parked", headers=ADMIN
                )
                return list(page.json()["items"])

            (lost,) = await wait_for(parked, timeout=60, interval=0.05, what="parked delivery")
            assert lost["attempts"] == settings.webhook_max_attempts
            receiver.always_fail = False
            r = await api.post(
                f"/v1/stream-consumers/kemenkes-test/deliveries/{lost['id']}/replay", headers=ADMIN
            )
            await _deliver_until(
                deliverer, lambda: receiver.accepted[-1]["id"] == lost["event_id"], what="parked replay"
            )

            # Pause holds the stream and its webhooks; resume publishes what was held.
            assert (await api.post("/v1/stream-consumers/kemenkes-test/pause", headers=ADMIN)).json()[
                "status"
            ] == "paused"
            count = len(receiver.accepted)
            await produce(settings, [measured(c, date(2026, 11, 29), -1.4)])
            await curate(settings, stack.sessionmaker, 1)
            await deliverer.deliver_due()
            assert len(receiver.accepted) == count
            async with stack.sessionmaker() as session:
                held = (
                    await session.execute(text("SELECT count(*) FROM stream_event WHERE released_at IS NULL"))
                ).scalar_one()
            assert held == 1
            assert (await api.post("/v1/stream-consumers/kemenkes-test/resume", headers=ADMIN)).json()[
                "status"
            ] == "active"
            await _deliver_until(
                deliverer, lambda: len(receiver.accepted) == count + 1, what="resumed delivery"
            )
            assert receiver.bad_signatures == 0
        finally:
            await deliverer.close()


async def test_a_restarted_deliverer_finds_pending_deliveries(stack: Stack) -> None:
    """Deliveries are rows: a deliverer built after the first one went away delivers what was left pending."""
    settings = stack.settings
    receiver = Receiver(always_fail=True)
    async with running_receiver(receiver), running_app(create_app(settings)) as api:
        await api.post("/v1/stream-consumers", json=HEALTH, headers=ADMIN)
        r = await api.post(
            "/v1/stream-consumers/kemenkes-test/webhooks", json={"url": receiver.url}, headers=ADMIN
        )
        receiver.secrets = [r.json()["secret"]]
        await produce(settings, [measured(Child(), date(2026, 11, 3), -1.0)])
        await curate(settings, stack.sessionmaker, 1)
        first = Deliverer(settings, stack.sessionmaker)
        await _deliver_until(first, lambda: len(receiver.requests) >= 1, what="a first attempt")
        await first.update_metrics()
        sample = REGISTRY.get_sample_value
        assert sample("kencana_stream_webhook_pending", {"consumer": "kemenkes-test"}) == 1
        assert sample("kencana_stream_webhook_failed_attempts", {"consumer": "kemenkes-test"}) >= 1
        assert sample("kencana_stream_webhook_lag_seconds", {"consumer": "kemenkes-test"}) > 0
        await first.close()
        receiver.always_fail = False
        second = Deliverer(settings, stack.sessionmaker)
        try:
            await _deliver_until(second, lambda: len(receiver.accepted) == 1, what="delivery after restart")
            await second.update_metrics()
            assert (
                REGISTRY.get_sample_value("kencana_stream_webhook_pending", {"consumer": "kemenkes-test"})
                == 0
            )
            assert (
                REGISTRY.get_sample_value("kencana_stream_webhook_lag_seconds", {"consumer": "kemenkes-test"})
                == 0
            )
        finally:
            await second.close()
        assert datetime.now(UTC) > datetime(2026, 1, 1, tzinfo=UTC)
        assert uuid.UUID(receiver.accepted[0]["id"])
    await asyncio.sleep(0)


async def test_webhook_secrets_are_sealed_at_rest(stack: Stack) -> None:
    """The database holds each signing secret only sealed (AES-GCM, bound to its subscription): a copy of the
    database cannot sign a ministry's webhooks."""
    from cryptography.exceptions import InvalidTag
    from reporting.streams import domain

    async with running_app(create_app(stack.settings)) as api:
        assert (await api.post("/v1/stream-consumers", json=HEALTH, headers=ADMIN)).status_code == 201
        r = await api.post(
            "/v1/stream-consumers/kemenkes-test/webhooks",
            json={"url": "http://127.0.0.1:9/hook"},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        sub_id, first = uuid.UUID(r.json()["id"]), r.json()["secret"]
        r = await api.post(
            f"/v1/stream-consumers/kemenkes-test/webhooks/{sub_id}/secret:rotate",
            json={"overlap_seconds": 60},
            headers=ADMIN,
        )
        second = r.json()["secret"]
    async with stack.sessionmaker() as session:
        stored = (
            (
                await session.execute(
                    text("SELECT * FROM webhook_secret WHERE subscription_id = :s ORDER BY created_at"),
                    {"s": sub_id},
                )
            )
            .mappings()
            .all()
        )
    assert len(stored) == 2
    for row, plain in zip(stored, (first, second), strict=True):
        assert "secret" not in row  # no plain column left
        raw = plain.removeprefix("whsec_")
        assert raw not in row["sealed_secret"] and plain not in row["sealed_secret"]
        key = domain.secret_sealing_key(stack.settings.webhook_secret_key)
        assert domain.open_secret(key, sub_id, row["sealed_secret"]) == plain
        with pytest.raises(InvalidTag):  # moved onto another subscription's row, it does not open
            domain.open_secret(key, uuid.uuid4(), row["sealed_secret"])
        with pytest.raises(InvalidTag):  # nor under another key
            domain.open_secret(domain.secret_sealing_key("another key"), sub_id, row["sealed_secret"])


async def test_a_delivery_connects_to_the_address_that_was_checked(stack: Stack) -> None:
    """DNS rebinding: the deliverer checks what the name resolves to and then connects to that very address,
    with the name in Host. The receiver listens on 127.0.0.2 only and the deliverer's resolver answers 127.0.0.2
    for `localhost`; resolving the name again when connecting would reach 127.0.0.1, where nobody listens."""
    settings = stack.settings
    receiver = Receiver()
    async with running_receiver(receiver, host="127.0.0.2"), running_app(create_app(settings)) as api:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        assert (await api.post("/v1/stream-consumers", json=HEALTH, headers=ADMIN)).status_code == 201
        by_name = f"http://localhost:{port}/hook"
        r = await api.post(
            "/v1/stream-consumers/kemenkes-test/webhooks", json={"url": by_name}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        receiver.secrets = [r.json()["secret"]]
        child = Child()
        await produce(settings, [measured(child, date(2026, 10, 1), -1.0)])
        await curate(settings, stack.sessionmaker, 1)

        async def pinned(host: str) -> list[str]:
            return ["127.0.0.2"] if host == "localhost" else []

        deliverer = Deliverer(settings, stack.sessionmaker, resolver=pinned)
        try:
            await _deliver_until(deliverer, lambda: len(receiver.accepted) == 1, what="the pinned delivery")
        finally:
            await deliverer.close()
        assert receiver.requests[0][1]["host"] == f"localhost:{port}"

        # The same name now answering a private address is refused before any connection.
        async def rebound(host: str) -> list[str]:
            return ["10.20.30.40"]

        await produce(settings, [measured(child, date(2026, 11, 1), -1.1)])
        await curate(settings, stack.sessionmaker, 1)
        deliverer = Deliverer(settings, stack.sessionmaker, resolver=rebound)
        try:
            await deliverer.deliver_due()
        finally:
            await deliverer.close()
        r = await api.get("/v1/stream-consumers/kemenkes-test/deliveries", headers=ADMIN)
        pending = [d for d in r.json()["items"] if d["status"] != "delivered"]
        assert len(pending) == 1
        assert pending[0]["attempt_log"][0]["error"].startswith("target refused: ")
        assert len(receiver.requests) == 1
