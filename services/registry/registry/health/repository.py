"""Every query of KB statuses, catin screenings and pregnancies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import where_given
from registry.families.models import Family, Person
from registry.health.models import Catin, KbStatus, Pregnancy
from shared.auth import Principal
from shared.errors import NotFound
from shared.regions.scope import in_scope, parse_region, within
from shared.web.pagination import PageParams, change_feed_page


def scoped(model: Any, principal: Principal, region: str | None) -> Select[Any]:
    """Rows of a person-owned table whose person's current family lies in the caller's region."""
    return (
        select(model)
        .join(Person, Person.id == model.person_id)
        .join(Family, Family.id == Person.family_id)
        .where(in_scope(Family.village_code, principal), within(Family.village_code, parse_region(region)))
    )


# ------------------------------------------------------------------------------------------ KB


async def kb_history(session: AsyncSession, person_id: uuid.UUID) -> list[KbStatus]:
    """Every KB status of a person, the current one last."""
    rows = await session.scalars(
        select(KbStatus)
        .where(KbStatus.person_id == person_id)
        .order_by(KbStatus.current, KbStatus.since, KbStatus.created_at)
    )
    return list(rows)


async def kb_statuses_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    mkjp: bool | None,
    is_user: bool | None,
    updated_since: datetime | None,
) -> tuple[list[KbStatus], str | None]:
    """Current KB statuses in the region (or the change feed of all of them)."""
    stmt = where_given(
        scoped(KbStatus, principal, region),
        (Family.kampung_kb_id, kampung_kb_id),
        (KbStatus.mkjp, mkjp),
        (KbStatus.is_user, is_user),
    )
    return await change_feed_page(
        session, stmt, KbStatus, params, updated_since=updated_since, live=KbStatus.current
    )


# ------------------------------------------------------------------------------------------ catin


async def catin_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    at_risk: bool | None,
    updated_since: datetime | None,
) -> tuple[list[Catin], str | None]:
    """Catin screenings in the region (or the change feed, tombstones included)."""
    stmt = where_given(
        scoped(Catin, principal, region), (Family.kampung_kb_id, kampung_kb_id), (Catin.at_risk, at_risk)
    )
    return await change_feed_page(
        session, stmt, Catin, params, updated_since=updated_since, live=Catin.deleted_at.is_(None)
    )


async def get_catin(session: AsyncSession, principal: Principal, catin_id: uuid.UUID) -> Catin:
    """A live catin screening inside the caller's region, else 404."""
    row: Catin | None = await session.scalar(
        scoped(Catin, principal, None).where(Catin.id == catin_id, Catin.deleted_at.is_(None))
    )
    if row is None:
        raise NotFound("catin not found")
    return row


# ------------------------------------------------------------------------------------------ pregnancies


async def pregnancies_page(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    status: str | None,
    updated_since: datetime | None,
) -> tuple[list[Pregnancy], str | None]:
    """Pregnancies in the region (or the change feed, tombstones included)."""
    stmt = where_given(
        scoped(Pregnancy, principal, region),
        (Family.kampung_kb_id, kampung_kb_id),
        (Pregnancy.status, status),
    )
    return await change_feed_page(
        session, stmt, Pregnancy, params, updated_since=updated_since, live=Pregnancy.deleted_at.is_(None)
    )


async def get_pregnancy(
    session: AsyncSession, principal: Principal, pregnancy_id: uuid.UUID, *, lock: bool = False
) -> Pregnancy:
    """A live pregnancy whose mother lies in the caller's region, else 404.

    One scoped query: another region's pregnancy and no pregnancy give the same 404 the same way (before, the
    mother's lookup answered "person not found" for another region's pregnancy: an oracle, issue 12).
    """
    stmt = scoped(Pregnancy, principal, None).where(
        Pregnancy.id == pregnancy_id, Pregnancy.deleted_at.is_(None)
    )
    row: Pregnancy | None = await session.scalar(stmt.with_for_update(of=Pregnancy) if lock else stmt)
    if row is None:
        raise NotFound("pregnancy not found")
    return row


async def ongoing_pregnancy_id(session: AsyncSession, person_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(
        select(Pregnancy.id).where(
            Pregnancy.person_id == person_id,
            Pregnancy.status == "ongoing",
            Pregnancy.deleted_at.is_(None),
        )
    )
