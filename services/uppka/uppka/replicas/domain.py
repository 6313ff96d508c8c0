"""Pure rules of the replicas: which event is newer than what we hold."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

F = TypeVar("F")


def is_newer(event_time: datetime, held: datetime | None) -> bool:
    """True when an event should be applied over what we hold: nothing held, or strictly later.

    Equal times are treated as already seen: the inbox removes exact duplicates, and two different events
    with the same instant for one aggregate cannot be ordered anyway.
    """
    return held is None or event_time > held


@dataclass(frozen=True)
class LatestFacts(Generic[F]):
    """What several facts events about one person leave behind: the facts `is_newer` keeps, the last time."""

    facts: F
    facts_at: datetime
    last_event_at: datetime


def latest_facts(events: Iterable[tuple[uuid.UUID, datetime, F]]) -> dict[uuid.UUID, LatestFacts[F]]:
    """Per person, the facts that applying `(person_id, event time, facts)` in order would leave."""
    out: dict[uuid.UUID, LatestFacts[F]] = {}
    for person_id, at, facts in events:
        held = out.get(person_id)
        if held is None:
            out[person_id] = LatestFacts(facts, at, at)
        elif is_newer(at, held.facts_at):
            out[person_id] = LatestFacts(facts, at, max(at, held.last_event_at))
        elif at > held.last_event_at:
            out[person_id] = LatestFacts(held.facts, held.facts_at, at)
    return out
