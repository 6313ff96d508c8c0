"""The dashat relay process: outbox -> Kafka (`python -m dashat.relay`)."""

from __future__ import annotations

import asyncio

from dashat.config import Settings
from dashat.models import outbox
from shared.runtime import run_relay


def main() -> None:
    asyncio.run(run_relay(Settings(), outbox))


if __name__ == "__main__":
    main()
