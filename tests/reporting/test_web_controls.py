"""Issue 12 items 5 and 6 on reporting: token before preconditions, per-client limits, CORS, headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from reporting.config import Settings
from reporting.main import create_app

from shared.testing.plugin import bearer, migrated_database, running_app
from tests.shared.web_controls import (
    ALLOWED_ORIGIN,
    assert_cors_allowed,
    assert_no_cors,
    assert_security_headers,
    burst,
    preflight,
    refused_before_anything_else,
    settings_for_controls,
)

pytestmark = pytest.mark.integration
READ = "reporting:read"
LIST = "/v1/indicators?period=2026-11"


@pytest.fixture
async def plain() -> AsyncIterator[httpx.AsyncClient]:
    """The API with its default settings and no default headers."""
    async with running_app(create_app(Settings(database_url=await migrated_database("reporting")))) as c:
        yield c


@pytest.fixture
async def limited() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=await migrated_database("reporting"), **settings_for_controls())
    async with running_app(create_app(settings)) as c:
        yield c


async def test_every_operation_asks_for_the_token_before_anything_else(plain: httpx.AsyncClient) -> None:
    counts = await refused_before_anything_else(plain)
    # Reporting only reads (3 operations); its token check already came first.
    assert sum(counts.values()) >= 3, counts


async def test_300_requests_with_one_token_then_429_and_another_client_is_unaffected(
    limited: httpx.AsyncClient,
) -> None:
    await burst(limited, LIST, bearer(READ, sub="partner-a"), budget=100)
    other = await limited.get(LIST, headers=bearer(READ, sub="partner-b"))
    assert other.status_code == 200 and other.headers["ratelimit-remaining"] == "99"
    for path in ("/healthz", "/metrics"):
        r = await limited.get(path)
        assert r.status_code == 200 and "ratelimit-limit" not in r.headers


async def test_cors_preflight_and_security_headers(
    plain: httpx.AsyncClient, limited: httpx.AsyncClient
) -> None:
    refused = await preflight(plain, LIST, ALLOWED_ORIGIN, "GET")
    assert refused.status_code == 403
    assert_no_cors(refused)
    assert_no_cors(await preflight(limited, LIST, "https://evil.example", "GET"))
    assert_cors_allowed(
        await preflight(limited, "/v1/indicators", ALLOWED_ORIGIN, "GET"), ALLOWED_ORIGIN, "GET"
    )
    r = await limited.get(LIST, headers={**bearer(READ), "Origin": ALLOWED_ORIGIN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert_security_headers(r)
    assert_security_headers(await limited.get(LIST))
