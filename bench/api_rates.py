"""Registry API create rate: families (head, wife, child) through the whole request path, 8 in flight."""

from __future__ import annotations

from typing import Any

from registry.bench import main


async def run(families: int = 1000) -> dict[str, Any]:
    figures: dict[str, Any] = dict(await main(families))
    figures["families"] = families
    return figures
