"""Issue 12 items 5 and 6 on the registry: token before preconditions, per-client limits, CORS, headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from registry.config import Settings
from registry.main import create_app
from sqlalchemy.ext.asyncio import AsyncSession

from shared.testing.plugin import running_app
from tests.registry.conftest import auth, create_family
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


@pytest.fixture
async def limited(registry_url: str, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=registry_url, **settings_for_controls(rate_limit_search="5/minute"))
    async with running_app(create_app(settings), session) as c:
        yield c


async def test_every_operation_asks_for_the_token_before_anything_else(client: httpx.AsyncClient) -> None:
    # Before, a caller without a token got 428 (If-Match) from 12 of the 48 operations when it sent a JSON
    # body, and 422 from 19 (2 more 428s) when the body was not JSON.
    counts = await refused_before_anything_else(client)
    assert sum(counts.values()) >= 48 and counts["PATCH"] >= 3 and counts["DELETE"] >= 2, counts


async def test_300_requests_with_one_token_then_429_and_another_client_is_unaffected(
    limited: httpx.AsyncClient,
) -> None:
    reader = auth("registry:read", sub="partner-a")
    await burst(limited, "/v1/kampung-kb", reader, budget=100)
    other = await limited.get("/v1/kampung-kb", headers=auth("registry:read", sub="partner-b"))
    assert other.status_code == 200 and other.headers["ratelimit-remaining"] == "99"
    # Health and metrics are not limited, and say nothing about budgets.
    for path in ("/healthz", "/metrics"):
        r = await limited.get(path)
        assert r.status_code == 200 and "ratelimit-limit" not in r.headers


async def test_nik_search_has_its_own_tighter_budget(limited: httpx.AsyncClient) -> None:
    searcher = {**auth("registry:read registry:nik:search", sub="guesser"), "X-Purpose": "guessing"}
    statuses = []
    for n in range(8):
        r = await limited.post("/v1/persons:search", json={"nik": f"157101450520{n:04d}"}, headers=searcher)
        statuses.append(r.status_code)
    # 5 searches a minute: the 6th guess is refused, naming the budget it spent.
    assert statuses == [200] * 5 + [429] * 3
    assert r.json()["budget"] == "search" and int(r.headers["retry-after"]) >= 1
    # The same client's other reads still have their default budget (100 - 8 spent by the searches).
    listed = await limited.get("/v1/persons", headers=searcher)
    assert listed.status_code == 200 and listed.headers["ratelimit-remaining"] == "91"


async def test_cors_preflight(client: httpx.AsyncClient, limited: httpx.AsyncClient) -> None:
    # Nothing is allowed by default: no Access-Control-* header at all (before this, a preflight got 405).
    refused = await preflight(client, "/v1/families", ALLOWED_ORIGIN)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert_no_cors(refused)
    assert_no_cors(await preflight(limited, "/v1/families", "https://evil.example"))
    assert_cors_allowed(await preflight(limited, "/v1/families", ALLOWED_ORIGIN), ALLOWED_ORIGIN)
    assert_cors_allowed(
        await preflight(limited, "/v1/persons/x", ALLOWED_ORIGIN, method="PATCH"), ALLOWED_ORIGIN, "PATCH"
    )


async def test_personal_data_is_never_cached_and_carries_the_security_headers(
    limited: httpx.AsyncClient,
) -> None:
    family: dict[str, Any] = await create_family(limited)
    person = family["members"][0]["id"]
    r = await limited.get(f"/v1/persons/{person}", headers={**auth(region=None), "Origin": ALLOWED_ORIGIN})
    assert r.status_code == 200 and r.json()["name"]
    assert_security_headers(r)
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "ratelimit-remaining" in r.headers["access-control-expose-headers"].lower()
    # An error and a refused request carry them too.
    assert_security_headers(await limited.get(f"/v1/persons/{person}"))
    assert_security_headers(await limited.get("/v1/no-such-thing"))
