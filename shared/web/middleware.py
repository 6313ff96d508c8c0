"""Pure ASGI middleware: request/correlation id, body size limit, HTTP metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.db import database_unavailable
from shared.logging import get_logger
from shared.web.context import reset_correlation_id, set_correlation_id
from shared.web.problems import PROBLEM_BASE, PROBLEM_JSON

REQUEST_ID_HEADER = b"x-request-id"
# A PostgreSQL fast restart or crash recovery takes a few seconds on the development machine.
DATABASE_RETRY_AFTER_SECONDS = 2
log = get_logger(__name__)


class RequestContextMiddleware:
    """Takes or makes `X-Request-ID`, binds it to logs and events, echoes it back, records metrics."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")[:128]
        request_id = raw if raw and raw.replace("-", "").isalnum() else str(uuid.uuid4())
        token = set_correlation_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status_holder: dict[str, int] = {"status": 500}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(
                self.service, scope.get("method", ""), path, status_holder["status"]
            ).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")
            reset_correlation_id(token)


class UnhandledErrorMiddleware:
    """Turns any uncaught exception into a 500 problem+json; the trace goes to the (redacted) log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # The database restarting, failing over, full or read-only is not a bug: 503 with Retry-After, and
            # the request's transaction was rolled back (nothing half-written); the client retries it with the
            # same Idempotency-Key.
            unavailable = database_unavailable(exc)
            if unavailable:
                log.warning("database_unavailable", path=scope.get("path"), error_type=type(exc).__name__)
            else:
                log.error(
                    "unhandled_error", path=scope.get("path"), error_type=type(exc).__name__, exc_info=exc
                )
            if started:
                return  # nothing more can be said to this client
            status = 503 if unavailable else 500
            body = orjson.dumps(
                {
                    "type": PROBLEM_BASE + "database-unavailable",
                    "title": "Service unavailable",
                    "status": 503,
                    "detail": "The database is not available right now; retry after the given seconds.",
                }
                if unavailable
                else {
                    "type": PROBLEM_BASE + "internal-error",
                    "title": "Internal error",
                    "status": 500,
                    "detail": "An unexpected error occurred; it has been logged.",
                }
            )
            headers = [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            if unavailable:
                headers.append((b"retry-after", str(DATABASE_RETRY_AFTER_SECONDS).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Refuses bodies over the limit with 413, by Content-Length and while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Path prefixes with their own limit (bulk imports take larger files).
        self.overrides = overrides or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_413(send, limit)
            return
        received = 0
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the app the client went away, so it stops reading.
                    if not answered:
                        answered = True
                        await _send_413(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _send_413(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + "payload-too-large",
        "title": "Request body too large",
        "status": 413,
        "detail": f"The request body exceeds {limit} bytes.",
    }
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
