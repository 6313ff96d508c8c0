"""The registry API: `uvicorn registry.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from registry.config import Settings
from registry.models import idempotency, load_all_models
from registry.pii import PiiVault
from shared.web.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the registry app; clients and the engine are created in its lifespan."""
    from registry.anthropometry.endpoints import router as anthropometry_router
    from registry.families.endpoints import router as families_router
    from registry.growth.endpoints import router as growth_router
    from registry.health.endpoints import router as health_router
    from registry.regions.endpoints import router as regions_router

    load_all_models()
    settings = settings or Settings()

    async def open_vault(app: FastAPI) -> None:
        app.state.vault = PiiVault.from_settings(settings)

    return create_service_app(
        settings,
        title="Kencana Registry",
        description=(
            "Families (Kartu Keluarga), persons (NIK), KB status, catin, pregnancies, children's growth (WHO "
            "z-scores) and stunting cases in Kampung KB. NIK/KK numbers are masked unless the token has "
            "`registry:pii:read` (then `X-Purpose` is required and every read is logged). Every resource is "
            "limited to the token's region; lists take `updated_since` (change feed with tombstones)."
        ),
        routers=[regions_router, families_router, health_router, growth_router, anthropometry_router],
        idempotency_table=idempotency,
        on_startup=[open_vault],
        # 10,000 scoring items are about 1.5 MB of JSON.
        body_limit_overrides={"/v1/anthropometry:score": 4 * 1024 * 1024},
    )
