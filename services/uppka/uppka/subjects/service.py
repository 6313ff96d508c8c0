"""The uppka part of a data-subject export: one read, one audit entry, one commit."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import NotFound
from shared.subject import SubjectExport, export_document
from uppka.subjects import repository as repo


async def export(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, purpose: str
) -> SubjectExport:
    """What uppka holds about a person; unknown and out-of-region alike are 404, and neither is audited."""
    known, village = await repo.region_of(session, person_id)
    if not known:
        raise NotFound("person not found")
    principal.ensure_access(village, "person")
    found = await repo.sections(session, person_id)
    await repo.audit(session, principal, person_id, purpose, list(found))
    await session.commit()
    return export_document("uppka", person_id, found)
