"""Use cases of yearly targets per province, with progress derived from the groups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.events import uppka as ev
from shared.outbox import publish
from shared.web.etag import IfMatchCondition, check_version
from uppka.common import writable_region
from uppka.models import outbox
from uppka.targets import domain
from uppka.targets import repository as repo
from uppka.targets.models import Target
from uppka.targets.schemas import TargetCreate, TargetUpdate


@dataclass(frozen=True)
class TargetProgress:
    """A target and how far the groups have reached it (the API model is made at the edge: `TargetRead`)."""

    target: Target
    progress: domain.Progress


@dataclass(frozen=True)
class TargetTotals:
    """One year's targets added up over the provinces the caller may see."""

    year: int
    provinces: int
    progress: domain.Progress


async def _with_progress(session: AsyncSession, targets: list[Target]) -> list[TargetProgress]:
    counts: dict[int, dict[str, int]] = {}
    out = []
    for t in targets:
        if t.year not in counts:
            counts[t.year] = await repo.kampung_kb_groups_active_by_province(session, date(t.year, 12, 31))
        out.append(
            TargetProgress(t, domain.progress(t.target_groups, counts[t.year].get(t.province_code, 0)))
        )
    return out


async def create(session: AsyncSession, body: TargetCreate, principal: Principal) -> TargetProgress:
    province = writable_region(body.province_code, "province", principal, field="body.province_code")
    async with session.begin():
        if await repo.find(session, body.year, province) is not None:
            raise Conflict(
                "a target for this year and province exists; update it",
                field="body.province_code",
                rule="target.duplicate",
            )
        target = Target(
            id=uuid.uuid4(),
            year=body.year,
            province_code=province,
            target_groups=body.target_groups,
            version=1,
        )
        session.add(target)
        await session.flush()
        await publish(
            session,
            outbox,
            ev.TargetSet(
                target_id=target.id,
                year=target.year,
                province_code=province,
                target_groups=target.target_groups,
            ),
            key=target.id,
        )
        (out,) = await _with_progress(session, [target])
    return out


async def update(
    session: AsyncSession,
    target_id: uuid.UUID,
    body: TargetUpdate,
    principal: Principal,
    expected_version: IfMatchCondition,
) -> TargetProgress:
    async with session.begin():
        target = await repo.get(session, target_id, lock=True)
        if target is None or not principal.can_access(target.province_code):
            raise NotFound("target not found")
        check_version(expected_version, target.version)
        if target.target_groups != body.target_groups:
            target.target_groups = body.target_groups
            target.version += 1
            await publish(
                session,
                outbox,
                ev.TargetSet(
                    target_id=target.id,
                    year=target.year,
                    province_code=target.province_code,
                    target_groups=body.target_groups,
                ),
                key=target.id,
            )
            await session.flush()
        (out,) = await _with_progress(session, [target])
    return out


async def read(session: AsyncSession, target_id: uuid.UUID, principal: Principal) -> TargetProgress:
    async with session.begin():
        target = await repo.get(session, target_id)
        if target is None or not principal.can_access(target.province_code):
            raise NotFound("target not found")
        (out,) = await _with_progress(session, [target])
    return out


async def list_targets(session: AsyncSession, principal: Principal, year: int | None) -> list[TargetProgress]:
    """Targets the caller may see: province-level or national callers only (a regency sees none)."""
    async with session.begin():
        province = principal.region if principal.region and "." not in principal.region else None
        if principal.region and province is None:
            return []
        rows = await repo.list_targets(session, year=year, provinces=province)
        return await _with_progress(session, rows)


async def summary(session: AsyncSession, principal: Principal, year: int) -> TargetTotals:
    """Totals of one year over the targets the caller may see."""
    rows = await list_targets(session, principal, year)
    target = sum(r.target.target_groups for r in rows)
    achieved = sum(r.progress.achieved_groups for r in rows)
    return TargetTotals(year, len(rows), domain.progress(target, achieved))
