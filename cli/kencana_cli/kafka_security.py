"""`kencana kafka-security apply|ministry|remove-ministry|acls`: the bus's users and ACLs (shared/kafka_security.py).

Run with the admin's credentials (KENCANA_KAFKA_SECURITY_PROTOCOL=SASL_SSL, KENCANA_KAFKA_SASL_USERNAME=
kencana-admin ...; `eval "$(scripts/infra.sh env kencana-admin)"` on the development broker). Passwords are
generated here (32 random bytes, hex) and written only into the secrets folder, mode 600; the ministry command
prints the new password once, for the ministry's operator (docs/runbook.md, "Kafka credentials").
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
from pathlib import Path
from typing import Annotated

import typer

from shared.kafka import client_security
from shared.kafka_acl import apply_principals, put_user, remove_user
from shared.kafka_security import (
    ADMIN_PRINCIPAL,
    KafkaSecurity,
    Principal,
    ministry_acls,
    ministry_group_prefix,
    ministry_principal,
    principals,
    strimzi_user,
)
from shared.topics import public_topic

# The streams API's rule for a consumer's name (reporting/streams/schemas.py): no dot, so no name's topic or
# group prefix covers another's.
CONSUMER_NAME = re.compile(r"[a-z0-9-]{3,40}")

app = typer.Typer(
    help="Kafka users and ACLs of the secured bus (docs/runbook.md, Kafka credentials and secret rotation).",
    no_args_is_help=True,
)

Bootstrap = Annotated[
    str,
    typer.Option("--bootstrap-servers", envvar="KENCANA_KAFKA_BOOTSTRAP_SERVERS", help="Kafka to talk to"),
]
Suffix = Annotated[
    str, typer.Option("--suffix", envvar="KENCANA_TOPIC_SUFFIX", help="The services' TOPIC_SUFFIX, if any")
]
SecretsDir = Annotated[
    Path | None,
    typer.Option(
        "--secrets-dir",
        help="Where passwords and client files are kept (scripts/infra.sh: <state>/kafka-secrets)",
    ),
]


def new_password() -> str:
    return secrets.token_hex(32)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def stored_password(secrets_dir: Path, user: str, *, rotate: bool = False) -> str:
    """The user's password from the secrets folder, generated when missing (or when rotating)."""
    path = secrets_dir / "passwords" / f"{user}.password"
    if not rotate and path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    if not os.access(path.parent if path.parent.exists() else secrets_dir, os.W_OK):
        raise typer.BadParameter(f"no password for {user} in {path.parent}, and it is read-only")
    password = new_password()
    _write_private(path, password + "\n")
    return password


def write_client_files(secrets_dir: Path, security: KafkaSecurity, bootstrap_servers: str) -> None:
    """client-<user>.properties for Kafka's console tools and <user>.env for everything else."""
    user = security.username
    _write_private(secrets_dir / f"client-{user}.properties", security.java_properties())
    env = {
        "KENCANA_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "KENCANA_KAFKA_SECURITY_PROTOCOL": security.protocol,
        "KENCANA_KAFKA_SASL_MECHANISM": security.mechanism,
        "KENCANA_KAFKA_SASL_USERNAME": user,
        "KENCANA_KAFKA_SASL_PASSWORD": security.password,
        "KENCANA_KAFKA_SSL_CAFILE": security.cafile,
    }
    _write_private(secrets_dir / f"{user}.env", "".join(f"{k}={v}\n" for k, v in env.items()))


def _secured() -> KafkaSecurity:
    security = client_security()
    if not security.secured:
        raise typer.BadParameter(
            "KENCANA_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: this broker has no users or ACLs"
        )
    return security


@app.command()
def apply(
    bootstrap_servers: Bootstrap = "127.0.0.1:9092",
    secrets_dir: SecretsDir = None,
    suffix: Suffix = "",
    with_test: Annotated[
        bool, typer.Option(help="Also the test suite's principal (development broker only)")
    ] = False,
    client_files: Annotated[bool, typer.Option(help="Write client-<user>.properties and <user>.env")] = True,
) -> None:
    """Create every service's SCRAM user and exactly its ACLs (passwords kept in --secrets-dir, made when missing)."""
    admin = _secured()
    folder = secrets_dir or Path(admin.cafile).parent
    wanted = principals(topic_suffix=suffix, with_test=with_test)
    passwords = {p.name: stored_password(folder, p.name) for p in wanted}
    report = asyncio.run(apply_principals(bootstrap_servers, wanted, passwords))
    for name in [ADMIN_PRINCIPAL, *passwords] if client_files else []:
        password = passwords.get(name) or stored_password(folder, name)
        write_client_files(folder, admin.as_user(name, password), bootstrap_servers)
    typer.echo(
        f"users {', '.join(report.users)}: {report.acls_created} ACLs created, {report.acls_removed} removed; "
        f"client files in {folder}"
    )


@app.command()
def ministry(
    name: Annotated[
        str, typer.Argument(help="The stream consumer's name, as registered (/v1/stream-consumers)")
    ],
    bootstrap_servers: Bootstrap = "127.0.0.1:9092",
    suffix: Suffix = "",
    out: Annotated[
        Path | None, typer.Option(help="Also write the client .env/.properties files into this folder")
    ] = None,
) -> None:
    """Create a ministry's user, or rotate its password (the old one stops at once): READ on its topic only."""
    if not CONSUMER_NAME.fullmatch(name):
        raise typer.BadParameter("a stream consumer's name: 3-40 of a-z, 0-9 and '-'", param_hint="NAME")
    admin = _secured()
    principal = Principal(
        ministry_principal(name), ministry_acls(name, topic_suffix=suffix), why=f"ministry {name}"
    )
    password = new_password()
    asyncio.run(put_user(bootstrap_servers, principal, password))
    security = admin.as_user(principal.name, password)
    if out is not None:
        write_client_files(out, security, bootstrap_servers)
    typer.echo(
        json.dumps(
            {
                "username": principal.name,
                "password": password,
                "topic": f"{public_topic(name)}{suffix}",
                "group_prefix": ministry_group_prefix(name),
                "security_protocol": security.protocol,
                "sasl_mechanism": security.mechanism,
            },
            indent=2,
        )
    )


@app.command("remove-ministry")
def remove_ministry(
    name: Annotated[str, typer.Argument(help="The stream consumer's name")],
    bootstrap_servers: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Delete a ministry's user and every ACL it had."""
    _secured()
    asyncio.run(remove_user(bootstrap_servers, ministry_principal(name)))
    typer.echo(f"removed {ministry_principal(name)}")


@app.command()
def acls(suffix: Suffix = "") -> None:
    """Print every service principal's ACLs as written in shared/kafka_security.py (no broker needed)."""
    for p in principals(topic_suffix=suffix):
        typer.echo(f"User:{p.name}  ({p.why})")
        for acl in p.acls:
            typer.echo(f"  ALLOW {acl.describe()}")


COMPOSE_SERVER_PROPERTIES = """\
# Written by `kencana kafka-security compose-init` (docker-compose.yml, step kafka-secrets): the single KRaft node
# of the compose stack on the secured bus, as scripts/infra.sh runs it locally (issue 15).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@kafka:9093
listeners=SASL_SSL://:9092,CONTROLLER://:9093,HOST://:29092
advertised.listeners=SASL_SSL://kafka:9092,HOST://localhost:29092
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL,HOST:SASL_SSL
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
log.dirs=/var/lib/kafka/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
required username="{admin}" password="{admin_password}";
listener.name.host.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
required username="{admin}" password="{admin_password}";
ssl.keystore.type=PEM
ssl.keystore.location={folder}/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location={folder}/ca.crt
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{admin};User:kencana-broker
"""


def _certificates(folder: Path, hosts: list[str]) -> None:
    """A CA and the broker's certificate (SAN: `hosts`), as scripts/infra.sh makes them with openssl."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kencana development"),
                x509.NameAttribute(NameOID.COMMON_NAME, common),
            ]
        )

    def pem_key(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Kencana development CA"))
        .issuer_name(name("Kencana development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("kencana-broker"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(folder / "ca.key", pem_key(ca_key).decode())
    _write_private(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM).decode())
    _write_private(
        folder / "broker.pem", (pem_key(key) + cert.public_bytes(serialization.Encoding.PEM)).decode()
    )


@app.command("compose-init")
def compose_init(
    folder: Annotated[Path, typer.Option("--dir", help="The kafka-secrets volume")],
    hosts: Annotated[str, typer.Option(help="The broker certificate's names")] = "kafka,localhost,127.0.0.1",
    readable_by: Annotated[
        int, typer.Option(help="Group id that may read the secrets (the containers' users)")
    ] = 0,
) -> None:
    """docker-compose's secured bus: CA, broker certificate, every password and the broker's configuration.

    Idempotent: what exists is kept. The files are made readable by group `readable_by` (the broker and the
    services run as other users than this step), never by others.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "broker.pem").is_file():
        _certificates(folder, [h.strip() for h in hosts.split(",") if h.strip()])
    admin_password = stored_password(folder, ADMIN_PRINCIPAL)
    for p in principals():
        stored_password(folder, p.name)
    _write_private(
        folder / "server.properties",
        COMPOSE_SERVER_PROPERTIES.format(admin=ADMIN_PRINCIPAL, admin_password=admin_password, folder=folder),
    )
    admin = KafkaSecurity(
        "SASL_SSL", username=ADMIN_PRINCIPAL, password=admin_password, cafile=str(folder / "ca.crt")
    )
    _write_private(folder / f"client-{ADMIN_PRINCIPAL}.properties", admin.java_properties())
    for path in [folder, folder / "passwords", *folder.rglob("*")]:
        if os.geteuid() == 0:
            os.chown(path, -1, readable_by)
        path.chmod(0o750 if path.is_dir() else 0o600 if path.name == "ca.key" else 0o640)
    typer.echo(f"kafka secrets in {folder}")


K8S_USERS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "kafka-users.yaml"
K8S_HEADER = """\
# Kafka users of the four services (issue 15), managed by the Strimzi User Operator of the Kafka cluster `kencana`
# (Kafka.spec.entityOperator.userOperator.watchedNamespace: kencana), which makes for each a Secret of the same
# name in this namespace holding `password`; the Deployments read it as <SVC>_KAFKA_SASL_PASSWORD.
# GENERATED from shared/kafka_security.py by `kencana kafka-security k8s`: do not edit (a test compares).
"""


def k8s_users_document() -> str:
    """deploy/k8s/base/kafka-users.yaml as generated from the principal list."""
    import yaml

    docs = [strimzi_user(p) for p in principals()]
    return K8S_HEADER + "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs)


@app.command()
def k8s(
    check: Annotated[bool, typer.Option(help="Exit 1 when the file differs instead of writing it")] = False,
) -> None:
    """Write deploy/k8s/base/kafka-users.yaml (Strimzi KafkaUsers with the services' ACLs)."""
    text = k8s_users_document()
    if check:
        if not K8S_USERS.is_file() or K8S_USERS.read_text() != text:
            typer.echo(f"{K8S_USERS} is out of date: run `kencana kafka-security k8s`", err=True)
            raise typer.Exit(1)
        return
    K8S_USERS.write_text(text)
    typer.echo(f"wrote {K8S_USERS}")


if __name__ == "__main__":
    app()
