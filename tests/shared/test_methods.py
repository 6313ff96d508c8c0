"""405 with the resource's complete Allow (shared/web/methods.py): one resource over two routers, fixed paths."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.web.methods import MethodNotAllowedMiddleware, not_allowed, resources


def _app() -> FastAPI:
    reads, writes = APIRouter(prefix="/v1"), APIRouter(prefix="/v1")

    @reads.get("/targets")
    async def list_targets() -> list[str]:
        return []

    @reads.get("/targets/summary")
    async def summary() -> dict[str, int]:
        return {}

    @writes.post("/targets")
    async def create_target() -> dict[str, str]:
        return {}

    @writes.patch("/targets/{target_id}")
    async def update_target(target_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(target_id)}

    @reads.get("/targets/{target_id}")
    async def get_target(target_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(target_id)}

    app = FastAPI()
    app.include_router(reads)
    app.include_router(writes)
    app.add_middleware(MethodNotAllowedMiddleware)
    return app


async def _call(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # GET is declared in one router and POST in another: Starlette's own 405 listed only GET.
        ("PUT", "/v1/targets", "GET, POST"),
        ("DELETE", "/v1/targets", "GET, POST"),
        ("OPTIONS", "/v1/targets", "GET, POST"),
        # A fixed path is its own resource: PATCH must not fall through to /targets/{target_id} (a 422).
        ("PATCH", "/v1/targets/summary", "GET"),
        ("POST", "/v1/targets/summary", "GET"),
        ("DELETE", f"/v1/targets/{uuid.UUID(int=1)}", "GET, PATCH"),
    ],
)
async def test_405_lists_every_method_of_the_resource(method: str, path: str, allow: str) -> None:
    response = await _call(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 405


async def test_served_methods_still_route() -> None:
    assert (await _call("PATCH", f"/v1/targets/{uuid.UUID(int=2)}")).json() == {"id": str(uuid.UUID(int=2))}
    assert (await _call("GET", "/v1/targets/summary")).status_code == 200
    assert (await _call("POST", "/v1/targets")).status_code == 200
    assert (await _call("GET", "/v1/nothing")).status_code == 404


def test_a_later_parameterised_route_serving_the_method_is_left_to_the_router() -> None:
    app = FastAPI()

    @app.get("/v1/things/{a}")
    async def one(a: str) -> None: ...

    @app.post("/v1/things/{b}")
    async def two(b: str) -> None: ...

    table = resources(app.routes)
    assert not_allowed(table, "/v1/things/x", "POST") is None
    refused = not_allowed(table, "/v1/things/x", "DELETE")
    assert refused is not None and refused.template == "/v1/things/{a}"
