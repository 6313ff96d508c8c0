"""`make bench`: run every benchmark once, side by side, and print one table of figures."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

# Each entry: module in bench/ with `run()` (sync or async) returning a dict of figures.
BENCHMARKS = [
    "consumer",
    "dashat_consumer",
    "uppka_consumer",
    "relay",
    "zscore",
    "registry_import",
    "reporting_queries",
    "reporting_projector",
    "api_rates",
    "demo_kb",
    "flagship",
]


def main(selected: list[str]) -> int:
    results: dict[str, Any] = {}
    for name in selected or BENCHMARKS:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                continue
            raise
        started = time.perf_counter()
        outcome = module.run()
        if asyncio.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = outcome
        print(f"{name}: {json.dumps(outcome)}", flush=True)
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
