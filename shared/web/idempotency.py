"""`Idempotency-Key` on POST: the same key and body replay the first response; another body is a 422.

Why the response is stored in the effect's own transaction (issue 13): the middleware used to claim the key in
one transaction, let the endpoint commit its effect in a second, and store the response in a third *after* the
client had it, so a retry sent right after the first 201 found the claim without a response (409), and a crash
between the effect's commit and the store left an effect whose key answered 409 for ever.

Now one database transaction, on one connection, carries the whole keyed request:

1. the middleware opens it and takes a transaction-scoped advisory lock on (caller, key) without waiting; if
   another request holds it, the first request with this key is still running: 409 with `Retry-After`;
2. under the lock it reads the stored response: there is one → replay it (`Idempotent-Replayed: true`), or 422
   when it was stored for another request;
3. otherwise the route runs; its session (`shared.web.deps.get_session`) joins this transaction through a
   savepoint, so the service's single commit releases the savepoint and makes nothing visible yet;
4. the response is held back, stored in the same transaction, and the transaction commits; only then does the
   client get the response.

So the effect and its stored response become visible together or not at all: a crash (or a 5xx, which is not
stored) before the commit leaves neither, and the retry does the work once; once a client has seen a response,
every replay returns it byte for byte. A commit that fails after the route ran is answered 503 with
`Retry-After`: the retry with the same key either replays (the commit did happen) or runs again (it did not);
a database that cannot be reached for the lookup is the same 503 (nothing ran).
The advisory lock is released by that same commit, and a new statement's snapshot sees the committed row, so a
retry sent the moment the response arrives replays instead of colliding.

Work a route starts in its own sessions (the registry's import worker, woken by a large upload) is not part of
this transaction; the worker finds the job once this commit makes it visible. A request whose session was
replaced (the tests' rolled-back session) keeps its own transaction; the stored response still commits before
the client sees it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import DomainError
from shared.logging import get_logger
from shared.web.problems import PROBLEM_BASE, PROBLEM_JSON

log = get_logger(__name__)

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotent-replayed"
# A key is an opaque token the client generates (a UUID is 36 characters); 255 visible ASCII characters is
# plenty and keeps a stored row small. Longer or non-printable keys are refused (400), never silently ignored.
KEY_MAX_LENGTH = 255
# The one rule for a key, both what the middleware accepts and the OpenAPI parameter's schema: a present but
# empty key is malformed too (400), never read as "no key" (issue 13: schemathesis sent "" and got a 201).
KEY_PATTERN = rf"^[!-~]{{1,{KEY_MAX_LENGTH}}}$"
_KEY = re.compile(KEY_PATTERN)
# The first request of a keyed POST usually finishes in well under a second; a duplicate sent meanwhile is told
# to come back after one (RFC 9110 §10.2.3, delay-seconds).
RETRY_AFTER_SECONDS = 1
# The two-key advisory lock space (class, object) keeps these locks apart from the single-key sweep locks.
LOCK_CLASS = 0x1DE4
# The scope key under which the middleware hands its open connection to the route's session.
CONNECTION_SCOPE_KEY = "kencana.idempotency.connection"
# Headers that belong to one delivery, not to the response: never stored, so a replay gets its own.
_NOT_STORED = (b"x-request-id", b"content-length", b"date", b"server")


def changes_nothing() -> None:
    """Marks a POST that changes nothing: it takes no `Idempotency-Key` (see `READ_ONLY_POST`)."""


# A POST that only computes or looks up (anthropometry:score, persons:search: POST so that the batch or the NIK
# stays out of URLs and logs) is safe to send again as it is, so a key would buy nothing; storing its answer
# would keep a copy of a 4 MiB score batch, or of the persons a NIK search found, outside the registry's
# retention and erasure. Such a route does not declare the header and the middleware leaves it alone.
READ_ONLY_POST = Depends(changes_nothing)


def _calls(dependant: Dependant) -> Iterator[object]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def read_only_posts(routes: Sequence[Any]) -> list[tuple[str, re.Pattern[str]]]:
    """(path template, path regex) of every POST route marked `READ_ONLY_POST`."""
    found = []
    for context in iter_route_contexts(routes):
        route, dependant = context.original_route, getattr(context, "dependant", None)
        if not isinstance(route, APIRoute) or dependant is None or "POST" not in (context.methods or ()):
            continue
        if any(call is changes_nothing for call in _calls(dependant)):
            found.append((context.path_format or "", context.path_regex))
    return found


def _key_is_valid(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def idempotency_table(metadata: MetaData) -> Table:
    """Stored first responses, per caller and key (a row is only ever written with its response)."""
    return Table(
        "idempotency_key",
        metadata,
        Column("subject", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("request_hash", Text, nullable=False),
        # Nullable only for rows of the earlier two-step claim; rows written now always carry the response.
        Column("status", Integer),
        Column("response_headers", JSONB),
        Column("response_body", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def held_connection(scope: Scope) -> AsyncConnection | None:
    """The connection of the keyed request's transaction, for the route's session to join (None otherwise)."""
    connection: AsyncConnection | None = scope.get(CONNECTION_SCOPE_KEY)
    return connection


def lock_id(subject: str, key: str) -> int:
    """A signed 32-bit advisory lock object id for (caller, key); a collision only makes a duplicate wait."""
    digest = hashlib.sha256(subject.encode() + b"\x00" + key.encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


async def _problem(
    send: Send, status: int, code: str, title: str, detail: str, *, retry_after: int | None = None
) -> None:
    body = orjson.dumps(
        {
            "type": PROBLEM_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "errors": [{"field": "header.Idempotency-Key", "rule": code, "message": detail}],
        }
    )
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _in_progress(send: Send) -> None:
    await _problem(
        send,
        409,
        "idempotency-key-in-progress",
        "Request in progress",
        "the first request with this Idempotency-Key is still being processed; retry after a moment",
        retry_after=RETRY_AFTER_SECONDS,
    )


async def _unavailable(send: Send) -> None:
    await _problem(
        send,
        503,
        "idempotency-commit-failed",
        "Could not complete the request",
        "the request could not be completed; send it again with the same Idempotency-Key",
        retry_after=RETRY_AFTER_SECONDS,
    )


async def _replay(send: Send, stored: Any) -> None:
    body: bytes = stored.response_body or b""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.response_headers]
    headers += [(b"content-length", str(len(body)).encode()), (REPLAYED_HEADER, b"true")]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    """Runs a keyed POST in one transaction with its stored response, and replays that response.

    The key is scoped to the verified token subject, so one caller cannot read another's responses. A key whose
    first request is still running answers 409 with `Retry-After`; 5xx responses are not stored (and their
    effects are rolled back), so they can be retried.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._read_only: list[re.Pattern[str]] | None = None

    def _is_read_only(self, scope: Scope) -> bool:
        # Read on the first keyed request: every router is included by then (the app factory has returned).
        if self._read_only is None:
            self._read_only = [regex for _, regex in read_only_posts(scope["app"].routes)]
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return any(regex.match(path) for regex in self._read_only)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        key_raw = headers.get(HEADER)
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or key_raw is None
            or self._is_read_only(scope)
        ):
            await self.app(scope, receive, send)
            return
        key = key_raw.decode("latin-1").strip()
        app_state = scope["app"].state
        subject = await _subject(app_state, headers.get(b"authorization", b"").decode("latin-1"))
        if subject is None:
            await self.app(scope, receive, send)  # unauthenticated: the endpoint answers 401 itself
            return
        if not _key_is_valid(key):
            await _problem(
                send,
                400,
                "idempotency-key-invalid",
                "Idempotency-Key is not valid",
                f"an Idempotency-Key is 1 to {KEY_MAX_LENGTH} visible ASCII characters",
            )
            return

        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        digest = hashlib.sha256(
            scope["method"].encode()
            + b" "
            + scope.get("raw_path", b"")
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()
        engine: AsyncEngine = app_state.engine
        table: Table = app_state.idempotency_table
        where = (table.c.subject == subject, table.c.key == key)

        answered = False

        async def answer(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        messages: list[Message] = []
        try:
            async with engine.connect() as connection:
                await connection.begin()
                locked = (
                    await connection.execute(
                        select(func.pg_try_advisory_xact_lock(LOCK_CLASS, lock_id(subject, key)))
                    )
                ).scalar_one()
                if not locked:
                    await connection.rollback()
                    await _in_progress(answer)
                    return
                stored = (
                    await connection.execute(
                        select(
                            table.c.request_hash,
                            table.c.status,
                            table.c.response_headers,
                            table.c.response_body,
                        ).where(*where)
                    )
                ).first()
                if stored is not None:
                    await connection.rollback()
                    if stored.request_hash != digest:
                        await _problem(
                            answer,
                            422,
                            "idempotency-key-reused",
                            "Idempotency-Key reused",
                            "this Idempotency-Key was used with a different request",
                        )
                    elif stored.status is None:
                        await _in_progress(answer)  # a claim of the earlier two-step scheme, still running
                    else:
                        await _replay(answer, stored)
                    return

                messages = await self._run(scope, body, receive, connection)
                start = messages[0] if messages and messages[0]["type"] == "http.response.start" else None
                if start is None or start["status"] >= 500:
                    await connection.rollback()  # nothing of a failed request stays, so its retry runs again
                else:
                    try:
                        await connection.execute(
                            insert(table).values(
                                subject=subject,
                                key=key,
                                request_hash=digest,
                                status=start["status"],
                                response_headers=[
                                    (k.decode("latin-1"), v.decode("latin-1"))
                                    for k, v in start.get("headers", [])
                                    if k.lower() not in _NOT_STORED
                                ],
                                response_body=b"".join(m.get("body", b"") for m in messages[1:]),
                            )
                        )
                        await connection.commit()
                    except SQLAlchemyError as exc:
                        # The outcome of a failed COMMIT is unknown to us; the same key settles it on retry.
                        log.warning("idempotency_commit_failed", error_type=type(exc).__name__)
                        await _unavailable(answer)
                        return
        except (SQLAlchemyError, OSError) as exc:
            if answered:
                raise
            # The database could not be reached or failed: nothing was committed, so the retry is safe.
            log.warning("idempotency_database_failed", error_type=type(exc).__name__)
            await _unavailable(send)
            return
        for message in messages:
            await send(message)

    async def _run(
        self, scope: Scope, body: bytes, receive: Receive, connection: AsyncConnection
    ) -> list[Message]:
        """Run the route inside the held transaction; its response messages are kept, not sent."""
        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        scope[CONNECTION_SCOPE_KEY] = connection
        try:
            await self.app(scope, replay_receive, hold)
        finally:
            scope.pop(CONNECTION_SCOPE_KEY, None)
        return messages


async def _subject(app_state: Any, authorization: str) -> str | None:
    if not authorization.lower().startswith("bearer "):
        return None
    try:
        principal = await app_state.token_verifier.verify(authorization[7:].strip())
    except DomainError:
        return None
    return str(principal.sub)


IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A key you generate per logical operation (a UUID) and keep for its retries: the same key and request "
        "return the first response (with `Idempotent-Replayed: true`) without doing the work again; the same key "
        "with another request is 422; while the first request with the key still runs, 409 with `Retry-After`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
}
_REPLAYED = {
    "description": "`true` when this is the stored first response to a request with the same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}
_RETRY_AFTER = {
    "description": "Seconds to wait before sending the request again with the same Idempotency-Key",
    "schema": {"type": "integer", "minimum": 0},
}
_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
# Answers given before this middleware runs (token, scopes, rate limit, body size): never stored or replayed.
_NEVER_REPLAYED = {"401", "403", "413", "429"}


def document_idempotency(schema: dict[str, Any], routes: Sequence[Any]) -> int:
    """Declare `Idempotency-Key`, its 409/400/503 answers and `Idempotent-Replayed` on every POST; how many.

    Not on the read-only POSTs (`READ_ONLY_POST`): the header is declared exactly where it is honoured.
    """
    read_only = {path for path, _ in read_only_posts(routes)}
    documented = 0
    for path, item in schema.get("paths", {}).items():
        operation = item.get("post")
        if operation is None or "operations" in operation.get("tags", []) or path in read_only:
            continue  # the public health and metrics operations take no token, so no key either
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters):
            parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        responses = operation.setdefault("responses", {})
        for code, response in responses.items():
            if code not in _NEVER_REPLAYED and code[:1] in "234":
                response.setdefault("headers", {})["Idempotent-Replayed"] = _REPLAYED
        conflict = responses.setdefault(
            "409", {"description": "Conflicts with existing data", "content": _PROBLEM_CONTENT}
        )
        conflict["description"] = (
            conflict["description"].rstrip(".")
            + "; or `idempotency-key-in-progress`: the first request with this Idempotency-Key is still running "
            "(retry after `Retry-After` seconds)"
        )
        conflict.setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
        responses.setdefault(
            "400", {"description": "Bad request (problem+json)", "content": _PROBLEM_CONTENT}
        )
        responses["400"]["description"] += (
            "; `idempotency-key-invalid`: not 1 to 255 visible ASCII characters"
        )
        unavailable = responses.setdefault(
            "503",
            {
                "description": "`idempotency-commit-failed`: the database failed while the keyed request was "
                "looked up or committed; send it again with the same Idempotency-Key (it runs at most once)",
                "content": _PROBLEM_CONTENT,
            },
        )
        unavailable.setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
        documented += 1
    return documented
