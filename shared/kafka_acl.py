"""SCRAM users and ACLs on the broker, through the admin protocol (the admin client of aiokafka lacks them).

`apply_principals` makes the broker hold exactly the users and ACLs of shared/kafka_security.py (idempotent: an
existing ACL is not an error, a user's password is set again); `put_ministry_user` creates or rotates one
ministry's user. Both need a principal allowed to ALTER the cluster (the admin super user).

AlterUserScramCredentials (KIP-554) carries the salted password, never the password: the client derives it
(RFC 5802 `Hi()`: PBKDF2-HMAC with the mechanism's hash) from a random salt, as Kafka's own admin client does.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from shared.kafka import admin_client
from shared.kafka_security import (
    ALLOW,
    SCRAM_ITERATIONS,
    Acl,
    Operation,
    PatternType,
    Principal,
    ResourceType,
)
from shared.logging import get_logger

log = get_logger(__name__)

_SCRAM_SHA_512 = 2  # org.apache.kafka.clients.admin.ScramMechanism
_ANY = 1  # ResourceType / PatternType / Operation / Permission ANY, for filters


class AlterUserScramCredentialsResponse_v0(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


AlterUserScramCredentialsStruct: TypeAlias = AlterUserScramCredentialsRequest_v0


class AlterUserScramCredentialsRequest(Request[AlterUserScramCredentialsStruct]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsert: Mapping[str, str], delete: Iterable[str] = ()) -> None:
        self._upsert = dict(upsert)
        self._delete = list(delete)

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsStruct]
    ) -> AlterUserScramCredentialsStruct:
        upsertions: list[tuple[Any, ...]] = []
        for name, password in self._upsert.items():
            salt = secrets.token_bytes(32)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
            upsertions.append((name, _SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {}))
        deletions: list[tuple[Any, ...]] = [(name, _SCRAM_SHA_512, {}) for name in self._delete]
        return request_struct_class(deletions, upsertions, {})


@dataclass(frozen=True)
class AclReport:
    users: list[str]
    acls_created: int
    acls_removed: int


async def _send(admin: AIOKafkaAdminClient, request: Request[Any]) -> Any:
    # The controller answers ACL and credential changes; any broker forwards them (KRaft).
    return await admin._send_request(request)  # aiokafka exposes no public send


async def set_scram_users(
    admin: AIOKafkaAdminClient, users: Mapping[str, str], delete: Iterable[str] = ()
) -> None:
    """Create or replace SCRAM-SHA-512 credentials (name -> password); delete the users in `delete`."""
    if not users and not delete:
        return
    response = await _send(admin, AlterUserScramCredentialsRequest(users, delete))
    for user, error_code, error_message, _tags in response.results:
        # 91 RESOURCE_NOT_FOUND: deleting a credential that does not exist is already done.
        if error_code and error_code != 91:
            raise for_code(error_code)(f"SCRAM credential of {user}: {error_message}")


def _principal(name: str) -> str:
    return f"User:{name}"


def _entry(acl: Acl, principal: str) -> tuple[int, str, int, str, str, int, int]:
    """The fields of an ALLOW ACL for the principal from any host, as CreateAcls and DeleteAcls both take them."""
    return (
        int(acl.resource_type),
        acl.name,
        int(acl.pattern),
        _principal(principal),
        "*",
        int(acl.operation),
        ALLOW,
    )


async def create_acls(admin: AIOKafkaAdminClient, principal: str, acls: Iterable[Acl]) -> int:
    """Allow each ACL for the principal from any host; creating an existing ACL is not an error."""
    count = 0
    for acl in acls:
        request = CreateAclsRequest(*_entry(acl, principal))
        response = await _send(admin, request)
        for error_code, error_message in response.creation_responses:
            if error_code:
                raise for_code(error_code)(f"ACL {acl.describe()} for {principal}: {error_message}")
        count += 1
    return count


async def acls_of(admin: AIOKafkaAdminClient, principal: str) -> set[Acl]:
    """The ALLOW ACLs the broker holds for a principal."""
    request = DescribeAclsRequest(_ANY, None, _ANY, _principal(principal), None, _ANY, ALLOW)
    response = await _send(admin, request)
    if response.error_code:
        raise for_code(response.error_code)(f"describe ACLs of {principal}: {response.error_message}")
    out: set[Acl] = set()
    for resource_type, name, pattern, entries in response.resources:
        for _principal_name, _host, operation, _permission in entries:
            out.add(Acl(ResourceType(resource_type), name, PatternType(pattern), Operation(operation)))
    return out


async def delete_acls(admin: AIOKafkaAdminClient, principal: str, acls: Iterable[Acl]) -> int:
    """Remove exactly these ACLs of the principal."""
    count = 0
    for acl in acls:
        request = DeleteAclsRequest(*_entry(acl, principal))
        response = await _send(admin, request)
        for error_code, error_message, *_ in response.filter_responses:
            if error_code:
                raise for_code(error_code)(f"delete ACL {acl.describe()} of {principal}: {error_message}")
        count += 1
    return count


async def converge(admin: AIOKafkaAdminClient, principal: str, wanted: Iterable[Acl]) -> tuple[int, int]:
    """Make the principal's ACLs exactly `wanted` (an ACL dropped from the list is removed from the broker)."""
    want = set(wanted)
    have = await acls_of(admin, principal)
    created = await create_acls(admin, principal, sorted(want - have))
    removed = await delete_acls(admin, principal, sorted(have - want))
    return created, removed


async def apply_principals(
    bootstrap_servers: str, principals: Iterable[Principal], passwords: Mapping[str, str]
) -> AclReport:
    """Every principal's SCRAM user (password from `passwords`) and exactly its ACLs."""
    wanted = list(principals)
    admin = admin_client(bootstrap_servers)
    await admin.start()
    try:
        await set_scram_users(admin, {p.name: passwords[p.name] for p in wanted})
        created = removed = 0
        for p in wanted:
            c, r = await converge(admin, p.name, p.acls)
            created += c
            removed += r
    finally:
        await admin.close()
    log.info(
        "kafka_principals_applied", users=[p.name for p in wanted], acls_created=created, acls_removed=removed
    )
    return AclReport([p.name for p in wanted], created, removed)


async def put_user(bootstrap_servers: str, principal: Principal, password: str) -> None:
    """Create or rotate one user (new password at once: the old one stops working) with exactly its ACLs."""
    admin = admin_client(bootstrap_servers)
    await admin.start()
    try:
        await set_scram_users(admin, {principal.name: password})
        await converge(admin, principal.name, principal.acls)
    finally:
        await admin.close()


async def remove_user(bootstrap_servers: str, name: str) -> None:
    """Delete a user's credentials and every ACL it had."""
    admin = admin_client(bootstrap_servers)
    await admin.start()
    try:
        await set_scram_users(admin, {}, delete=[name])
        await delete_acls(admin, name, await acls_of(admin, name))
    finally:
        await admin.close()
