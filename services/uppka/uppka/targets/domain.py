"""Pure rules of targets: progress towards the number of groups to reach."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    target_groups: int
    achieved_groups: int
    progress_pct: float | None
    reached: bool


def progress(target_groups: int, achieved_groups: int) -> Progress:
    """Share of the target reached, in percent with one decimal (None for a zero target)."""
    pct = round(100 * achieved_groups / target_groups, 1) if target_groups else None
    return Progress(target_groups, achieved_groups, pct, achieved_groups >= target_groups)
