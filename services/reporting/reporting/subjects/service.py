"""The reporting part of a data-subject export: one read, one audit entry, one commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.subjects import repository as repo
from shared.auth import Principal
from shared.errors import NotFound
from shared.subject import SubjectExport, export_document, records


def latest_village(entries: Sequence[dict[str, Any]]) -> str | None:
    """The village of an entity's timeline: the last one a patch set, in the timeline's (day, time) order."""
    village = None
    for entry in sorted(entries, key=lambda e: (e.get("d", ""), e.get("ts", ""))):
        village = entry.get("p", {}).get("village", village)
    return village


async def export(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, purpose: str
) -> SubjectExport:
    """What reporting holds about a person; unknown and out-of-region alike are 404, and neither is audited."""
    found = await repo.entities(session, person_id)
    if not found:
        raise NotFound("person not found")
    village = next((v for e in found if (v := latest_village(e.entries)) is not None), None)
    if village is None and found[0].owner_id is not None:
        village = latest_village(await repo.owner_entries(session, found[0].owner_id))
    principal.ensure_access(village, "person")
    sections = {
        "projection_entities": records(found),
        "enrolments": await repo.enrolments(session, person_id),
    }
    await repo.audit(session, principal, person_id, purpose, list(sections))
    await session.commit()
    return export_document("reporting", person_id, sections)
