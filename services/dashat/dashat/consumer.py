"""The dashat consumer process: Kafka -> handlers, each event applied once (`python -m dashat.consumer`)."""

from __future__ import annotations

import asyncio

from dashat.config import Settings
from dashat.models import inbox
from shared.consumer import Handler
from shared.runtime import run_consumer

TOPICS: list[str] = []
HANDLERS: dict[str, Handler] = {}


def main() -> None:
    asyncio.run(
        run_consumer(Settings(), purpose="projector", logical_topics=TOPICS, handlers=HANDLERS, inbox=inbox)
    )


if __name__ == "__main__":
    main()
