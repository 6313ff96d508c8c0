"""Every service's migrations build a schema that equals its models."""

from __future__ import annotations

import importlib

import pytest

from shared.migrations import SERVICES, has_migrations, model_drift
from shared.testing.plugin import migrated_database

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", [s for s in SERVICES if has_migrations(s)])
async def test_models_and_migrations_agree(service: str) -> None:
    models = importlib.import_module(f"{service}.models")
    models.load_all_models()
    url = await migrated_database(service)
    assert await model_drift(url, models.Base.metadata) == []
