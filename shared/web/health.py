"""`/healthz` (process alive), `/readyz` (database and Kafka reachable, event history kept), `/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from shared.kafka import kafka_readiness
from shared.topics import REPAIR_COMMAND
from shared.web.problems import problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and Kafka are reachable, and the event topics keep their history",
    responses={
        503: {"description": "A dependency is not reachable, or an event topic deletes events (problem+json)"}
    },
)
async def readyz(request: Request) -> Any:
    checks: dict[str, str] = {}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    settings = request.app.state.settings
    topics = [settings.topic(t) for t in getattr(request.app.state, "history_topics", ())]
    reachable, risks = await kafka_readiness(
        settings.kafka_bootstrap_servers, topics, settings.readiness_timeout_seconds
    )
    checks["kafka"] = "ok" if reachable else "unreachable"
    if reachable:
        # A topic that deletes events makes every later rebuild or new consumer silently partial (issue 19):
        # the service works, but it is not in a state to be trusted with history until the topic is repaired.
        checks["event_history"] = "drops events" if risks else "ok"
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "checks": checks}
    if risks and checks["database"] == "ok":
        return problem_response(
            503,
            "Not ready",
            "event topics would delete history: "
            + "; ".join(r.describe() for r in risks)
            + f". Run `{REPAIR_COMMAND}` (docs/runbook.md, Event history).",
            code="event-history-at-risk",
            extra={
                "checks": checks,
                "topics": [{"topic": r.topic, "setting": r.setting, "value": r.value} for r in risks],
            },
        )
    return problem_response(
        503, "Not ready", "a dependency is not reachable", code="not-ready", extra={"checks": checks}
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
