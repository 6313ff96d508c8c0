"""Migrations agree with the models; the region table is seeded with the full Kemendagri snapshot."""

from __future__ import annotations

import httpx
from registry.models import Base, load_all_models
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.migrations import model_drift
from tests.registry.conftest import auth


async def test_models_match_migrations(registry_url: str) -> None:
    load_all_models()
    assert await model_drift(registry_url, Base.metadata) == []


async def test_region_rows_per_level(session: AsyncSession) -> None:
    rows = (
        await session.execute(
            text("SELECT level, count(*) FROM region WHERE valid_to IS NULL GROUP BY level")
        )
    ).all()
    assert dict(rows) == {"province": 38, "regency": 514, "district": 7285, "village": 83762}  # type: ignore[arg-type]


async def test_region_endpoints(client: httpx.AsyncClient) -> None:
    h = auth("registry:read")
    provinces = (await client.get("/v1/regions", headers=h)).json()
    assert len(provinces) == 38 and provinces[0]["level"] == "province"
    r = await client.get("/v1/regions/1571", headers=h)
    assert r.status_code == 200 and r.json()["code"] == "15.71" and r.json()["parent_code"] == "15"
    kids = (await client.get("/v1/regions/15.71.01/children", headers=h)).json()
    assert kids and all(k["parent_code"] == "15.71.01" and k["level"] == "village" for k in kids)
    assert (await client.get("/v1/regions/15.99", headers=h)).status_code == 404
    bad = await client.get("/v1/regions/abc", headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.code"
    assert (await client.get("/v1/regions")).status_code == 401


async def test_openapi_has_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for name in (
        "FamilyCreate",
        "PersonInput",
        "MeasurementCreate",
        "ScoreRequest",
        "KbStatusCreate",
        "PregnancyEnd",
    ):
        assert schemas[name].get("examples"), name
    assert "/v1/persons:search" in spec["paths"] and "/v1/anthropometry:score" in spec["paths"]
