"""When a consumer's replica takes an event's facts over the ones it holds: one rule for every service.

Events about one aggregate race across partitions (a person's events follow their family's key, which changes
when they move) and come again (redelivery after a crash before the offset commit, a dead-letter replay, a
rebuild), so a replica keeps the event time of what it holds and applies an event only when it is **strictly
newer**. An event at the same instant as what is held is treated as already applied: a redelivered or replayed
event carries exactly that time, and re-applying it would repeat its side effects (a placement, an outgoing
event) where the inbox no longer remembers it; two different events of one aggregate at one instant cannot be
ordered by time anyway, and the first one applied stays (the later of the two in log order, when both come in
one poll, is the one dropped: the registry stamps each event with its own instant, so such ties do not arise
from one request).

`is_newer` is the rule in Python; `newer_clause` the same rule in SQL for the set-based upserts, which must
leave exactly what applying the events one by one would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_

__all__ = ["is_newer", "newer_clause"]


def is_newer(event_time: datetime, held: datetime | None) -> bool:
    """True when an event at `event_time` is applied over facts held from `held`: nothing held, or strictly later."""
    return held is None or event_time > held


def newer_clause(incoming: Any, held: Any) -> ColumnElement[bool]:
    """SQL of `is_newer`: the incoming row's time is later than the held row's, or nothing is held."""
    return or_(held.is_(None), incoming > held)
