"""The reporting service's streams process (`python -m reporting.relay`): curated per-consumer streams for other
ministries, their outbox relay to `kencana.public.<consumer>.v1` and their webhooks (reporting/streams)."""

from __future__ import annotations

import asyncio

from reporting.config import Settings
from reporting.streams.process import run


def main() -> None:
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
