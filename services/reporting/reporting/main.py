"""The reporting API: `uvicorn reporting.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from reporting.config import Settings
from reporting.indicators.endpoints import router as indicators_router
from reporting.models import idempotency
from reporting.streams.endpoints import router as streams_router
from reporting.subjects.endpoints import router as subjects_router
from shared.topics import EVENT_TOPICS
from shared.web.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the reporting app; clients and the engine are created in its lifespan."""
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Kencana Reporting",
        description="Programme indicators for every region level, built from all services' events, with exports and charts.",
        routers=[indicators_router, subjects_router, streams_router],
        idempotency_table=idempotency,
        # The three topics its projections are built from.
        history_topics=EVENT_TOPICS,
    )
