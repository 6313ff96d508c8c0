"""Pure rules about kitchens: which places a kitchen serves and how many places it has free."""

from __future__ import annotations

from collections.abc import Sequence

from dashat.common import norm_rw


def serves(kitchen_village: str, kitchen_rws: Sequence[str], village_code: str, rw: str | None) -> bool:
    """A kitchen without listed RWs serves its whole village; otherwise only the RWs listed."""
    if kitchen_village != village_code:
        return False
    if not kitchen_rws:
        return True
    wanted = norm_rw(rw)
    return wanted is not None and wanted in {norm_rw(r) for r in kitchen_rws}


def free_places(capacity_per_day: int, active_enrolments: int) -> int:
    """One portion a day per active beneficiary: the capacity bounds the number of active enrolments."""
    return max(capacity_per_day - active_enrolments, 0)


def pick_kitchen(candidates: Sequence[tuple[object, int]]) -> object | None:
    """Among serving kitchens with (id, free places), the one with the most free places (ties: first)."""
    best: tuple[object, int] | None = None
    for kitchen_id, free in candidates:
        if free > 0 and (best is None or free > best[1]):
            best = (kitchen_id, free)
    return best[0] if best else None
