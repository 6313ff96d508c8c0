"""Reporting query latency on projections equivalent to over a million families (p50/p95 per query).

Measured side by side on two layouts of the same generated figures: every fact row in one slot (what the fact
rollup writes, as before per-partition slots) and split over 6 slots per topic (what rep0003's projector wrote
with 6-partition topics).
"""

from __future__ import annotations

from typing import Any

from bench.reporting_dataset import benchmark


async def run(families: int = 1_000_000, villages: int = 5_000) -> dict[str, Any]:
    out: dict[str, Any] = {"families": families, "villages": villages}
    for slots in (1, 6):
        counts, figures = await benchmark(
            families=families, villages=villages, repeats=20, slots_per_topic=slots
        )
        out[f"slots_{slots}"] = {
            "fact_rows": counts["fact_rows"],
            "national_rows": counts["national_rows"],
            "families": counts["families"],
            **{f"{f.name} p50_ms": round(f.p50_ms, 1) for f in figures},
            **{f"{f.name} p95_ms": round(f.p95_ms, 1) for f in figures},
        }
    rolled_up, slotted = out["slots_1"], out["slots_6"]
    key = "national summary (month) p50_ms"
    out["national_summary_p50_ms"] = rolled_up[key]
    out["national_summary_p50_vs_six_slots_ratio"] = round(slotted[key] / rolled_up[key], 3)
    return out
