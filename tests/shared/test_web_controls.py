"""The web kit's guard, rate limits, CORS and security headers (issue 12 items 5 and 6), on a probe app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI

from shared.auth import Principal, current_principal, ensure_dev_keys, require_scopes
from shared.config import REPO_ROOT, ServiceSettings
from shared.testing.plugin import bearer, running_app
from shared.web.app import create_service_app
from shared.web.etag import IfMatch, check_version
from shared.web.ratelimit import PERSONAL_DATA_SEARCH, ClientLimiter, spends
from shared.web.schemas import ApiInput
from shared.web.security import API_CSP, DOCS_CSP
from tests.shared.conftest import idempotency
from tests.shared.web_controls import (
    ALLOWED_ORIGIN,
    PROBLEM,
    assert_cors_allowed,
    assert_no_cors,
    assert_security_headers,
    burst,
    preflight,
    wait_for_refill,
)

pytestmark = pytest.mark.integration


class Thing(ApiInput):
    label: str


def probe_app(db_url: str = "postgresql+asyncpg://nobody@127.0.0.1:1/none", **over: Any) -> FastAPI:
    """Endpoints shaped like the services' own: a precondition declared before the token, a body, a search."""
    router = APIRouter(prefix="/v1")

    @router.get("/things")
    async def things(_: object = require_scopes("probe:read")) -> dict[str, str]:
        return {"ok": "yes"}

    @router.patch("/things/{thing_id}")
    async def update_thing(
        thing_id: int,
        version: IfMatch,  # declared first, as twelve registry updates did
        body: Thing,
        _: object = require_scopes("probe:write"),
    ) -> dict[str, Any]:
        check_version(version, 1)
        return {"id": thing_id, "version": 2, "label": body.label}

    @router.post("/things:search", dependencies=[PERSONAL_DATA_SEARCH])
    async def search(body: Thing, _: object = require_scopes("probe:read")) -> dict[str, str]:
        return {"found": body.label}

    @router.get("/pii")
    async def pii(_: object = require_scopes("probe:read", "probe:pii")) -> dict[str, str]:
        return {"nik": "masked"}

    @router.get("/me")
    async def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
        return {"sub": principal.sub, "region": principal.region, "scopes": sorted(principal.scopes)}

    @router.get("/boom")
    async def boom(_: object = require_scopes("probe:read")) -> None:
        raise RuntimeError("a bug")

    settings = ServiceSettings(
        service_name="probe",
        database_url=db_url,
        max_body_bytes=256,
        **{
            "rate_limit_default": "100/minute",
            "rate_limit_search": "5/minute",
            "rate_limit_scopes": {"probe:pii": "3/minute"},
            "cors_allow_origins": [ALLOWED_ORIGIN],
            "hsts_max_age_seconds": 31536000,
            **over,
        },
    )
    return create_service_app(
        settings, title="probe", description="probe", routers=[router], idempotency_table=idempotency
    )


def create_probe_app() -> FastAPI:
    """Factory for the real uvicorn process below (no database is touched)."""
    return probe_app()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(probe_app()) as c:
        yield c


READ = bearer("probe:read", sub="partner-a")


async def test_order_is_token_then_scope_then_precondition_then_validation(client: httpx.AsyncClient) -> None:
    url, bad = "/v1/things/7", {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert (await client.patch(url, **bad)).status_code == 401  # was 422: the body was parsed first
    assert (await client.patch(url, json={"label": "x"})).status_code == 401  # was 428: If-Match came first
    malformed = {"Authorization": "Bearer not.a.jwt"}
    assert (await client.patch(url, content=b"{", headers=malformed)).status_code == 401
    no_scope = await client.patch(url, content=b"{", headers={**READ, "content-type": "application/json"})
    assert no_scope.status_code == 403 and no_scope.json()["missing_scopes"] == ["probe:write"]
    writer = bearer("probe:write")
    assert (await client.patch(url, json={"label": "x"}, headers=writer)).status_code == 428
    r = await client.patch(
        url, content=b"{", headers={**writer, "If-Match": '"1"', "content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await client.patch(url, json={"label": "x"}, headers={**writer, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json() == {"id": 7, "version": 2, "label": "x"}


async def test_300_requests_one_token_429_after_the_budget_second_client_unaffected(
    client: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    responses = await burst(client, "/v1/things", READ, budget=100)
    # The audit's burst: 300 requests in 1.9 s, all 200. Now 100 pass and 200 are refused.
    assert sum(r.status_code == 429 for r in responses) == 200
    print(f"300 requests in {time.monotonic() - started:.2f} s: 100 x 200, 200 x 429")
    other = await client.get("/v1/things", headers=bearer("probe:read", sub="partner-b"))
    assert other.status_code == 200 and other.headers["ratelimit-remaining"] == "99"
    # A refused client cannot use another endpoint either: the default budget is per client.
    assert (await client.get("/v1/me", headers=READ)).status_code == 429


async def test_the_budget_refills_after_retry_after() -> None:
    async with running_app(probe_app(rate_limit_default="5/2 seconds")) as client:
        statuses = [(await client.get("/v1/things", headers=READ)).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        refused = await client.get("/v1/things", headers=READ)
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 2 and refused.headers["ratelimit-policy"] == "5;w=2"
        waited = await wait_for_refill(client, "/v1/things", READ, retry_after)
        assert waited < 4
        print(
            f"5/2 s budget: 6th request refused, Retry-After {retry_after} s, served again after {waited:.2f} s"
        )


async def test_requests_without_a_valid_token_are_limited_by_address(client: httpx.AsyncClient) -> None:
    forged = {"Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}
    statuses = [(await client.get("/v1/things", headers=forged)).status_code for _ in range(101)]
    assert statuses == [401] * 100 + [429]
    # A client with a valid token is counted by its own subject, not by the shared address.
    assert (await client.get("/v1/things", headers=READ)).status_code == 200


async def test_search_and_scope_budgets(client: httpx.AsyncClient) -> None:
    searches = [
        (await client.post("/v1/things:search", json={"label": str(n)}, headers=READ)).status_code
        for n in range(7)
    ]
    assert searches == [200] * 5 + [429] * 2
    pii = bearer("probe:read probe:pii", sub="auditor")
    reads = [(await client.get("/v1/pii", headers=pii)).status_code for _ in range(4)]
    assert reads == [200] * 3 + [429]
    last = await client.get("/v1/pii", headers=pii)
    assert last.json()["budget"] == "scope:probe:pii" and last.headers["ratelimit-limit"] == "3"
    # Plain reads of both clients go on: 100 - 7 and 100 - 5 spent.
    assert (await client.get("/v1/things", headers=READ)).headers["ratelimit-remaining"] == "92"
    assert (await client.get("/v1/things", headers=pii)).headers["ratelimit-remaining"] == "94"


async def test_health_metrics_and_docs_are_not_limited(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/metrics", "/openapi.json", "/docs"):
        for _ in range(120):
            r = await client.get(path)
            assert r.status_code == 200 and "ratelimit-limit" not in r.headers, path


def test_limits_can_be_switched_off_and_budgets_must_parse() -> None:
    assert ClientLimiter.from_settings(ServiceSettings(rate_limit_enabled=False)) is None
    with pytest.raises(ValueError, match="rate limit"):
        ServiceSettings(rate_limit_default="many")
    with pytest.raises(ValueError, match="rate limit"):
        ServiceSettings(rate_limit_scopes={"registry:pii:read": "often"})
    with pytest.raises(ValueError, match="CORS origin"):
        ServiceSettings(cors_allow_origins=["*"])
    limiter = ClientLimiter.from_settings(ServiceSettings())
    assert limiter is not None
    with pytest.raises(ValueError, match="no rate limit budget named bulk"):
        limiter.budgets_for(frozenset({"bulk"}), frozenset())


def test_a_route_marked_with_an_unknown_budget_stops_the_app_at_start() -> None:
    router = APIRouter()

    @router.get("/v1/bulk", dependencies=[spends("bulk")])
    async def bulk(_: object = require_scopes("probe:read")) -> None:
        return None

    with pytest.raises(ValueError, match="no rate limit budget named bulk"):
        create_service_app(
            ServiceSettings(),
            title="probe",
            description="probe",
            routers=[router],
            idempotency_table=idempotency,
        )


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_CORS_ALLOW_ORIGINS", "https://siga.bkkbn.example, http://localhost:5173")

    class Settings(ServiceSettings):
        model_config = {"env_prefix": "PROBE_", "extra": "ignore"}

    assert Settings().cors_allow_origins == ["https://siga.bkkbn.example", "http://localhost:5173"]
    monkeypatch.setenv("PROBE_CORS_ALLOW_ORIGINS", '["https://siga.bkkbn.example"]')
    assert Settings().cors_allow_origins == ["https://siga.bkkbn.example"]
    monkeypatch.delenv("PROBE_CORS_ALLOW_ORIGINS")
    assert Settings().cors_allow_origins == []


async def test_cors(client: httpx.AsyncClient) -> None:
    assert_cors_allowed(
        await preflight(client, "/v1/things/1", ALLOWED_ORIGIN, "PATCH"), ALLOWED_ORIGIN, "PATCH"
    )
    for origin in ("https://evil.example", ALLOWED_ORIGIN + ".evil.example", "null"):
        refused = await preflight(client, "/v1/things/1", origin, "PATCH")
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert_no_cors(refused)
    # A listed origin asking for a method the API does not take is refused too.
    assert_no_cors(await preflight(client, "/v1/things", ALLOWED_ORIGIN, "TRACE"))
    simple = await client.get("/v1/things", headers={**bearer("probe:read"), "Origin": ALLOWED_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = {h.strip() for h in simple.headers["access-control-expose-headers"].split(",")}
    assert {"ETag", "Retry-After", "RateLimit-Remaining", "X-Request-ID"} <= exposed
    unlisted = await client.get(
        "/v1/things", headers={**bearer("probe:read"), "Origin": "https://evil.example"}
    )
    assert unlisted.status_code == 200
    assert_no_cors(unlisted)
    # Nothing is allowed when no origin is configured (the default).
    async with running_app(probe_app(cors_allow_origins=[])) as closed:
        refused = await preflight(closed, "/v1/things", ALLOWED_ORIGIN, "GET")
        assert refused.status_code == 403
        assert_no_cors(refused)


async def test_security_headers_on_every_kind_of_response(client: httpx.AsyncClient) -> None:
    writer = bearer("probe:write")
    answers = {
        "200": await client.get("/v1/things", headers=READ),
        "401": await client.get("/v1/things"),
        "403": await client.get("/v1/pii", headers=READ),
        "404": await client.get("/v1/nothing-here"),
        "405": await client.delete("/v1/things", headers=READ),
        "413": await client.patch("/v1/things/1", content=b"x" * 1000, headers={**writer, "If-Match": '"1"'}),
        "428": await client.patch("/v1/things/1", json={"label": "x"}, headers=writer),
        "500": await client.get("/v1/boom", headers=READ),
        "preflight": await preflight(client, "/v1/things", "https://evil.example"),
        "health": await client.get("/healthz"),
    }
    for kind, response in answers.items():
        if kind.isdigit():
            assert response.status_code == int(kind), (kind, response.text)
        assert_security_headers(response, hsts=True)
        assert response.headers["content-security-policy"] == API_CSP, kind
    async with running_app(probe_app(hsts_max_age_seconds=0)) as plain:
        assert_security_headers(await plain.get("/v1/things", headers=READ), hsts=False)


async def test_docs_keep_working_under_their_own_policy(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert docs.headers["content-security-policy"] == DOCS_CSP
    # The page loads its script and styles from the CDN the policy names, and nothing else from outside.
    assert "https://cdn.jsdelivr.net/npm/swagger-ui-dist" in docs.text
    assert "frame-ancestors 'none'" in DOCS_CSP and "connect-src 'self'" in DOCS_CSP
    assert (await client.get("/openapi.json")).headers["content-security-policy"] == API_CSP


def _token(**claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "iss": "kencana-dev",
        "aud": "kencana",
        "sub": "fuzz",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "scope": "probe:read",
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not ...}
    return {
        "Authorization": "Bearer " + jwt.encode(body, ensure_dev_keys()[0].read_bytes(), algorithm="ES256")
    }


BAD_REGIONS: list[Any] = [
    15,
    15.71,
    True,
    ["15"],
    ["15", "32"],
    {"code": "15"},
    "",
    " ",
    "15.710",
    "15.7",
    "1571.01",
    "15/71",
    "15.71.01.1001.9",
    "157101100",
    "１５",  # full-width digits
    "15.71\u0000",
    "15' OR '1'='1",
    "%",
    "15." * 5000,
    "9" * 100_000,
]


@pytest.mark.parametrize("region", BAD_REGIONS, ids=[f"region{n}" for n in range(len(BAD_REGIONS))])
async def test_a_malformed_region_claim_is_401_never_500(client: httpx.AsyncClient, region: Any) -> None:
    for path in ("/v1/things", "/v1/me"):
        r = await client.get(path, headers=_token(region=region))
        assert r.status_code == 401, (region, r.status_code, r.text[:200])
        assert r.headers["content-type"] == PROBLEM and "region" in r.json()["detail"]


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"scope": 5}, "scope"),
        ({"scope": {"probe:read": True}}, "scope"),
        ({"scope": ["probe:read", 5]}, "scope"),
        ({"scope": ["probe:read other"]}, "scope"),
        ({"scope": "x" * 10_000}, "scope"),
        ({"scope": ..., "scp": 7}, "scope"),
        ({"sub": 42}, ""),
        ({"sub": ""}, ""),
        ({"sub": ["a"]}, ""),
        ({"sub": "s" * 1000}, "sub"),
        ({"exp": "soon"}, ""),
        ({"exp": [1]}, ""),
        ({"iat": {"a": 1}}, ""),
        ({"exp": 10**400}, ""),
    ],
)
async def test_other_malformed_claims_are_401(
    client: httpx.AsyncClient, claims: dict[str, Any], why: str
) -> None:
    try:
        headers = _token(**claims)
    except (TypeError, OverflowError):
        pytest.skip("PyJWT refuses to sign this claim")
    r = await client.get("/v1/me", headers=headers)
    assert r.status_code == 401, (claims, r.status_code, r.text[:200])
    assert why in r.json()["detail"]


@pytest.mark.parametrize(
    ("region", "seen"),
    [("15", "15"), ("15.71", "15.71"), ("1571", "15.71"), ("15710110", None), (None, None)],
)
async def test_well_formed_region_claims_are_accepted(
    client: httpx.AsyncClient, region: str | None, seen: str | None
) -> None:
    r = await client.get("/v1/me", headers=_token(region=region if region is not None else ...))
    if region == "15710110":  # 8 digits is no level of the Kemendagri code (2, 4, 6 or 10)
        assert r.status_code == 401
        return
    assert r.status_code == 200 and r.json()["region"] == seen
    # The list form of the scope claim some IdPs emit is read like the space-separated one.
    listed = await client.get("/v1/me", headers=_token(scope=["probe:read", "probe:pii"]))
    assert listed.json()["scopes"] == ["probe:pii", "probe:read"]


# --------------------------------------------------------------------------- the server banner, in a real process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _uvicorn(*flags: str) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "uvicorn",
                "tests.shared.test_web_controls:create_probe_app",
                "--factory",
            ),
            *(*flags, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def _first_answer(base: str, deadline: float = 30.0) -> httpx.Response:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                return await client.get("/v1/things")
            assert time.monotonic() - started < deadline, "uvicorn did not start"
            await asyncio.sleep(0.2)


async def test_no_server_banner_when_started_as_the_entrypoints_start_it() -> None:
    with _uvicorn("--no-server-header") as base:
        r = await _first_answer(base)
        assert r.status_code == 401 and "server" not in r.headers
        assert_security_headers(r, hsts=True)
    with _uvicorn() as base:  # without the flag uvicorn names itself: the flag is what removes it
        assert (await _first_answer(base)).headers.get("server") == "uvicorn"
