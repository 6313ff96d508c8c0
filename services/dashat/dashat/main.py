"""The dashat API: `uvicorn dashat.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from dashat.config import Settings
from dashat.enrolment.endpoints import router as enrolment_router
from dashat.foods.endpoints import router as foods_router
from dashat.funds.endpoints import router as funds_router
from dashat.kitchens.endpoints import router as kitchens_router
from dashat.meals.endpoints import router as meals_router
from dashat.models import idempotency
from dashat.ruleversions.endpoints import router as rule_versions_router
from dashat.statistics.endpoints import router as statistics_router
from dashat.subjects.endpoints import router as subjects_router
from shared.topics import EVENT_TOPICS
from shared.web.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dashat app; clients and the engine are created in its lifespan."""
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Kencana DASHAT",
        description="DASHAT community kitchens (Dapur Sehat Atasi Stunting): enrolment of stunting-risk targets, menus from local food, meals served and funds.",
        routers=[
            kitchens_router,
            enrolment_router,
            foods_router,
            meals_router,
            funds_router,
            rule_versions_router,
            statistics_router,
            subjects_router,
        ],
        idempotency_table=idempotency,
        # The topic it writes and the ones it reads: between them, all three.
        history_topics=EVENT_TOPICS,
    )
