"""Draw a child's length and weight from the WHO 2006 standards so the z-scores come out as intended.

The LMS tables are the ones the registry scores with (``registry.anthropometry.domain.DATA_DIR``); the expected
HAZ is checked with the registry's own ``score_one`` before anything is sent.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from registry.anthropometry.domain import DATA_DIR, score_one

Lms = dict[tuple[int, int], tuple[float, float, float]]


@lru_cache(maxsize=2)
def _table(name: str) -> Lms:
    rows: Lms = {}
    with Path(DATA_DIR, name).open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rows[(int(row["sex"]), int(float(row["age"])))] = (
                float(row["l"]),
                float(row["m"]),
                float(row["s"]),
            )
    return rows


def _value(lms: tuple[float, float, float], z: float) -> float:
    """The measurement whose LMS z-score is ``z`` (the inverse of the Box-Cox transform)."""
    l_, m, s = lms
    if abs(l_) < 1e-9:
        import math

        return m * math.exp(s * z)
    return float(m * (1 + l_ * s * z) ** (1 / l_))


@dataclass(frozen=True)
class Drawn:
    lenhei_cm: float
    weight_kg: float
    haz: float | None
    haz_class: str | None


def draw_child(sex: str, age_days: int, haz: float, waz: float, *, score: bool = True) -> Drawn:
    """Length (lying, under two years) and weight for the wanted z-scores, rounded as a kader would write them.

    `score=False` skips the check by the registry's scorer (the z-scores are then None): a province-sized file
    has hundreds of thousands of baduta, and one scoring call costs milliseconds.
    """
    code = 1 if sex == "L" else 2
    day = max(0, min(age_days, 1856))
    length = round(_value(_table("lenanthro.tsv")[(code, day)], haz), 1)
    weight = round(_value(_table("weianthro.tsv")[(code, day)], waz), 1)
    if not score:
        return Drawn(length, weight, None, None)
    scored = score_one(sex, age_days, weight, length, "l")
    return Drawn(length, weight, scored.zlen, scored.haz_class)
