"""The registry API: `uvicorn registry.main:create_app --factory`."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from fastapi import FastAPI

from registry.config import Settings
from registry.models import idempotency, load_all_models
from registry.pii import PiiVault
from shared.regions import load_regions
from shared.web.app import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the registry app; clients and the engine are created in its lifespan."""
    from registry.ageing.scheduler import sweep_daily
    from registry.anthropometry.endpoints import router as anthropometry_router
    from registry.duplicates.endpoints import router as duplicates_router
    from registry.families.endpoints import router as families_router
    from registry.growth.endpoints import router as growth_router
    from registry.health.endpoints import router as health_router
    from registry.imports.endpoints import router as imports_router
    from registry.imports.jobs import ImportWorker
    from registry.regions.endpoints import router as regions_router
    from registry.statistics.endpoints import router as statistics_router
    from registry.subjects.endpoints import router as subjects_router

    load_all_models()
    settings = settings or Settings()

    async def open_vault(app: FastAPI) -> None:
        app.state.vault = PiiVault.from_settings(settings)

    async def load_region_reference(app: FastAPI) -> None:
        # NIK/KK rules read the Kemendagri snapshot; loading it (~80k regions) here spares the first requests.
        load_regions()

    async def start_import_worker(app: FastAPI) -> None:
        if not settings.import_worker_enabled:
            return
        worker = ImportWorker(
            app.state.sessionmaker,
            app.state.vault,
            poll_interval=settings.import_poll_interval_seconds,
            lease=timedelta(seconds=settings.import_lease_seconds),
            chunk_rows=settings.import_chunk_rows,
        )
        app.state.import_worker = worker
        app.state.import_task = asyncio.create_task(worker.run(), name="import-worker")

    async def start_age_sweep(app: FastAPI) -> None:
        if not settings.age_sweep_enabled:
            return
        app.state.age_sweep_task = asyncio.create_task(
            sweep_daily(app.state.sessionmaker, settings.age_sweep_hour), name="age-sweep"
        )

    async def stop_age_sweep(app: FastAPI) -> None:
        task: asyncio.Task[None] | None = getattr(app.state, "age_sweep_task", None)
        if task is None:
            return
        # A day in flight is rolled back with its connection; the watermark repeats it on the next run.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_import_worker(app: FastAPI) -> None:
        worker = getattr(app.state, "import_worker", None)
        if worker is None:
            return
        worker.stop()
        task: asyncio.Task[None] = app.state.import_task
        try:
            await asyncio.wait_for(task, 30)
        except TimeoutError:
            # A chunk in flight is rolled back with its connection; the job resumes elsewhere from its lease.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return create_service_app(
        settings,
        title="Kencana Registry",
        description=(
            "Families (Kartu Keluarga), persons (NIK), KB status, catin, pregnancies, children's growth (WHO "
            "z-scores) and stunting cases in Kampung KB. NIK/KK numbers are shown only when the token has "
            "`registry:pii:read` (then `X-Purpose` is required and every read is logged); finding a person by NIK "
            "needs `registry:nik:search` and `X-Purpose`, and every search is logged. Every resource is "
            "limited to the token's region; lists take `updated_since` (change feed with tombstones)."
        ),
        routers=[
            regions_router,
            duplicates_router,  # before families: /v1/persons/duplicates is not a person id
            families_router,
            health_router,
            growth_router,
            anthropometry_router,
            imports_router,
            statistics_router,
            subjects_router,
        ],
        idempotency_table=idempotency,
        # Its own topic: the registry reads no other.
        history_topics=("kencana.registry",),
        on_startup=[open_vault, load_region_reference, start_import_worker, start_age_sweep],
        on_shutdown=[stop_age_sweep, stop_import_worker],
        # 10,000 scoring items are about 1.5 MB of JSON; 100,000 import rows about 15 MB of CSV.
        body_limit_overrides={
            "/v1/anthropometry:score": 4 * 1024 * 1024,
            "/v1/imports": settings.import_max_bytes,
        },
    )
