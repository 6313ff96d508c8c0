"""The daily sweep (`python -m dashat.sweep`): outcome flags, ageing out, planned ends, waitlist refills."""

from __future__ import annotations

import asyncio

from dashat.config import Settings
from dashat.enrolment.service import sweep
from shared.db import create_engine, create_sessionmaker
from shared.logging import configure_logging, get_logger

log = get_logger(__name__)


async def run(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            return await sweep(session)
    finally:
        await engine.dispose()


def main() -> None:
    configure_logging("dashat-sweep")
    log.info("sweep_done", **asyncio.run(run(Settings())))


if __name__ == "__main__":
    main()
