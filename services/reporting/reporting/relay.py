"""The reporting relay process: outbox -> Kafka (`python -m reporting.relay`)."""

from __future__ import annotations

import asyncio

from reporting.config import Settings
from reporting.models import outbox
from shared.runtime import run_relay


def main() -> None:
    asyncio.run(run_relay(Settings(), outbox))


if __name__ == "__main__":
    main()
