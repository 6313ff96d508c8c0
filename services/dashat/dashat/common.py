"""Small helpers every DASHAT module shares: RW spelling (region scope: shared.regions.scope, dates: shared.clock)."""

from __future__ import annotations


def norm_rw(rw: str | None) -> str | None:
    """RWs are written "3", "03" or "003": compare them as 3-digit strings."""
    if rw is None:
        return None
    value = rw.strip()
    if not value:
        return None
    return value.zfill(3) if value.isdigit() else value.upper()
