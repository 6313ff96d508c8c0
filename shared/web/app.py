"""The app factory every service uses: lifespan-built clients, middleware, errors, health, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Table

from shared.auth import TokenVerifier
from shared.config import ServiceSettings
from shared.db import create_engine, create_sessionmaker
from shared.kafka import use_security
from shared.logging import configure_logging
from shared.web import health
from shared.web import openapi as openapi_kit
from shared.web.etag import document_preconditions
from shared.web.guard import RouteGuardMiddleware, guarded_routes
from shared.web.idempotency import IdempotencyMiddleware, document_idempotency
from shared.web.methods import MethodNotAllowedMiddleware
from shared.web.middleware import BodySizeLimitMiddleware, RequestContextMiddleware, UnhandledErrorMiddleware
from shared.web.problems import install_problem_handlers
from shared.web.ratelimit import ClientLimiter
from shared.web.schemas import clean_parameters
from shared.web.security import AllowListCORSMiddleware, SecurityHeadersMiddleware

Hook = Callable[[FastAPI], Awaitable[None]]

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "correlation_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status"],
}


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    idempotency_table: Table,
    version: str = "1.0.0",
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    body_limit_overrides: dict[str, int] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    history_topics: Sequence[str] = (),
) -> FastAPI:
    """Build a service's FastAPI app; the engine and clients are created in the lifespan, not at import.

    `history_topics`: the logical event topics the service writes or reads; readiness reports them when their
    retention would delete events (shared.topics).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name)
        use_security(settings.kafka_security())
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        for hook in on_startup:
            await hook(app)
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook(app)
            await engine.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        responses={422: {"description": "Validation error (problem+json)"}},
        dependencies=[Depends(clean_parameters)],
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    app.state.idempotency_table = idempotency_table
    app.state.history_topics = tuple(history_topics)
    install_problem_handlers(app)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    # Each middleware added wraps the ones before: the last is outermost. Security headers wrap everything so
    # every response carries them; the request id wraps the rest so even a 413 or a refused preflight has it.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, overrides=body_limit_overrides
    )
    # Authentication, the client's rate limit and scopes before replays, preconditions and validation. The
    # route table is read once here too, so a route marked with an unknown budget stops the service at start.
    limiter = ClientLimiter.from_settings(settings)
    guarded_routes(app.routes, limiter)
    app.add_middleware(RouteGuardMiddleware, limiter=limiter)
    # A method the resource does not serve is 405 with every method it does, before the guard asks who calls.
    app.add_middleware(MethodNotAllowedMiddleware)
    app.add_middleware(
        AllowListCORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        max_age=settings.cors_max_age_seconds,
    )
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts_max_age_seconds=settings.hsts_max_age_seconds,
        docs_paths=[p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p],
    )

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        openapi_kit.complete(app, schema)
        openapi_kit.declare_text_patterns(schema)
        document_idempotency(schema, app.routes)
        document_preconditions(schema, app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        schema["components"].setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
