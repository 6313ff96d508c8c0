"""Who may do what on the bus (issue 15): the Kafka principals, their ACLs, and the client's security settings.

Written down once. `kencana kafka-security apply` (run by `scripts/infra.sh up`) creates the SCRAM users and the
ACLs on the project's broker from `principals()`; the Kubernetes `KafkaUser` manifests are held to the same list by
a test; a ministry registered through the streams API gets `ministry_acls()` (`kencana kafka-security ministry`).

The broker authorises with `StandardAuthorizer` and `allow.everyone.if.no.acl.found=false`: a principal can do
only what is listed here. One principal per service (its API, relay and consumers run with the same credentials):

- its relay WRITEs (and CREATEs, DESCRIBEs) only its own event topic; IdempotentWrite on the cluster, which the
  idempotent producer (acks=all, EVENTS.md) needs;
- its consumer groups (`<service>.`-prefixed) READ only the topics in `CONSUMES`, and its dead-letter topics
  (`<service>.<purpose>.dlq`), which it writes and replays;
- reporting's streams relay WRITEs the curated topics `kencana.public.*` (prefixed);
- a ministry READs only `kencana.public.<name>.v1` with groups starting `public.<name>.` (the naming the integration guide gave ministries).

Nothing else reads the internal topics. The admin (`kencana-admin`) is the only super user, for infra tooling.
The `kencana-test` principal exists only on a development broker: tests create uniquely named topics and groups,
so it holds wildcard ACLs (still ACLs: it is not a super user, and the authorisation tests use the others).

Pure: no I/O except reading the CA file into an SSL context.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from shared.topics import EVENT_TOPICS, PUBLIC_TOPIC_PREFIX, public_topic

ADMIN_PRINCIPAL = "kencana-admin"
TEST_PRINCIPAL = "kencana-test"
SCRAM_MECHANISM = "SCRAM-SHA-512"
# Kafka's default for SCRAM (RFC 5802 leaves it to the server; 4096 is the floor Kafka accepts for SHA-512).
SCRAM_ITERATIONS = 8192
SERVICES: tuple[str, ...] = ("registry", "uppka", "dashat", "reporting")

# The event topics each service's consumers read (logical names; the services' consumers import these lists).
CONSUMES: Mapping[str, tuple[str, ...]] = {
    "registry": (),
    "uppka": ("kencana.registry", "kencana.dashat"),
    "dashat": ("kencana.registry", "kencana.uppka"),
    "reporting": ("kencana.registry", "kencana.uppka", "kencana.dashat"),
}
# The event topic each service's relay writes.
PRODUCES: Mapping[str, tuple[str, ...]] = {
    "registry": ("kencana.registry",),
    "uppka": ("kencana.uppka",),
    "dashat": ("kencana.dashat",),
    "reporting": (),
}
MINISTRY_GROUP_PREFIX = "public."

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


# Kafka's wire codes (org.apache.kafka.common.acl / resource).
class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


CLUSTER_RESOURCE = "kafka-cluster"
ALLOW = 3


@dataclass(frozen=True, order=True)
class Acl:
    """One allow rule: `operation` on the resource `name` (literal, or every name starting with it)."""

    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    def describe(self) -> str:
        kind = "prefixed" if self.pattern is PatternType.PREFIXED else "literal"
        return f"{self.operation.name} {self.resource_type.name} {self.name!r} ({kind})"


@dataclass(frozen=True)
class Principal:
    """A SCRAM user and what it is allowed."""

    name: str
    acls: tuple[Acl, ...]
    why: str = ""


def _topic(name: str, *ops: Operation, prefixed: bool = False) -> list[Acl]:
    pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
    return [Acl(ResourceType.TOPIC, name, pattern, op) for op in ops]


def _group_prefix(prefix: str) -> list[Acl]:
    return [Acl(ResourceType.GROUP, prefix, PatternType.PREFIXED, Operation.READ)]


_IDEMPOTENT = Acl(ResourceType.CLUSTER, CLUSTER_RESOURCE, PatternType.LITERAL, Operation.IDEMPOTENT_WRITE)
_WRITER = (Operation.WRITE, Operation.CREATE, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS)


def service_acls(service: str, *, topic_suffix: str = "") -> tuple[Acl, ...]:
    """What a service's processes may do; `topic_suffix` is the deployment's ServiceSettings.topic_suffix."""
    acls: list[Acl] = [_IDEMPOTENT]
    for topic in PRODUCES[service]:
        acls += _topic(f"{topic}{topic_suffix}", *_WRITER)
    for topic in CONSUMES[service]:
        acls += _topic(
            f"{topic}{topic_suffix}", Operation.READ, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS
        )
    if CONSUMES[service]:
        # Its consumer groups (`<service>.projector`, `.streams`, `.dlq.replay`, rebuild shadows) and their
        # dead-letter topics `<service>.<purpose>.dlq`, written by the consumer and read by the replay.
        acls += _group_prefix(f"{service}.")
        acls += _topic(f"{service}.", *_WRITER, Operation.READ, prefixed=True)
    if service == "reporting":
        # The curated streams' relay (reporting.streams): every ministry's topic, created on registration.
        acls += _topic(PUBLIC_TOPIC_PREFIX, *_WRITER, prefixed=True)
    return tuple(sorted(set(acls)))


def ministry_acls(consumer: str, *, topic_suffix: str = "") -> tuple[Acl, ...]:
    """A ministry reads its own curated topic only, with consumer groups `public.<name>.…`."""
    topic = f"{public_topic(consumer)}{topic_suffix}"
    return tuple(
        sorted(
            _topic(topic, Operation.READ, Operation.DESCRIBE) + _group_prefix(ministry_group_prefix(consumer))
        )
    )


def ministry_group_prefix(consumer: str) -> str:
    """The consumer-group prefix a ministry's principal may use (ends with a dot: `public.a.` never covers `public.ab.`)."""
    return f"{MINISTRY_GROUP_PREFIX}{consumer}."


def ministry_principal(consumer: str) -> str:
    """The SCRAM user of a registered stream consumer."""
    return f"ministry-{consumer}"


def test_acls() -> tuple[Acl, ...]:
    """Development broker only: tests name topics and groups per test, so wildcards (Kafka's `*`, literal)."""
    return (
        Acl(ResourceType.TOPIC, "*", PatternType.LITERAL, Operation.ALL),
        Acl(ResourceType.GROUP, "*", PatternType.LITERAL, Operation.ALL),
        Acl(ResourceType.TRANSACTIONAL_ID, "*", PatternType.LITERAL, Operation.ALL),
        Acl(ResourceType.CLUSTER, CLUSTER_RESOURCE, PatternType.LITERAL, Operation.ALL),
    )


def principals(*, topic_suffix: str = "", with_test: bool = False) -> list[Principal]:
    """Every principal the project's broker is set up with (the admin is a super user and has no ACLs)."""
    out = [
        Principal(s, service_acls(s, topic_suffix=topic_suffix), why=f"{s}'s API, relay and consumers")
        for s in SERVICES
    ]
    if with_test:
        out.append(Principal(TEST_PRINCIPAL, test_acls(), why="the test suite (development broker only)"))
    return out


assert set(CONSUMES) == set(SERVICES) == set(PRODUCES)
assert {t for ts in PRODUCES.values() for t in ts} == set(EVENT_TOPICS)


# --------------------------------------------------------------------------------------------- client settings
@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates: `PLAINTEXT` (nothing), or SASL/SCRAM-SHA-512 over TLS with the project's CA."""

    protocol: SecurityProtocol = "PLAINTEXT"
    mechanism: str = SCRAM_MECHANISM
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = ""

    @property
    def secured(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        if not self.secured:
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if self.protocol.endswith("SSL"):
            options["ssl_context"] = ssl_context(self.cafile)
        return options

    def java_properties(self) -> str:
        """The same settings for Kafka's console tools (`--command-config` / `--consumer.config`)."""
        if not self.secured:
            return "security.protocol=PLAINTEXT\n"
        lines = [f"security.protocol={self.protocol}"]
        if self.protocol.startswith("SASL"):
            user = self.username.replace("\\", "\\\\").replace('"', '\\"')
            password = self.password.replace("\\", "\\\\").replace('"', '\\"')
            lines += [
                f"sasl.mechanism={self.mechanism}",
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{user}" password="{password}";',
            ]
        if self.protocol.endswith("SSL") and self.cafile:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.cafile}"]
        return "\n".join(lines) + "\n"

    def as_user(self, username: str, password: str) -> KafkaSecurity:
        """The same broker and CA with other credentials."""
        return KafkaSecurity(self.protocol, self.mechanism, username, password, self.cafile)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "KENCANA_") -> KafkaSecurity:
        """`<prefix>KAFKA_SECURITY_PROTOCOL`, `_SASL_MECHANISM`, `_SASL_USERNAME`, `_SASL_PASSWORD`, `_SSL_CAFILE`.

        `_SASL_PASSWORD_FILE` names a file holding the password instead (a Docker or Kubernetes secret file).
        """
        env = os.environ if environ is None else environ
        password = env.get(f"{prefix}KAFKA_SASL_PASSWORD", "")
        password_file = env.get(f"{prefix}KAFKA_SASL_PASSWORD_FILE", "")
        if not password and password_file:
            with open(password_file, encoding="utf-8") as f:
                password = f.read().strip()
        protocol = env.get(f"{prefix}KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper() or "PLAINTEXT"
        if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ValueError(f"{prefix}KAFKA_SECURITY_PROTOCOL: unknown protocol {protocol!r}")
        return cls(
            protocol=protocol,  # type: ignore[arg-type]  # checked just above
            mechanism=env.get(f"{prefix}KAFKA_SASL_MECHANISM", SCRAM_MECHANISM) or SCRAM_MECHANISM,
            username=env.get(f"{prefix}KAFKA_SASL_USERNAME", ""),
            password=password,
            cafile=env.get(f"{prefix}KAFKA_SSL_CAFILE", ""),
        )


@functools.lru_cache(maxsize=8)
def ssl_context(cafile: str) -> ssl.SSLContext:
    """Server verification against the project's CA (or the system's when none is given); host names checked."""
    context = ssl.create_default_context(cafile=cafile or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# ---------------------------------------------------------------------------------------------- Kubernetes
_STRIMZI_OPERATION = {
    Operation.ALL: "All",
    Operation.READ: "Read",
    Operation.WRITE: "Write",
    Operation.CREATE: "Create",
    Operation.DELETE: "Delete",
    Operation.ALTER: "Alter",
    Operation.DESCRIBE: "Describe",
    Operation.DESCRIBE_CONFIGS: "DescribeConfigs",
    Operation.ALTER_CONFIGS: "AlterConfigs",
    Operation.IDEMPOTENT_WRITE: "IdempotentWrite",
}
_STRIMZI_RESOURCE = {
    ResourceType.TOPIC: "topic",
    ResourceType.GROUP: "group",
    ResourceType.CLUSTER: "cluster",
    ResourceType.TRANSACTIONAL_ID: "transactionalId",
}


def strimzi_user(principal: Principal, *, cluster: str = "kencana") -> dict[str, Any]:
    """A Strimzi `KafkaUser` (SCRAM-SHA-512, simple authorisation) holding exactly the principal's ACLs.

    ACLs on one resource are folded into one rule with its operations, in the order of `Operation`.
    """
    rules: dict[tuple[ResourceType, str, PatternType], list[Operation]] = {}
    for acl in principal.acls:
        rules.setdefault((acl.resource_type, acl.name, acl.pattern), []).append(acl.operation)
    acls: list[dict[str, Any]] = []
    for (kind, name, pattern), operations in sorted(rules.items()):
        resource: dict[str, Any] = {"type": _STRIMZI_RESOURCE[kind]}
        if kind is not ResourceType.CLUSTER:
            resource |= {
                "name": name,
                "patternType": "prefix" if pattern is PatternType.PREFIXED else "literal",
            }
        acls.append(
            {
                "resource": resource,
                "operations": [_STRIMZI_OPERATION[o] for o in sorted(operations)],
                "host": "*",
            }
        )
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {
            "name": principal.name,
            "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "kencana"},
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }
