"""`/healthz` (process alive), `/readyz` (database and Kafka reachable), `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from shared.kafka import kafka_reachable
from shared.web.problems import problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and Kafka are reachable",
    responses={503: {"description": "A dependency is not reachable (problem+json)"}},
)
async def readyz(request: Request) -> Any:
    checks: dict[str, str] = {}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    checks["kafka"] = (
        "ok"
        if await kafka_reachable(request.app.state.settings.kafka_bootstrap_servers, 3.0)
        else "unreachable"
    )
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "checks": checks}
    return problem_response(
        503, "Not ready", "a dependency is not reachable", code="not-ready", extra={"checks": checks}
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
