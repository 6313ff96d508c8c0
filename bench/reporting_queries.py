"""Reporting query latency on projections equivalent to over a million families (p50/p95 per query)."""

from __future__ import annotations

from typing import Any

from reporting.bench import benchmark


async def run(families: int = 1_000_000) -> dict[str, Any]:
    counts, figures = await benchmark(families=families, repeats=20)
    out: dict[str, Any] = {"families": counts.get("families", families)}
    for f in figures:
        out[f"{f.name} p50_ms"] = round(f.p50_ms, 1)
        out[f"{f.name} p95_ms"] = round(f.p95_ms, 1)
    return out
