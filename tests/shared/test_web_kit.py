"""Auth, problem+json errors, body limit, idempotency and request ids on a probe app built by the web kit."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared.auth import ensure_dev_keys, issue_dev_token
from shared.testing.plugin import bearer, running_app, unique
from tests.shared.conftest import make_test_app

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
async def client(shared_db_url: str) -> Any:
    async with running_app(make_test_app(shared_db_url)) as c:
        yield c


def _claims(**over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "iss": "kencana-dev",
        "aud": "kencana",
        "sub": "x",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "scope": "probe:read",
    }
    claims.update(over)
    return claims


def _es256(claims: dict[str, Any], key: Any = None) -> str:
    private = key or ensure_dev_keys()[0].read_bytes()
    return jwt.encode(claims, private, algorithm="ES256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def _status(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.get("/v1/secret", headers=headers)


async def test_valid_token_with_scope_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/secret", headers=bearer("probe:read"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "malformed",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "alg_none",
        "hs256_with_public_key",
        "other_key",
        "too_long_lived",
    ],
)
async def test_bad_tokens_are_401(client: httpx.AsyncClient, case: str) -> None:
    public_pem = ensure_dev_keys()[1].read_bytes()
    token: str | None
    if case == "missing":
        token = None
    elif case == "malformed":
        token = "not.a.jwt"
    elif case == "expired":
        past = datetime.now(UTC) - timedelta(hours=2)
        token = _es256(_claims(iat=past, exp=past + timedelta(minutes=5)))
    elif case == "wrong_audience":
        token = _es256(_claims(aud="someone-else"))
    elif case == "wrong_issuer":
        token = _es256(_claims(iss="https://evil.example"))
    elif case == "alg_none":
        header = _b64(b'{"alg":"none","typ":"JWT"}')
        payload = _b64(
            jwt.api_jws.json.dumps(  # type: ignore[attr-defined]
                {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in _claims().items()}
            ).encode()
        )
        token = f"{header}.{payload}."
    elif case == "hs256_with_public_key":
        import hashlib
        import hmac
        import json

        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in _claims().items()}
        payload = _b64(json.dumps(body).encode())
        signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        token = f"{header}.{payload}.{_b64(signature)}"
    elif case == "other_key":
        token = _es256(_claims(), key=ec.generate_private_key(ec.SECP256R1()))
    else:
        now = datetime.now(UTC)
        token = _es256(_claims(iat=now, exp=now + timedelta(days=30)))
    response = await _status(client, token)
    assert response.status_code == 401, case
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers.get("www-authenticate") == "Bearer"


async def test_missing_scope_is_403(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/secret", headers=bearer("probe:write"))
    assert response.status_code == 403
    body = response.json()
    assert response.headers["content-type"].startswith(PROBLEM)
    assert body["missing_scopes"] == ["probe:read"]


async def test_malformed_json_is_422_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/echo",
        content=b'{"name": "a", ',
        headers={**bearer("probe:write"), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["errors"][0]["field"].startswith("body")


async def test_wrong_types_are_422_naming_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/echo", json={"name": "a", "count": "many", "tags": [1, {}]}, headers=bearer("probe:write")
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert "body.count" in fields
    assert "body.tags.1" in fields


async def test_unknown_fields_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/echo", json={"name": "a", "count": 1, "colour": "red"}, headers=bearer("probe:write")
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.colour"]


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    big = {"name": "x" * 5000, "count": 1}
    response = await client.post("/v1/echo", json=big, headers=bearer("probe:write"))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_oversize_streamed_body_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    response = await client.post(
        "/v1/echo", content=chunks(), headers={**bearer("probe:write"), "content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_unexpected_error_is_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) >= 32


async def test_idempotency_key_replays_and_rejects_other_body(client: httpx.AsyncClient) -> None:
    key = unique("idem")
    headers = {**bearer("probe:write", sub=unique("caller")), "Idempotency-Key": key}
    first = await client.post("/v1/echo", json={"name": "a", "count": 1}, headers=headers)
    again = await client.post("/v1/echo", json={"name": "a", "count": 1}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json(), "the same key and body replay the first response"
    assert again.headers.get("idempotent-replayed") == "true"
    other = await client.post("/v1/echo", json={"name": "b", "count": 2}, headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_idempotency_key_is_per_caller(client: httpx.AsyncClient) -> None:
    key = unique("idem")
    one = await client.post(
        "/v1/echo",
        json={"name": "a", "count": 1},
        headers={**bearer("probe:write", sub=unique("a")), "Idempotency-Key": key},
    )
    two = await client.post(
        "/v1/echo",
        json={"name": "a", "count": 1},
        headers={**bearer("probe:write", sub=unique("b")), "Idempotency-Key": key},
    )
    assert one.json()["call"] != two.json()["call"], "another caller's key does not replay"


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = await client.get("/metrics")
    assert "kencana_http_request_seconds" in metrics.text


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    app = make_test_app("postgresql+asyncpg://kencana:kencana@127.0.0.1:1/nothing")
    async with running_app(app) as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"


def test_dev_token_round_trip_claims() -> None:
    token = issue_dev_token(scopes=["a:b", "c:d"], region="15.71", sub="u1", ttl_seconds=60)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "a:b c:d"
    assert claims["region"] == "15.71"


async def test_request_id_becomes_the_events_correlation_id(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    import uuid as uuid_module

    from sqlalchemy import select

    from tests.shared.conftest import outbox

    request_id = unique("req-")
    response = await client.post(
        "/v1/probe-events", headers={**bearer("probe:write"), "X-Request-ID": request_id}
    )
    assert response.status_code == 201, response.text
    async with sessionmaker() as session:
        envelope = (
            await session.execute(
                select(outbox.c.envelope).where(
                    outbox.c.event_id == uuid_module.UUID(response.json()["event_id"])
                )
            )
        ).scalar_one()
    assert envelope["correlationid"] == request_id
