"""Test-only crash points: a process kills itself (SIGKILL, as the OOM killer or a node loss would) at a named
place in its work, so the fault scenarios can hit the narrow windows a kill from outside rarely lands in.

Switched on only by the environment variable `KENCANA_CRASH_AT=<point>:<n>`: the n-th time the process reaches
`<point>` it dies there. Unset (always, outside the fault scenarios) `reached()` is one dictionary look-up.

Points:
    relay.after_send          the relay's batch was acknowledged by the broker, its rows are not yet marked sent
    consumer.after_db_commit  the consumer's transaction (effects + inbox) committed, its offsets not yet committed

Likewise `KENCANA_FAIL_EVENT_TYPES=<type>,<type>` makes a consumer's handling of those event types fail as a
handler bug would (`poisoned`): they are dead-lettered; the scenario then "fixes" it (restarts the consumer
without the variable) and replays the dead-letter topic. And `KENCANA_SLOW_HANDLING_SECONDS=<s>` makes a
consumer's handling of every poll that holds new events take `s` seconds longer (`slow_handling`), as a handler
stuck on a slow dependency would: the fault scenario of a handler slower than the poll interval.
"""

from __future__ import annotations

import asyncio
import os
import signal

from shared.logging import get_logger

log = get_logger(__name__)

ENV = "KENCANA_CRASH_AT"
POINTS = ("relay.after_send", "consumer.after_db_commit")


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    point, _, count = value.partition(":")
    if point not in POINTS:
        raise ValueError(f"{ENV}: unknown crash point {point!r} (known: {', '.join(POINTS)})")
    return point, max(int(count or "1"), 1)


_armed = _parse(os.environ.get(ENV))
_hits: dict[str, int] = {}


def reached(point: str) -> None:
    """Die here when this is the armed point's n-th hit."""
    if _armed is None or _armed[0] != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= _armed[1]:
        log.warning("crash_point_reached", point=point, hit=_hits[point])
        os.kill(os.getpid(), signal.SIGKILL)


FAIL_ENV = "KENCANA_FAIL_EVENT_TYPES"
_failing = frozenset(t for t in os.environ.get(FAIL_ENV, "").split(",") if t)


def poisoned(event_type: str) -> bool:
    """Whether this process was started to fail on events of this type (test-only)."""
    return event_type in _failing


SLOW_ENV = "KENCANA_SLOW_HANDLING_SECONDS"
_slow = float(os.environ.get(SLOW_ENV) or 0)


async def slow_handling() -> None:
    """Test-only: the extra seconds this process was started to spend on each poll's new events."""
    if _slow > 0:
        await asyncio.sleep(_slow)
