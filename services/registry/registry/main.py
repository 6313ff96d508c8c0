"""The registry API: `uvicorn registry.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from registry.config import Settings
from registry.models import idempotency
from shared.web.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the registry app; clients and the engine are created in its lifespan."""
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Kencana Registry",
        description="Families (Kartu Keluarga), persons (NIK), KB status, catin, pregnancies, children's growth (WHO z-scores) and stunting cases in Kampung KB.",
        routers=[],
        idempotency_table=idempotency,
    )
