"""The registry part of a data-subject export: the record, its histories and the access log about it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import PII_READ
from registry.families.service import access_entry, reveal
from registry.pii import PiiVault
from registry.subjects import repository as repo
from shared.auth import Principal
from shared.subject import EXPORT_ACTION, SubjectExport, export_document, records

# Kept by the database for duplicate detection: a normalisation of the name, not a fact about the person.
DERIVED_COLUMNS = ("name_key",)


async def export(
    session: AsyncSession, vault: PiiVault, principal: Principal, person_id: uuid.UUID, purpose: str
) -> SubjectExport:
    """Everything the registry holds about a person, audited in its access log.

    The NIK is shown only to a caller holding `registry:pii:read` (the read is logged like any other unmasked
    read); everyone else gets null, as everywhere in the registry (a mask would leave a small candidate set).
    """
    async with session.begin():
        person = await repo.person_in_scope(session, person_id, principal)
        found = await repo.histories(session, person)
        revealed = (
            await reveal(session, vault, principal, purpose, persons=[person], action=EXPORT_ACTION)
            if principal.has(PII_READ)
            else None
        )
        sections: dict[str, list[dict[str, Any]]] = {
            "person": records([person], drop=DERIVED_COLUMNS),
            **{name: records(rows) for name, rows in found.items()},
        }
        sections["person"][0]["nik"] = revealed.niks.get(person.id) if revealed else None
        session.add(
            access_entry(
                principal,
                purpose,
                EXPORT_ACTION,
                sorted([*sections, "access_log"]),
                person_id=person.id,
                family_id=person.family_id,
            )
        )
        await session.flush()
        # Read after the export's own entry, so the document shows this export too.
        sections["access_log"] = records(await repo.access_log(session, person.id))
    return export_document("registry", person_id, sections)
