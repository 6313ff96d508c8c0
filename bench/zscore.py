"""WHO z-scores: the vectorised scorer against the same rules applied row by row, side by side."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from registry.anthropometry.domain import score, score_one


def _sample(rows: int) -> tuple[Any, ...]:
    rng = np.random.default_rng(20261129)
    sex = rng.integers(1, 3, rows)
    age = rng.integers(0, 1827, rows)
    lenhei = np.round(45 + age / 1826 * 60 + rng.normal(0, 5, rows), 1)
    weight = np.round(np.clip(3 + age / 1826 * 14 + rng.normal(0, 1.5, rows), 1.0, None), 1)
    measure = np.where(age < 731, "l", "h")
    oedema = rng.random(rows) < 0.01
    return sex, age, weight, lenhei, measure, oedema


def run(rows: int = 200_000, scalar_rows: int = 5_000) -> dict[str, Any]:
    sex, age, weight, lenhei, measure, oedema = _sample(rows)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        score(sex, age, weight, lenhei, measure, oedema)
        best = min(best, time.perf_counter() - started)
    vector_rate = rows / best
    started = time.perf_counter()
    for i in range(scalar_rows):
        score_one(
            int(sex[i]), int(age[i]), float(weight[i]), float(lenhei[i]), str(measure[i]), bool(oedema[i])
        )
    scalar_rate = scalar_rows / (time.perf_counter() - started)
    return {
        "vectorised_rows_per_s": round(vector_rate),
        "row_by_row_rows_per_s": round(scalar_rate),
        "vectorised_vs_row_by_row_ratio": round(vector_rate / scalar_rate, 1),
    }


if __name__ == "__main__":
    print(run())
