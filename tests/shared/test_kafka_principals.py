"""Who may do what on the bus, as written in shared/kafka_security.py (pure; the broker tests are beside it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.kafka_security import (
    CONSUMES,
    Acl,
    KafkaSecurity,
    Operation,
    PatternType,
    Principal,
    ResourceType,
    ministry_acls,
    principals,
    service_acls,
)

T, G, C = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED


def _names(acls: tuple[Acl, ...], op: Operation, kind: ResourceType = T) -> set[tuple[str, PatternType]]:
    return {(a.name, a.pattern) for a in acls if a.operation is op and a.resource_type is kind}


def test_each_relay_writes_only_its_own_topic() -> None:
    assert _names(service_acls("registry"), Operation.WRITE) == {("kencana.registry", LIT)}
    # uppka, dashat: their event topic and their consumers' dead letters (`uppka.projector.dlq`).
    assert _names(service_acls("uppka"), Operation.WRITE) == {("kencana.uppka", LIT), ("uppka.", PRE)}
    assert _names(service_acls("dashat"), Operation.WRITE) == {("kencana.dashat", LIT), ("dashat.", PRE)}
    # reporting owns no event topic: the ministries' curated topics and its dead letters.
    assert _names(service_acls("reporting"), Operation.WRITE) == {
        ("kencana.public.", PRE),
        ("reporting.", PRE),
    }


def test_each_consumer_reads_what_it_consumes_and_nothing_else() -> None:
    assert _names(service_acls("registry"), Operation.READ) == set()
    assert _names(service_acls("uppka"), Operation.READ) == {
        ("kencana.registry", LIT),
        ("kencana.dashat", LIT),
        ("uppka.", PRE),
    }
    assert _names(service_acls("dashat"), Operation.READ) == {
        ("kencana.registry", LIT),
        ("kencana.uppka", LIT),
        ("dashat.", PRE),
    }
    assert _names(service_acls("reporting"), Operation.READ) == {
        ("kencana.registry", LIT),
        ("kencana.uppka", LIT),
        ("kencana.dashat", LIT),
        ("reporting.", PRE),
    }
    # No service reads the public topics (reporting writes them; only their ministry reads).
    assert _names(service_acls("uppka"), Operation.READ, G) == {("uppka.", PRE)}
    assert _names(service_acls("registry"), Operation.READ, G) == set()


def test_the_consumers_subscribe_to_the_topics_their_acls_name() -> None:
    from dashat.consumer import TOPICS as dashat_topics
    from reporting.consumer import TOPICS as reporting_topics
    from uppka.consumer import TOPICS as uppka_topics

    assert (tuple(uppka_topics), tuple(dashat_topics), tuple(reporting_topics)) == (
        CONSUMES["uppka"],
        CONSUMES["dashat"],
        CONSUMES["reporting"],
    )


def test_a_test_suffix_reaches_every_literal_topic() -> None:
    acls = service_acls("dashat", topic_suffix=".t1")
    assert ("kencana.registry.t1", LIT) in _names(acls, Operation.READ)
    assert ("kencana.dashat.t1", LIT) in _names(acls, Operation.WRITE)
    assert all(not a.name.startswith("kencana.") or a.name.endswith(".t1") for a in acls if a.pattern is LIT)


def test_a_ministry_reads_its_own_topic_with_its_own_groups_only() -> None:
    assert set(ministry_acls("kemenkes-eppgbm")) == {
        Acl(T, "kencana.public.kemenkes-eppgbm.v1", LIT, Operation.READ),
        Acl(T, "kencana.public.kemenkes-eppgbm.v1", LIT, Operation.DESCRIBE),
        # Ends with a dot: `public.kemenkes.` would not cover `public.kemenkes-eppgbm...`, nor the reverse.
        Acl(G, "public.kemenkes-eppgbm.", PRE, Operation.READ),
    }


def test_only_the_test_principal_has_wildcards_and_only_when_asked() -> None:
    assert [p.name for p in principals()] == ["registry", "uppka", "dashat", "reporting"]
    assert all(a.name != "*" for p in principals() for a in p.acls)
    assert principals(with_test=True)[-1].name == "kencana-test"
    # No service may alter the cluster (create users or ACLs); IdempotentWrite only.
    cluster = {a.operation for p in principals() for a in p.acls if a.resource_type is C}
    assert cluster == {Operation.IDEMPOTENT_WRITE}


def test_client_options_from_the_environment() -> None:
    assert KafkaSecurity.from_env({}).client_options() == {}
    env = {
        "KENCANA_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KENCANA_KAFKA_SASL_USERNAME": "uppka",
        "KENCANA_KAFKA_SASL_PASSWORD": 'p"w',
    }
    security = KafkaSecurity.from_env(env)
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("uppka", 'p"w')
    assert options["ssl_context"].check_hostname
    assert 'p"w' not in repr(security)
    props = security.java_properties()
    assert 'username="uppka" password="p\\"w";' in props
    assert "security.protocol=SASL_SSL" in props
    with pytest.raises(ValueError, match="KENCANA_KAFKA_SECURITY_PROTOCOL"):
        KafkaSecurity.from_env({"KENCANA_KAFKA_SECURITY_PROTOCOL": "TLS"})


def test_a_service_setting_overrides_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.config import Settings

    monkeypatch.setenv("KENCANA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KENCANA_KAFKA_SASL_USERNAME", "kencana-test")
    monkeypatch.setenv("KENCANA_KAFKA_SASL_PASSWORD", "shared")
    monkeypatch.setenv("REGISTRY_KAFKA_SASL_USERNAME", "registry")
    monkeypatch.setenv("REGISTRY_KAFKA_SASL_PASSWORD", "own")
    security = Settings().kafka_security()
    assert (security.protocol, security.username, security.password) == ("SASL_SSL", "registry", "own")


def test_the_password_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "uppka.password"
    secret.write_text("from-file\n")
    env = {"KENCANA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KENCANA_KAFKA_SASL_PASSWORD_FILE": str(secret)}
    assert KafkaSecurity.from_env(env).password == "from-file"
    # A password given directly wins over the file.
    assert KafkaSecurity.from_env({**env, "KENCANA_KAFKA_SASL_PASSWORD": "direct"}).password == "direct"

    from uppka.config import Settings

    monkeypatch.setenv("UPPKA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UPPKA_KAFKA_SASL_PASSWORD_FILE", str(secret))
    monkeypatch.delenv("KENCANA_KAFKA_SASL_PASSWORD", raising=False)
    assert Settings().kafka_security().password == "from-file"


def test_strimzi_users_fold_operations_per_resource() -> None:
    from shared.kafka_security import strimzi_user

    ministry = strimzi_user(Principal("m", ministry_acls("m1")))
    assert ministry["spec"]["authorization"]["acls"] == [
        {
            "resource": {"type": "topic", "name": "kencana.public.m1.v1", "patternType": "literal"},
            "operations": ["Read", "Describe"],
            "host": "*",
        },
        {
            "resource": {"type": "group", "name": "public.m1.", "patternType": "prefix"},
            "operations": ["Read"],
            "host": "*",
        },
    ]
