"""Pure rules of the replicas: which event is newer than what we hold."""

from __future__ import annotations

from datetime import datetime


def is_newer(event_time: datetime, held: datetime | None) -> bool:
    """True when an event should be applied over what we hold: nothing held, or strictly later.

    Equal times are treated as already seen: the inbox removes exact duplicates, and two different events
    with the same instant for one aggregate cannot be ordered anyway.
    """
    return held is None or event_time > held
