"""Benchmark: score random rows with :func:`score` and print rows per second.

Run: ``python -m registry.anthropometry.bench [rows]`` (default 500,000).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from registry.anthropometry.domain import score


def main(rows: int = 500_000) -> float:
    """Score ``rows`` deterministic random children; return and print rows/s (best of 3)."""
    rng = np.random.default_rng(20250425)
    sex = rng.integers(1, 3, rows)
    age = rng.integers(0, 1827, rows).astype(np.float64)
    lenhei = np.round(45 + age / 1826 * 60 + rng.normal(0, 5, rows), 1)
    weight = np.round(np.clip(3 + age / 1826 * 14 + rng.normal(0, 1.5, rows), 1.0, None), 1)
    measure = np.where(rng.random(rows) < 0.9, np.where(age < 731, "l", "h"), np.where(age < 731, "h", "l"))
    oedema = rng.random(rows) < 0.01
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        score(sex, age, weight, lenhei, measure, oedema)
        best = min(best, time.perf_counter() - t0)
    rate = rows / best
    print(f"{rows} rows in {best:.3f} s: {rate:,.0f} rows/s (HAZ + WAZ + WHZ, flags, classes)")
    return rate


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500_000)
