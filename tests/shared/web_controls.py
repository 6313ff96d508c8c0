"""Checks of the web controls (issue 12 items 5 and 6) that every service's tests run against its own app."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from shared.testing.plugin import bearer

PROBLEM = "application/problem+json"
WRITE_METHODS = {"post", "put", "patch", "delete"}
# Operations tagged `operations` are the public health, readiness and metrics endpoints.
PUBLIC_TAG = "operations"
SOME_ID = "00000000-0000-4000-8000-000000000000"
ALLOWED_ORIGIN = "https://kader.bkkbn.example"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


async def operations(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every (method, path) of the service's OpenAPI except the public operations ones."""
    spec = (await client.get("/openapi.json")).json()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"} and PUBLIC_TAG not in operation.get(
                "tags", []
            ):
                found.append((method.upper(), path))
    return found


def concrete(path: str) -> str:
    """The path with every `{param}` filled: the guard answers before the parameter is looked at."""
    out = []
    for part in path.split("/"):
        out.append(SOME_ID if part.startswith("{") and part.endswith("}") else part)
    return "/".join(out)


async def refused_before_anything_else(client: httpx.AsyncClient) -> dict[str, int]:
    """Send every operation a request that breaks every precondition and validation rule at once.

    The body is not JSON, If-Match and X-Purpose are missing, the Idempotency-Key is there (a replay would be
    looked up first if the key were checked before the token). Without a token and with a malformed one the
    answer must be 401, with a token that holds no scope 403 — never 404, 412, 422 or 428. Returns how many
    operations were checked, per method, for docs/security.md.
    """
    nobody = bearer("openid")  # a valid token without any of the services' scopes
    sent = {"content-type": "application/json", "idempotency-key": "k-" + SOME_ID}
    counts: dict[str, int] = {}
    for method, path in await operations(client):
        url = concrete(path)
        for label, auth in (("none", {}), ("malformed", {"Authorization": "Bearer not.a.jwt"})):
            r = await client.request(method, url, content=b"{not json", headers={**sent, **auth})
            assert r.status_code == 401, (label, method, path, r.status_code, r.text)
            assert r.headers["content-type"] == PROBLEM and r.headers["www-authenticate"] == "Bearer"
        r = await client.request(method, url, content=b"{not json", headers={**sent, **nobody})
        assert r.status_code == 403, ("no scope", method, path, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM
        counts[method] = counts.get(method, 0) + 1
    return counts


async def burst(
    client: httpx.AsyncClient, url: str, token: dict[str, str], budget: int, requests: int = 300
) -> list[httpx.Response]:
    """`requests` quick requests with one token: the first `budget` pass, every later one is a 429."""
    responses = [await client.get(url, headers=token) for _ in range(requests)]
    statuses = [r.status_code for r in responses]
    assert statuses[:budget] == [200] * budget, statuses[:budget]
    assert statuses[budget:] == [429] * (requests - budget), statuses[budget:]
    # The remaining budget counts down on the answers that passed, and is 0 on the refused ones.
    assert [int(r.headers["ratelimit-remaining"]) for r in responses[:budget]] == list(
        range(budget - 1, -1, -1)
    )
    for refused in responses[budget:]:
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["status"] == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-limit"] == str(budget)
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["ratelimit-policy"] == f"{budget};w=60"
    return responses


async def wait_for_refill(
    client: httpx.AsyncClient, url: str, token: dict[str, str], retry_after: int, deadline: float = 8.0
) -> float:
    """After Retry-After seconds the budget has room again; returns the seconds waited (deadline bounded)."""
    started = time.monotonic()
    await asyncio.sleep(retry_after)
    while True:
        r = await client.get(url, headers=token)
        if r.status_code == 200:
            return time.monotonic() - started
        assert r.status_code == 429
        assert time.monotonic() - started < deadline, "the budget did not refill"
        await asyncio.sleep(0.1)


async def preflight(
    client: httpx.AsyncClient, path: str, origin: str, method: str = "POST"
) -> httpx.Response:
    return await client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )


def assert_no_cors(response: httpx.Response) -> None:
    assert not [h for h in response.headers if h.lower().startswith("access-control-")], response.headers


def assert_cors_allowed(response: httpx.Response, origin: str, method: str = "POST") -> None:
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin
    assert method in response.headers["access-control-allow-methods"].split(", ")
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "idempotency-key"} <= allowed
    assert "access-control-allow-credentials" not in response.headers


def assert_security_headers(response: httpx.Response, *, hsts: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "server" not in response.headers
    assert ("strict-transport-security" in response.headers) is hsts


def settings_for_controls(**over: Any) -> dict[str, Any]:
    """Settings of a service app under test: a budget small enough to spend in a test, one allowed origin."""
    return {"rate_limit_default": "100/minute", "cors_allow_origins": [ALLOWED_ORIGIN], **over}
