"""The uppka API: `uvicorn uppka.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from shared.topics import EVENT_TOPICS
from shared.web.app import create_service_app
from uppka.activities.endpoints import router as activities_router
from uppka.businesses.endpoints import router as businesses_router
from uppka.config import Settings
from uppka.groups.endpoints import router as groups_router
from uppka.indicators.endpoints import router as indicators_router
from uppka.models import idempotency
from uppka.reports.endpoints import router as reports_router
from uppka.statistics.endpoints import router as statistics_router
from uppka.subjects.endpoints import router as subjects_router
from uppka.targets.endpoints import router as targets_router


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the uppka app; clients and the engine are created in its lifespan."""
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Kencana UPPKA",
        description="UPPKA groups of acceptor families: members, businesses, products, monthly finances (omzet) and programme activities.",
        routers=[
            groups_router,
            businesses_router,
            reports_router,
            activities_router,
            targets_router,
            indicators_router,
            statistics_router,
            subjects_router,
        ],
        idempotency_table=idempotency,
        # The topic it writes and the ones it reads: between them, all three.
        history_topics=EVENT_TOPICS,
    )
