"""Pure rules of the replicas: what several events about one person leave (newer: `shared.replica.is_newer`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

from shared.replica import is_newer

F = TypeVar("F")


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


@dataclass(frozen=True)
class KbEvent:
    """What a KB status event says about its person, as the replica keeps it."""

    at: datetime
    family_id: uuid.UUID
    village_code: str
    method: str | None
    is_user: bool
    mkjp: bool
    since: date
    pus: bool
    proves_use: bool  # the person uses KB now or used a method before: `ever_kb_user` from then on


@dataclass(frozen=True)
class LatestKb:
    """What several KB events about one person leave behind when applied in order (see `latest_kb`)."""

    kb: KbEvent  # the status `is_newer` keeps: the first of the latest
    first: KbEvent  # the first in order: its family and village fill a placeholder's
    ever_kb_user: bool
    last_event_at: datetime


def latest_kb(events: Iterable[tuple[uuid.UUID, KbEvent]]) -> dict[uuid.UUID, LatestKb]:
    """Per person, what applying `(person_id, KB event)` in order leaves, before it meets the row held."""
    out: dict[uuid.UUID, LatestKb] = {}
    for person_id, kb in events:
        held = out.get(person_id)
        if held is None:
            out[person_id] = LatestKb(kb, kb, kb.proves_use, kb.at)
        else:
            out[person_id] = LatestKb(
                kb if is_newer(kb.at, held.kb.at) else held.kb,
                held.first,
                held.ever_kb_user or kb.proves_use,
                max(kb.at, held.last_event_at),
            )
    return out
