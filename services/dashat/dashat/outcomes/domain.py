"""Pure rules about enrolled children's growth: the HAZ trajectory and the no-improvement flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# A child "improved" when the latest HAZ is at least this much above the baseline (configurable).
MIN_HAZ_GAIN = 0.0


@dataclass(frozen=True)
class Point:
    measured_on: date
    haz: float


@dataclass(frozen=True)
class Trajectory:
    baseline: float | None
    latest: float | None
    change: float | None
    points: list[Point]
    improved: bool | None


def trajectory(baseline: float | None, points: list[Point]) -> Trajectory:
    """Ordered points since enrolment, the baseline HAZ and the change to the latest one."""
    ordered = sorted(points, key=lambda p: p.measured_on)
    latest = ordered[-1].haz if ordered else None
    if baseline is None and ordered:
        baseline = ordered[0].haz
    change = round(latest - baseline, 2) if latest is not None and baseline is not None else None
    improved = None if change is None or len(ordered) == 0 else change > MIN_HAZ_GAIN
    return Trajectory(baseline, latest, change, ordered, improved)


def should_flag(t: Trajectory, planned_end: date, today: date, already_flagged: bool) -> bool:
    """Flag once, after the planned duration, when a later measurement shows no HAZ improvement."""
    return not already_flagged and today >= planned_end and t.improved is False
