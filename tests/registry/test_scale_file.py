"""The scale rehearsal's generated province file is one the registry's importer accepts without a single error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from registry.config import Settings
from registry.imports.domain import COLUMNS
from registry.main import create_app
from sqlalchemy.ext.asyncio import AsyncSession

from bench.scale.generate import generate
from shared.testing.plugin import bearer, running_app

pytestmark = pytest.mark.integration


@pytest.fixture
async def importer(registry_url: str, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    # The whole file inside the request (validate mode writes nothing, and the test's session is rolled back).
    settings = Settings(database_url=registry_url, import_sync_max_rows=10_000)
    async with running_app(create_app(settings), session) as c:
        yield c


async def test_generated_file_validates_with_zero_errors(importer: httpx.AsyncClient, tmp_path: Path) -> None:
    figures = generate(tmp_path / "pk.csv", families=200, seed=7, province="15", progress_every=0)
    body = (tmp_path / "pk.csv").read_bytes()
    header = body.split(b"\n", 1)[0].decode().split(",")
    assert set(header) <= set(COLUMNS)
    assert figures.with_kb == ("kb_method" in COLUMNS)
    assert figures.families == 200 and figures.persons > 600 and figures.baduta_measured > 20

    r = await importer.post(
        "/v1/imports",
        params={"mode": "validate"},
        content=body,
        headers={**bearer("registry:read registry:import", region="15"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    assert summary["issues"] == {"errors": 0, "flagged": 0}, summary
    assert summary["rows"]["rejected"] == 0
    assert (
        summary["rows"]["created"] + summary["rows"]["updated"] + summary["rows"]["unchanged"]
        == figures.persons
    )
    assert summary["families"]["created"] == 200
    assert summary["measurements"]["created"] == figures.baduta_measured
