"""`Idempotency-Key` on POST: the same key and body replay the first response; another body is a 422."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table, Text, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import DomainError
from shared.web.problems import PROBLEM_BASE, PROBLEM_JSON

HEADER = b"idempotency-key"
# A key is an opaque token the client generates (a UUID is 36 characters); 255 visible ASCII characters is
# plenty and keeps a stored row small. Longer or non-printable keys are refused (400), never silently ignored.
KEY_MAX_LENGTH = 255


def _key_is_valid(key: str) -> bool:
    return 0 < len(key) <= KEY_MAX_LENGTH and all("!" <= ch <= "~" for ch in key)


def idempotency_table(metadata: MetaData) -> Table:
    """Stored first responses, per caller and key."""
    return Table(
        "idempotency_key",
        metadata,
        Column("subject", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("request_hash", Text, nullable=False),
        Column("status", Integer),
        Column("response_headers", JSONB),
        Column("response_body", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def _problem(send: Send, status: int, code: str, title: str, detail: str) -> None:
    body = orjson.dumps(
        {
            "type": PROBLEM_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "errors": [{"field": "header.Idempotency-Key", "rule": code, "message": detail}],
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    """Stores the first response of a keyed POST and replays it.

    The key is scoped to the verified token subject, so one caller cannot read another's responses. A key
    whose first request is still running answers 409; 5xx responses are not stored, so they can be retried.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        key_raw = headers.get(HEADER)
        if scope["type"] != "http" or scope.get("method") != "POST" or not key_raw:
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
        sessionmaker: async_sessionmaker[AsyncSession] = app_state.sessionmaker
        table: Table = app_state.idempotency_table

        async with sessionmaker() as session, session.begin():
            inserted = (
                await session.execute(
                    insert(table)
                    .values(subject=subject, key=key, request_hash=digest)
                    .on_conflict_do_nothing()
                    .returning(table.c.key)
                )
            ).first()
            existing = None
            if inserted is None:
                existing = (
                    await session.execute(select(table).where(table.c.subject == subject, table.c.key == key))
                ).first()
        if existing is not None:
            if existing.request_hash != digest:
                await _problem(
                    send,
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "this Idempotency-Key was used with a different request",
                )
                return
            if existing.status is None:
                await _problem(
                    send,
                    409,
                    "idempotency-key-in-progress",
                    "Request in progress",
                    "the first request with this Idempotency-Key is still being processed",
                )
                return
            stored_headers = [(k.encode(), v.encode()) for k, v in existing.response_headers]
            await send(
                {
                    "type": "http.response.start",
                    "status": existing.status,
                    "headers": [*stored_headers, (b"idempotent-replayed", b"true")],
                }
            )
            await send({"type": "http.response.body", "body": existing.response_body or b""})
            return

        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"x-request-id", b"content-length", b"date", b"server")
                ]
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            async with sessionmaker() as session, session.begin():
                if captured["status"] >= 500:
                    await session.execute(delete(table).where(table.c.subject == subject, table.c.key == key))
                else:
                    await session.execute(
                        table.update()
                        .where(table.c.subject == subject, table.c.key == key)
                        .values(
                            status=captured["status"],
                            response_headers=captured["headers"],
                            response_body=b"".join(captured["body"]),
                        )
                    )


async def _subject(app_state: Any, authorization: str) -> str | None:
    if not authorization.lower().startswith("bearer "):
        return None
    try:
        principal = await app_state.token_verifier.verify(authorization[7:].strip())
    except DomainError:
        return None
    return str(principal.sub)
