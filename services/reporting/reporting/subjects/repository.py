"""Every query of the reporting data-subject export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.models import subject_access_log
from reporting.projection.models import Enrolment, Entity
from shared.auth import Principal
from shared.subject import audit_row, records

# The projection's entities keyed by a registry person id: the person (PUS, KB) and, for a child, its
# measurements. Cases, pregnancies and catin are keyed by their own ids and carry no person id here.
PERSON_KINDS = ("person", "child")


async def entities(session: AsyncSession, person_id: uuid.UUID) -> list[Entity]:
    """The person's projection entities, in kind order."""
    stmt = (
        select(Entity)
        .where(tuple_(Entity.kind, Entity.entity_id).in_([(k, str(person_id)) for k in PERSON_KINDS]))
        .order_by(Entity.kind)
    )
    return list((await session.execute(stmt)).scalars().all())


async def owner_entries(session: AsyncSession, owner_id: str) -> list[dict[str, Any]]:
    """The timeline of an owner entity ("family:<id>"), for the village of a person whose own has none."""
    kind, _, entity_id = owner_id.partition(":")
    row = await session.get(Entity, (kind, entity_id))
    return list(row.entries) if row is not None else []


async def enrolments(session: AsyncSession, person_id: uuid.UUID) -> list[dict[str, Any]]:
    stmt = select(Enrolment).where(Enrolment.person_id == person_id).order_by(Enrolment.enrolment_id)
    return records((await session.execute(stmt)).scalars().all())


async def audit(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, purpose: str, names: list[str]
) -> None:
    """One entry in the service's own audit table."""
    await session.execute(audit_row(subject_access_log, principal, person_id, purpose, names))
