"""The registry relay process: outbox -> Kafka (`python -m registry.relay`)."""

from __future__ import annotations

import asyncio

from registry.config import Settings
from registry.models import outbox
from shared.runtime import run_relay


def main() -> None:
    asyncio.run(run_relay(Settings(), outbox))


if __name__ == "__main__":
    main()
