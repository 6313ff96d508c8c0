"""How the registry writes its events: outbox rows in the caller's transaction, each keyed by its family.

Every registry event is keyed by the family it belongs to, so one family's events (registration, members, KRS,
measurements, pregnancies) keep their order on the topic. The rows themselves are built by `shared.outbox` only.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import outbox
from shared.events import EventData
from shared.outbox import outbox_row, publish


async def emit(session: AsyncSession, data: EventData, family_id: uuid.UUID) -> None:
    """Outbox row in the current transaction, keyed by family so a family's events stay in order."""
    await publish(session, outbox, data, key=family_id)


def outbox_rows(events: list[tuple[EventData, uuid.UUID]]) -> list[dict[str, Any]]:
    """The rows `emit` writes one by one, for a use case that writes them with its state in one statement."""
    return [outbox_row(data, key=family_id) for data, family_id in events]
