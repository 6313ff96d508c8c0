"""The dashat API: `uvicorn dashat.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from dashat.config import Settings
from dashat.models import idempotency
from shared.web.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dashat app; clients and the engine are created in its lifespan."""
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Kencana DASHAT",
        description="DASHAT community kitchens (Dapur Sehat Atasi Stunting): enrolment of stunting-risk targets, menus from local food, meals served and funds.",
        routers=[],
        idempotency_table=idempotency,
    )
