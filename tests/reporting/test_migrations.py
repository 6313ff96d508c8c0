"""Models and migrations of the reporting database agree."""

from __future__ import annotations

import pytest
from reporting.models import Base, load_all_models

from shared.migrations import model_drift
from shared.testing.plugin import migrated_database

pytestmark = pytest.mark.integration


async def test_models_match_migrations() -> None:
    load_all_models()
    url = await migrated_database("reporting")
    assert await model_drift(url, Base.metadata) == []
