"""The floor of `bench.api_rates`: a minimal FastAPI app whose one POST inserts a row through an asyncpg pool.

Served by uvicorn exactly like a service API (`uvicorn bench.bare_api:create_app --factory`); the database is
named by `BARE_API_DSN` (a plain asyncpg DSN) and must hold the table made by `SCHEMA`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request

SCHEMA = """
CREATE TABLE bare_family (
    id uuid PRIMARY KEY,
    kk_number text,
    village_code text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


def create_app() -> FastAPI:
    """One POST, one pooled INSERT, the new id back: what any HTTP write costs before it does any work."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with asyncpg.create_pool(os.environ["BARE_API_DSN"], min_size=8, max_size=8) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/families", status_code=201)
    async def create_family(body: dict[str, Any], request: Request) -> dict[str, Any]:
        family_id = uuid.uuid4()
        await request.app.state.pool.execute(
            "INSERT INTO bare_family (id, kk_number, village_code, body) VALUES ($1, $2, $3, $4::jsonb)",
            family_id,
            body.get("kk_number"),
            body.get("village_code", ""),
            orjson.dumps(body).decode(),
        )
        return {"id": str(family_id)}

    return app
