"""A database that is restarting, full or read-only answers 503 problem+json with Retry-After, never 500
(issue 14, scenarios 9 and 11); a bug still answers 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.db import database_unavailable
from shared.web.middleware import UnhandledErrorMiddleware


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("INSERT ...", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.DiskFullError("could not extend file: No space left on device"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        ConnectionRefusedError(111, "Connect call failed"),
        _wrapped(asyncpg.exceptions.AdminShutdownError("terminating")),
        _wrapped(Exception("whatever the driver said"), invalidated=True),
    ],
    ids=lambda e: type(e).__name__,
)
def test_unavailable(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        KeyError("x"),
        IntegrityError("INSERT ...", {}, asyncpg.exceptions.UniqueViolationError("duplicate key")),
        asyncpg.exceptions.UndefinedColumnError("column does not exist"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_not_unavailable(error: BaseException) -> None:
    assert not database_unavailable(error)


def _app(error: BaseException) -> Starlette:
    async def endpoint(request: Request) -> Response:
        raise error

    # As in the services' apps: inside Starlette's own last-resort handler.
    return Starlette(
        routes=[Route("/v1/x", endpoint, methods=["POST"])], middleware=[Middleware(UnhandledErrorMiddleware)]
    )


async def test_database_restart_is_503_problem_with_retry_after() -> None:
    error = _wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(error)), base_url="http://t"
    ) as client:
        r = await client.post("/v1/x")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "2"
    assert r.json()["type"].endswith("/database-unavailable")


async def test_a_bug_is_still_500() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(ValueError("bug"))), base_url="http://t"
    ) as client:
        r = await client.post("/v1/x")
    assert r.status_code == 500
    assert "retry-after" not in r.headers
