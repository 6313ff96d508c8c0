"""The uppka relay process: outbox -> Kafka (`python -m uppka.relay`)."""

from __future__ import annotations

import asyncio

from shared.runtime import run_relay
from uppka.config import Settings
from uppka.models import outbox


def main() -> None:
    asyncio.run(run_relay(Settings(), outbox))


if __name__ == "__main__":
    main()
