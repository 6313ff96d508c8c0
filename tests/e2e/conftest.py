"""One running stack of the four services for the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("e2e-logs")
    running = Stack(log_dir=log_dir)
    await running.prepare()
    try:
        await running.start_all()
        yield running
    finally:
        running.stop_all()
        await running.forget_kafka_users()
